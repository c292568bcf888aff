"""Release stage: check the instructor's notebook, prove the solution runs, then let nbgrader
write the student version into ``release/<assignment>/``.

The solution run is skipped when the source folder's content hash equals the one of the last
successful run. ``release/`` is replaced only after every step succeeded, so a failing source
leaves the previous release untouched.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autograder import __version__
from autograder.config import CourseConfig
from autograder.datasets import provision_mnist
from autograder.errors import AutograderError, NotebookError
from autograder.execute import execute_notebook
from autograder.nbgrader_bridge import generate_assignment
from autograder.notebook import grade_cells, read_notebook

Log = Callable[[str], None]


@dataclass(frozen=True)
class ReleaseResult:
    """What a release did: the notebooks released, and whether the solution run was reused."""

    assignment: str
    notebooks: tuple[Path, ...]
    source_sha256: str
    solution_run_reused: bool
    solution_wall_s: float


def source_digest(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under ``folder``."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if ".ipynb_checkpoints" in path.parts:
            continue
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def source_notebooks(config: CourseConfig, assignment: str) -> list[Path]:
    """The notebooks of ``source/<assignment>/``; an error when there are none."""
    folder = config.source_dir / assignment
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not notebooks:
        raise NotebookError(f"{folder}: no source notebooks (*.ipynb) for {assignment!r}")
    return notebooks


def release(
    config: CourseConfig, assignment: str, *, rerun: bool = False, log: Log = print
) -> ReleaseResult:
    """Validate, execute (unless cached) and release ``assignment``; see the module docstring."""
    config.assignment(assignment)
    folder = config.source_dir / assignment
    notebooks = source_notebooks(config, assignment)
    parsed = {path: read_notebook(path) for path in notebooks}
    for path, nb in parsed.items():
        grade_cells(nb, path)

    digest = source_digest(folder)
    stamp = config.state_dir / "release" / f"{assignment}.json"
    cached = _read_stamp(stamp)
    reused = not rerun and cached.get("source_sha256") == digest
    wall_s = float(cached.get("wall_s", 0.0)) if reused else 0.0
    if reused:
        log(f"{assignment}: source unchanged since its last successful run, not executing it")
    else:
        mnist_npz = provision_mnist(config.data_dir)
        for path, nb in parsed.items():
            log(f"{assignment}: executing {path.relative_to(config.root)} with its solutions")
            with tempfile.TemporaryDirectory(prefix="autograder-solution-") as tmp:
                work = Path(tmp) / assignment
                shutil.copytree(folder, work)
                run = execute_notebook(
                    nb,
                    label=path,
                    workdir=work,
                    mnist_npz=mnist_npz,
                    cell_timeout_s=config.limits.cell_timeout_s,
                )
            wall_s += run.wall_s
            log(f"{assignment}: {path.name} ran end to end in {run.wall_s:.1f} s")

    generate_assignment(config, assignment)
    if not reused:
        _write_stamp(stamp, {"source_sha256": digest, "wall_s": round(wall_s, 1),
                             "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    released = tuple(config.release_dir / assignment / p.name for p in notebooks)
    log(f"{assignment}: released {', '.join(str(p.relative_to(config.root)) for p in released)}")
    return ReleaseResult(assignment, released, digest, reused, wall_s)


def _read_stamp(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_stamp(path: Path, data: dict[str, object]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
        tmp.replace(path)
    except OSError as err:
        raise AutograderError(f"{path}: cannot record the solution run: {err}") from err
