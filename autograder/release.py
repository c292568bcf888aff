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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autograder import __version__
from autograder.checks.run import VISIBLE_FILE, collect_cells, run_checks
from autograder.config import CourseConfig
from autograder.datasets import provision_mnist
from autograder.errors import AutograderError, CellExecutionError, NotebookError
from autograder.nbgrader_bridge import generate_assignment
from autograder.notebook import GradeCell, autograded_points, grade_cells, read_notebook
from autograder.runner.run import RunRequest, run_submission
from autograder.runner.sandbox import sandbox_problem

Log = Callable[[str], None]


@dataclass(frozen=True)
class ReleaseResult:
    """What a release did: the notebooks released, and whether the solution run was reused."""

    assignment: str
    notebooks: tuple[Path, ...]
    source_sha256: str
    solution_run_reused: bool
    solution_wall_s: float


def source_digest(*folders: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under ``folders``."""
    digest = hashlib.sha256(__version__.encode())
    for folder in folders:
        digest.update(folder.name.encode() + b"\0")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if ".ipynb_checkpoints" in path.parts or "__pycache__" in path.parts:
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
    """Validate, execute and check (unless cached), then release ``assignment``.

    Refuses, leaving ``release/`` untouched, when a source notebook is invalid, a solution
    cell fails, a check names a grade cell the source lacks, an autograded grade cell has no
    check, or the solution fails any check.
    """
    config.assignment(assignment)
    folder = config.source_dir / assignment
    checks_dir = config.grading_tests_dir / assignment
    notebooks = source_notebooks(config, assignment)
    cells: dict[str, GradeCell] = {}
    for path in notebooks:
        for cell in grade_cells(read_notebook(path), path):
            cells[cell.grade_id] = cell
    check_coverage(checks_dir, cells, folder)

    digest = source_digest(folder, checks_dir)
    stamp = config.state_dir / "release" / f"{assignment}.json"
    cached = _read_stamp(stamp)
    reused = not rerun and cached.get("source_sha256") == digest
    wall_s = float(str(cached.get("wall_s", 0.0))) if reused else 0.0
    if reused:
        log(f"{assignment}: source and checks unchanged since their last successful run")
    else:
        wall_s = run_solution(config, assignment, notebooks, cells, log=log)

    generate_assignment(config, assignment)
    shutil.copyfile(checks_dir / VISIBLE_FILE, config.release_dir / assignment / VISIBLE_FILE)
    if not reused:
        _write_stamp(
            stamp,
            {
                "source_sha256": digest,
                "wall_s": round(wall_s, 1),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    released = tuple(config.release_dir / assignment / p.name for p in notebooks)
    log(f"{assignment}: released {', '.join(str(p.relative_to(config.root)) for p in released)}")
    return ReleaseResult(assignment, released, digest, reused, wall_s)


def check_coverage(checks_dir: Path, cells: dict[str, GradeCell], source: Path) -> None:
    """Every check scores a grade cell the source has; every autograded cell has a check."""
    if not (checks_dir / VISIBLE_FILE).is_file():
        raise AutograderError(f"{checks_dir / VISIBLE_FILE}: missing (the visible checks)")
    scored = collect_cells(checks_dir)
    for grade_id, checks in sorted(scored.items()):
        if grade_id not in cells:
            raise AutograderError(
                f"{checks_dir}: {checks[0]} scores grade cell {grade_id!r}, which {source} lacks"
            )
    for cell in cells.values():
        if cell.autograded and cell.grade_id not in scored:
            raise AutograderError(
                f"{source}: autograded grade cell {cell.grade_id!r} has no check in {checks_dir}"
            )


def run_solution(
    config: CourseConfig,
    assignment: str,
    notebooks: list[Path],
    cells: dict[str, GradeCell],
    *,
    log: Log,
) -> float:
    """Run each source notebook with its solutions through the runner, then every check on
    it; raise naming the notebook and the failing cell or check. Returns the wall time."""
    mnist_npz = provision_mnist(config.data_dir)
    sandbox = sandbox_problem() is None
    points = autograded_points(cells)
    wall_s = 0.0
    for path in notebooks:
        log(f"{assignment}: running {path.relative_to(config.root)} with its solutions")
        out = config.state_dir / "release" / assignment / path.stem
        record = run_submission(
            RunRequest(
                assignment=assignment,
                notebook=path,
                out=out,
                limits=config.limits,
                mnist_npz=mnist_npz,
                sandbox=sandbox,
                device_mode="cpu",
            )
        )
        wall_s += float(record["wall_s"])
        if record["status"] != "ok":
            raise CellExecutionError(
                f"{path}: the solution run ended with {record['status']}: {record['message']}"
            )
        log(f"{assignment}: {path.name} ran end to end in {record['wall_s']:.1f} s")
        checked = run_checks(
            config.grading_tests_dir / assignment, [out], points, data_dir=config.data_dir
        )[out]
        bad = [r for r in checked.results if r.outcome != "passed"]
        if bad:
            first = bad[0]
            raise AutograderError(
                f"{path}: the solution fails check {first.check} ({first.cell}): "
                f"{first.message}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
            )
        log(f"{assignment}: the solution passes all {len(checked.results)} checks")
    return wall_s


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
