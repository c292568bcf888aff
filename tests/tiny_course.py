"""A tiny course for tests: one assignment (``tiny``) with one solution cell, one autograded
test cell, one manually graded answer, and a visible check; plus helpers to make submissions."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.config import Limits

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "release" / "lesson25" / "lesson25.ipynb"
MNIST = ROOT / ".cache" / "datasets" / "mnist.npz"

# Runner tests: tiny notebooks end in a second or two; the generous time limits are only
# there for runs that import Keras on a loaded machine. Attacks on time set their own limits.
LIMITS = Limits(
    memory_mb=1024,
    processes=64,
    disk_mb=64,
    notebook_timeout_s=240,
    cell_timeout_s=120,
    output_kb_per_cell=256,
)
# The full lesson (Keras, MNIST in memory) peaks near 700 MB before any attack starts.
LESSON_LIMITS = replace(LIMITS, memory_mb=1536)

PYPROJECT = """\
[tool.autograder]
course_id = "tiny-course"
gradebook_url = "sqlite:///gradebook/gradebook.db"
data_dir = "{data_dir}"

[tool.autograder.limits]
notebook_timeout_s = 60
cell_timeout_s = 20
memory_mb = 2048
processes = 128
disk_mb = 128
output_kb_per_cell = 256

[[tool.autograder.assignments]]
name = "tiny"
deadline = "2026-12-18T23:59:00+00:00"
late_penalty_per_day = 0.25
max_late_days = 2

[[tool.autograder.students]]
id = "alice"
name = "Alice Liddell"

[[tool.autograder.students]]
id = "bob"
name = "Bob Builder"
"""

CHECKS = """\
import pytest


@pytest.mark.check(cell="test_answer", weight=1, visible=True)
def test_run_finished(run_record):
    assert run_record["status"] in ("ok", "cell-error"), run_record["message"]


@pytest.mark.check(cell="test_answer", weight=3, visible=True)
def test_answer_saved(saved_file):
    value = saved_file("answer.txt").read_text().strip()
    assert value == "42", f"answer.txt holds {value!r}, expected 42"
"""


def _meta(grade_id: str, **flags: object) -> dict[str, object]:
    meta = {
        "grade": False,
        "grade_id": grade_id,
        "locked": False,
        "schema_version": 3,
        "solution": False,
        "task": False,
        **flags,
    }
    return {"nbgrader": meta}


def source_notebook(solution: str = "answer = 42") -> nbformat.NotebookNode:
    """The instructor's notebook of ``tiny``."""
    cells = [
        new_markdown_cell("# Tiny\nWrite the answer.", metadata=_meta("intro", locked=True)),
        new_code_cell(
            f"### BEGIN SOLUTION\n{solution}\n### END SOLUTION\n"
            "open('answer.txt', 'w').write(str(answer))",
            metadata=_meta("solve", solution=True),
        ),
        new_code_cell(
            "assert answer == 42, 'wrong answer'\n### BEGIN HIDDEN TESTS\n"
            "assert answer + 0 == 42\n### END HIDDEN TESTS",
            metadata=_meta("test_answer", grade=True, locked=True, points=4),
        ),
        new_markdown_cell(
            "### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
            metadata=_meta("why", grade=True, solution=True, points=1),
        ),
    ]
    for cell in cells:
        cell.id = cell.metadata["nbgrader"]["grade_id"]
    return new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
    )


def make_course(root: Path, data_dir: Path, *, solution: str = "answer = 42") -> Path:
    """Write the tiny course under ``root`` (not released yet)."""
    (root / "source" / "tiny").mkdir(parents=True)
    (root / "grading_tests" / "tiny").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(data_dir=data_dir))
    nbformat.write(source_notebook(solution), root / "source" / "tiny" / "tiny.ipynb")
    (root / "grading_tests" / "tiny" / "test_visible.py").write_text(CHECKS)
    return root


def submit(
    root: Path,
    student: str,
    answer: str,
    *,
    timestamp: str = "2026-12-10T10:00:00+00:00",
    extra: str = "",
) -> Path:
    """Store a submission of ``tiny`` as ``autograder collect`` does."""
    nb = nbformat.read(root / "release" / "tiny" / "tiny.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.id == "solve":
            cell.source = f"{extra}answer = {answer}\nopen('answer.txt', 'w').write(str(answer))"
        if cell.id == "why":
            cell.source = "Because it is."
    folder = root / "submitted" / student / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    meta = {
        "student": student,
        "assignment": "tiny",
        "timestamp": timestamp,
        "attempt": 1,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    (folder / "submission.json").write_text(json.dumps(meta))
    return path


def copy_lesson(root: Path) -> Path:
    """A copy of the real course (lesson 25) under ``root``."""
    for name in ("source", "release", "grading_tests"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root
