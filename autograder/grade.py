"""The main job: every collected submission through run, check, record and report.

Phases: (1) run the submissions that need it in the sandboxed pool; (2) run the checks over
all of them in one pytest session; (3) for each, score the grade cells, apply the late
policy, record the gradebook, then write ``result.json`` (the marker that the submission is
graded); (4) write the feedback reports, the dashboard and the exports.

Idempotent and resumable: a submission whose ``result.json`` carries the same grading key
(its content, the checks, the release and this version) is skipped unless ``force``; a run
folder with the same key is reused. A batch killed at any point grades every submission
exactly once when re-run, because the gradebook write is an update and ``result.json`` is
written last.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat

from autograder import __version__
from autograder.checks.run import CheckRun, run_checks
from autograder.config import CourseConfig
from autograder.datasets import mnist_path
from autograder.errors import AutograderError
from autograder.gradebook import open_gradebook, record_result
from autograder.notebook import GradeCell, autograded_points, grade_cells, read_notebook
from autograder.release import source_digest, source_notebooks
from autograder.results import (
    RESULT_FILE,
    CellView,
    CheckView,
    SubmissionResult,
    read_result,
    write_result,
)
from autograder.runner.pool import run_with_progress
from autograder.runner.record import read_record
from autograder.runner.run import RunRequest

Log = Callable[[str], None]
RUN_FOLDER = "run"
KEY_FILE = "grading-key.txt"
LIMIT_STATUSES = ("memory-limit", "process-limit", "disk-limit", "output-limit", "killed")


@dataclass
class GradeSummary:
    """What one ``grade`` call did."""

    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results: list[SubmissionResult] = field(default_factory=list)

    @property
    def flagged(self) -> list[SubmissionResult]:
        return [r for r in self.results if r.flags]

    @property
    def failed(self) -> list[SubmissionResult]:
        return [r for r in self.results if r.status not in ("ok", "cell-error")]

    @property
    def mean_score(self) -> float:
        return sum(r.score for r in self.results) / len(self.results) if self.results else 0.0


@dataclass(frozen=True)
class Pending:
    """A submission that needs grading."""

    student: str
    folder: Path  # submitted/<student>/<assignment>
    notebook: Path
    out: Path  # autograded/<student>/<assignment>
    key: str
    meta: dict[str, Any]


def assignment_cells(config: CourseConfig, assignment: str) -> tuple[str, dict[str, GradeCell]]:
    """The released notebook's name and its grade cells (from the source notebook)."""
    path = source_notebooks(config, assignment)[0]
    return path.name, {c.grade_id: c for c in grade_cells(read_notebook(path), path)}


def grading_digest(config: CourseConfig, assignment: str) -> str:
    """Digest of everything a grade depends on besides the submission itself."""
    folders = [
        config.grading_tests_dir / assignment,
        config.release_dir / assignment,
        config.source_dir / assignment,
    ]
    return source_digest(*[f for f in folders if f.is_dir()])


def find_submissions(
    config: CourseConfig, assignment: str, notebook: str, digest: str, *, force: bool
) -> tuple[list[Pending], list[str]]:
    """Submissions to grade now, and the students skipped as already graded."""
    pending, skipped = [], []
    for folder in sorted(config.submitted_dir.glob(f"*/{assignment}")):
        student = folder.parent.name
        if student.startswith(".") or not folder.is_dir():
            continue
        candidates = (
            [folder / notebook] if (folder / notebook).is_file() else sorted(folder.glob("*.ipynb"))
        )
        if not candidates:
            continue
        path = candidates[0]
        meta = _read_json(folder / "submission.json")
        sha = str(meta.get("sha256") or hashlib.sha256(path.read_bytes()).hexdigest())
        key = hashlib.sha256(f"{sha}:{digest}:{__version__}".encode()).hexdigest()
        out = config.autograded_dir / student / assignment
        if not force and _graded_key(out) == key:
            skipped.append(student)
            continue
        pending.append(Pending(student, folder, path, out, key, meta))
    return pending, skipped


