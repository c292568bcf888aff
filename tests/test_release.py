"""Release: validation errors name the file and the cell and leave release/ untouched; the
solution must run and pass its checks; the real lesson releases byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from tiny_course import ROOT, copy_lesson, source_notebook

from autograder.config import load_config
from autograder.errors import AutograderError, NotebookError
from autograder.release import release

SOURCE = Path("source/tiny/tiny.ipynb")


def _release(root: Path) -> None:
    release(load_config(root), "tiny", log=lambda _: None)


def _write(root: Path, nb: nbformat.NotebookNode) -> None:
    nbformat.write(nb, root / SOURCE)


def test_tiny_release_hides_solutions_and_hidden_tests(released_tiny_course: Path) -> None:
    released = (released_tiny_course / "release/tiny/tiny.ipynb").read_text()
    assert "answer = 42" not in released
    assert "BEGIN SOLUTION" not in released
    assert "HIDDEN TESTS" not in released and "answer + 0" not in released
    assert "raise NotImplementedError()" in released
    assert "assert answer == 42" in released  # the visible test stays
    nbformat.validate(nbformat.read(released_tiny_course / "release/tiny/tiny.ipynb", 4))
    assert (released_tiny_course / "release/tiny/test_visible.py").is_file()


def test_unchanged_source_is_not_run_again(released_tiny_course: Path) -> None:
    config = load_config(released_tiny_course)
    before = (released_tiny_course / "release/tiny/tiny.ipynb").read_bytes()
    result = release(config, "tiny", log=lambda _: None)
    assert result.solution_run_reused
    assert (released_tiny_course / "release/tiny/tiny.ipynb").read_bytes() == before


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.write_text("{not json"), "not valid JSON"),
        (lambda p: p.write_text(json.dumps({"nbformat": 3, "cells": []})), "nbformat 3"),
    ],
)
def test_unreadable_source_is_refused(tiny_course: Path, damage, expected: str) -> None:
    damage(tiny_course / SOURCE)
    with pytest.raises(NotebookError, match=expected) as err:
        _release(tiny_course)
    assert str(tiny_course / SOURCE) in str(err.value)
    assert not (tiny_course / "release").exists()


def test_duplicate_grade_id_names_both_cells(tiny_course: Path) -> None:
    nb = source_notebook()
    nb.cells[3].metadata["nbgrader"]["grade_id"] = "test_answer"
    _write(tiny_course, nb)
    with pytest.raises(NotebookError, match=r"cell 3 \(test_answer\) repeats grade_id") as err:
        _release(tiny_course)
    assert "cell 2" in str(err.value)


def test_grade_cell_without_points(tiny_course: Path) -> None:
    nb = source_notebook()
    del nb.cells[2].metadata["nbgrader"]["points"]
    _write(tiny_course, nb)
    with pytest.raises(NotebookError, match=r"cell 2 \(test_answer\) is a grade cell without"):
        _release(tiny_course)


def test_failing_solution_names_the_cell_and_keeps_the_old_release(
    released_tiny_course: Path,
) -> None:
    before = (released_tiny_course / "release/tiny/tiny.ipynb").read_bytes()
    _write(released_tiny_course, source_notebook(solution="answer = 1 / 0"))
    with pytest.raises(AutograderError, match=r"cell 1 \(solve\) failed: ZeroDivisionError"):
        _release(released_tiny_course)
    assert (released_tiny_course / "release/tiny/tiny.ipynb").read_bytes() == before


def test_solution_failing_a_check_is_refused(tiny_course: Path) -> None:
    nb = source_notebook()
    nb.cells[1].source = nb.cells[1].source.replace("str(answer)", "'41'")
    _write(tiny_course, nb)
    with pytest.raises(AutograderError, match="fails check test_visible::test_answer_saved"):
        _release(tiny_course)
    assert not (tiny_course / "release").exists()


def test_check_naming_an_unknown_cell_is_refused(tiny_course: Path) -> None:
    checks = tiny_course / "grading_tests/tiny/test_visible.py"
    checks.write_text(
        checks.read_text().replace('cell="test_answer", weight=3', 'cell="test_nothing", weight=3')
    )
    with pytest.raises(AutograderError, match="scores grade cell 'test_nothing'"):
        _release(tiny_course)


def test_autograded_cell_without_check_is_refused(tiny_course: Path) -> None:
    checks = tiny_course / "grading_tests/tiny/test_visible.py"
    checks.write_text(checks.read_text().replace('cell="test_answer"', 'cell="why"'))
    with pytest.raises(AutograderError, match="'test_answer' has no check"):
        _release(tiny_course)


def test_lesson_sources_are_valid_nbformat() -> None:
    for path in [ROOT / "source/lesson25/lesson25.ipynb", ROOT / "release/lesson25/lesson25.ipynb"]:
        nbformat.validate(nbformat.read(path, as_version=4))


def test_committed_release_hides_solutions_and_hidden_tests() -> None:
    source = nbformat.read(ROOT / "source/lesson25/lesson25.ipynb", as_version=4)
    released = (ROOT / "release/lesson25/lesson25.ipynb").read_text()
    assert "BEGIN SOLUTION" not in released and "HIDDEN TESTS" not in released
    hidden = []
    for cell in source.cells:
        text = cell.source
        if "### BEGIN HIDDEN TESTS" in text:
            hidden.append(text.split("### BEGIN HIDDEN TESTS")[1].split("### END")[0].strip())
        if "### BEGIN SOLUTION" in text:
            solution = text.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].strip()
            first_line = solution.splitlines()[0]
            assert first_line not in released, first_line
    assert hidden and all(h.splitlines()[0] not in released for h in hidden)
    assert not (ROOT / "release/lesson25/test_hidden.py").exists()


@pytest.mark.slow
def test_lesson25_release_round_trip_is_byte_for_byte(tmp_path: Path, mnist_data_dir: Path) -> None:
    """Runs the real solution notebook end to end (minutes on a 2-core CPU)."""
    course = copy_lesson(tmp_path / "course")
    expected = {p.name: p.read_bytes() for p in (ROOT / "release/lesson25").iterdir()}
    shutil.rmtree(course / "release")
    config = load_config(course)
    result = release(config, "lesson25", log=lambda _: None)
    assert not result.solution_run_reused
    produced = {p.name: p.read_bytes() for p in (course / "release/lesson25").iterdir()}
    assert produced == expected
