"""Turning a course and a list of notebooks into run requests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autograder.config import CourseConfig
from autograder.datasets import mnist_path
from autograder.errors import AutograderError
from autograder.runner.run import RunRequest


def release_notebook_for(config: CourseConfig, assignment: str, notebook: Path) -> Path | None:
    """The released notebook a submission is restored against: same file name, or the
    assignment's only notebook when the student renamed theirs."""
    folder = config.release_dir / assignment
    same = folder / notebook.name
    if same.is_file():
        return same
    released = sorted(folder.glob("*.ipynb"))
    if len(released) == 1:
        return released[0]
    if not released:
        raise AutograderError(
            f"{folder}: no released notebook; run `autograder release {assignment}` first"
        )
    return None


def build_requests(
    config: CourseConfig,
    assignment: str,
    notebooks: Sequence[Path],
    out: Path,
    *,
    device: str = "auto",
    sandbox: bool = True,
) -> list[RunRequest]:
    """One :class:`RunRequest` per notebook; several notebooks get ``out/<stem>/`` each."""
    config.assignment(assignment)
    found = mnist_path(config.data_dir)
    # without a mirror, load_data() in the kernel says how to provision it
    mirror = found if found.is_file() else None
    stems = [nb.stem for nb in notebooks]
    requests = []
    for notebook in notebooks:
        target = out
        if len(notebooks) > 1:
            stem = notebook.stem
            target = out / (stem if stems.count(stem) == 1 else f"{notebook.parent.name}-{stem}")
        requests.append(
            RunRequest(
                assignment=assignment,
                notebook=notebook,
                out=target,
                limits=config.limits,
                mnist_npz=mirror,
                release_notebook=release_notebook_for(config, assignment, notebook),
                device_mode=device,
                sandbox=sandbox,
            )
        )
    return requests