def grade(
    config: CourseConfig,
    assignment: str,
    *,
    force: bool = False,
    workers: int = 1,
    device: str = "auto",
    gpu_slots: int = 1,
    log: Log = print,
    write_reports: Callable[[CourseConfig, str], object] | None = None,
    executor: Executor | None = None,
) -> GradeSummary:
    """Grade every collected submission of ``assignment`` (see the module docstring).

    ``executor`` runs and checks the pending submissions; the default runs them on this
    machine (:func:`local_executor`), :mod:`autograder.distributed` on a Dask cluster. Either
    way only this process writes the gradebook."""
    config.assignment(assignment)
    notebook, cells = assignment_cells(config, assignment)
    release = config.release_dir / assignment / notebook
    if not release.is_file():
        raise AutograderError(f"{release}: not released yet; run `autograder release {assignment}`")
    digest = grading_digest(config, assignment)
    pending, skipped = find_submissions(config, assignment, notebook, digest, force=force)
    summary = GradeSummary(skipped=skipped)
    if skipped:
        log(f"{len(skipped)} submission(s) already graded with the same content and checks")
    if pending:
        execute = executor or local_executor(workers=workers, device=device, gpu_slots=gpu_slots)
        checked = execute(config, assignment, pending, release, cells, log)
        with open_gradebook(config) as gb:
            for item in pending:
                result = _result(config, assignment, notebook, cells, item, checked.get(item.out))
                extension = config.extension_days(item.student, assignment)
                record_result(gb, config, result, notebook, extension)
                _write_autograded(item, notebook)
                write_result(result, item.out)  # last: marks the submission as graded
                summary.graded.append(item.student)
    summary.results = [
        read_result(p) for p in sorted(config.autograded_dir.glob(f"*/{assignment}/{RESULT_FILE}"))
    ]
    if write_reports is not None:
        write_reports(config, assignment)
    return summary


Executor = Callable[
    [CourseConfig, str, list["Pending"], Path, dict[str, GradeCell], Log], dict[Path, CheckRun]
]
"""Runs and checks pending submissions; returns the checks per ``Pending.out`` folder, with
each run folder in place at ``Pending.out / "run"``."""


def local_executor(*, workers: int, device: str, gpu_slots: int) -> Executor:
    """Run in the local sandboxed pool, then check the whole batch in one pytest session."""

    def execute(
        config: CourseConfig,
        assignment: str,
        pending: list[Pending],
        release: Path,
        cells: dict[str, GradeCell],
        log: Log,
    ) -> dict[Path, CheckRun]:
        _run_pending(config, assignment, pending, release, workers, device, gpu_slots, log)
        return check_pending(config, assignment, pending, cells)

    return execute


def _run_pending(
    config: CourseConfig,
    assignment: str,
    pending: list[Pending],
    release: Path,
    workers: int,
    device: str,
    gpu_slots: int,
    log: Log,
) -> None:
    requests = [
        run_request(config, assignment, item, release, device)
        for item in pending
        if not run_is_current(item)  # a run that finished before an interruption is reused
    ]
    if not requests:
        return
    log(f"running {len(requests)} submission(s) with {workers} worker(s)")
    by_out = {item.out / RUN_FOLDER: item for item in pending}
    run_with_progress(
        requests,
        workers=workers,
        gpu_slots=gpu_slots,
        on_done=lambda request, _record: mark_run_done(by_out[request.out]),
    )


def check_pending(
    config: CourseConfig, assignment: str, pending: list[Pending], cells: dict[str, GradeCell]
) -> dict[Path, CheckRun]:
    runnable = []
    for item in pending:
        run_json = item.out / RUN_FOLDER / "run.json"
        if run_json.is_file() and read_record(run_json)["status"] != "invalid-notebook":
            runnable.append(item.out / RUN_FOLDER)
    points = autograded_points(cells)
    checked = run_checks(
        config.grading_tests_dir / assignment, runnable, points, data_dir=config.data_dir
    )
    return {run_dir.parent: result for run_dir, result in checked.items()}


def run_request(
    config: CourseConfig, assignment: str, item: Pending, release: Path, device: str
) -> RunRequest:
    """The sandboxed run of one pending submission."""
    mirror = mnist_path(config.data_dir)
    return RunRequest(
        assignment=assignment,
        notebook=item.notebook,
        out=item.out / RUN_FOLDER,
        limits=config.limits,
        mnist_npz=mirror if mirror.is_file() else None,
        release_notebook=release,
        device_mode=device,
    )


def run_is_current(item: Pending) -> bool:
    """Whether ``item``'s run folder holds a finished run of the same grading key."""
    key_file = item.out / RUN_FOLDER / KEY_FILE
    return key_file.is_file() and key_file.read_text().strip() == item.key


def mark_run_done(item: Pending) -> None:
    """Record that ``item``'s run folder is complete for its grading key."""
    (item.out / RUN_FOLDER / KEY_FILE).write_text(item.key + "\n")


def late_days(submitted: datetime | None, deadline: datetime | None, extension: float) -> float:
    """Days past the deadline (plus extension), 0 when on time or unknown."""
    if submitted is None or deadline is None:
        return 0.0
    late = submitted - (deadline + timedelta(days=extension))
    return max(0.0, late.total_seconds() / 86400)


def late_penalty(raw: float, days: float, per_day: float, max_days: int) -> float:
    """Points taken off: ``per_day`` of the raw score for each started day late; past
    ``max_days`` (when set) the whole score."""
    if days <= 0:
        return 0.0
    started = math.ceil(days)
    if max_days and started > max_days:
        return raw
    return round(min(raw, raw * per_day * started), 4)


def _result(
    config: CourseConfig,
    assignment: str,
    notebook: str,
    cells: dict[str, GradeCell],
    item: Pending,
    checked: CheckRun | None,
) -> SubmissionResult:
    run_dir = item.out / RUN_FOLDER
    record = read_record(run_dir / "run.json")
    views = []
    for cell in sorted(cells.values(), key=lambda c: c.index):
        if not cell.autograded:
            views.append(CellView(cell.grade_id, cell.points, None, False, True))
            continue
        score = checked.scores[cell.grade_id] if checked else None
        checks = tuple(
            CheckView(
                r.check, r.cell, r.weight, r.visible, r.outcome, r.message, r.details, r.flags
            )
            for r in (checked.results if checked else ())
            if r.cell == cell.grade_id
        )
        views.append(
            CellView(
                cell.grade_id,
                cell.points,
                score.score if score else 0.0,
                True,
                bool(score and score.needs_human),
                checks,
            )
        )
    flags = _flags(record, checked)
    policy = config.assignment(assignment)
    submitted = item.meta.get("timestamp")
    moment = datetime.fromisoformat(submitted) if submitted else None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    days = late_days(moment, policy.deadline, config.extension_days(item.student, assignment))
    raw = round(sum(v.score or 0.0 for v in views), 4)
    penalty = late_penalty(raw, days, policy.late_penalty_per_day, policy.max_late_days)
    if days > 0:
        flags.append(f"late by {days:.1f} day(s): -{penalty:g} point(s)")
    return SubmissionResult(
        student=item.student,
        student_name=config.student_name(item.student),
        assignment=assignment,
        notebook=notebook,
        notebook_sha256=record["notebook_sha256"],
        grading_key=item.key,
        attempt=int(item.meta.get("attempt", 1)),
        submitted_at=moment.isoformat() if moment else None,
        deadline=policy.deadline.isoformat() if policy.deadline else None,
        late_days=round(days, 3),
        late_penalty=penalty,
        raw_score=raw,
        score=round(raw - penalty, 4),
        max_score=sum(c.points for c in cells.values()),
        status=record["status"],
        message=record["message"],
        wall_s=float(record["wall_s"]),
        device=record["device"]["name"],
        cells=tuple(views),
        flags=tuple(flags),
        run_dir=RUN_FOLDER,
    )


def _flags(record: dict[str, Any], checked: CheckRun | None) -> list[str]:
    flags = []
    status = record["status"]
    if status == "timeout":
        flags.append(f"timeout: {record['message']}")
    elif status in LIMIT_STATUSES:
        flags.append(f"sandbox limit ({status}): {record['message']}")
    elif status in ("harvest-failed", "invalid-notebook"):
        flags.append(f"{status}: {record['message']}")
    crashes = [e for e in record["errors"] if not e.get("test_cell")]
    if crashes:
        first = crashes[0]
        flags.append(
            f"crash in {first['grade_id'] or 'cell ' + str(first['index'])}: "
            f"{first['ename']}: {first['evalue']}"[:300]
        )
    restore = record.get("restore") or {}
    if restore.get("reinserted"):
        flags.append(f"locked cells deleted and put back: {', '.join(restore['reinserted'])}")
    if checked is not None:
        flags += [f"metric mismatch: {flag}" for flag in checked.flags]
        flags += [f"grader error in {r.check}: {r.message}" for r in checked.grader_errors]
    return flags


def _write_autograded(item: Pending, notebook: str) -> None:
    """nbgrader's autograded layout: the executed notebook and the timestamp file."""
    executed = item.out / RUN_FOLDER / "executed.ipynb"
    target = item.out / notebook
    if executed.is_file():
        nb = nbformat.read(executed, as_version=4)
        nbformat.write(nb, target)
    else:
        shutil.copyfile(item.notebook, target)
    stamp = item.folder / "timestamp.txt"
    if stamp.is_file():
        shutil.copyfile(stamp, item.out / "timestamp.txt")


def _graded_key(out: Path) -> str | None:
    data = _read_json(out / RESULT_FILE)
    key = data.get("grading_key")
    return key if isinstance(key, str) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
