"""The graded result of one submission: the record that crosses from grading to reports.

``autograded/<student>/<assignment>/result.json`` holds it; the feedback report, the
dashboard and the exports read only these files (and the run folder beside them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder.errors import AutograderError

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class CheckView:
    """One check's verdict as reports show it."""

    check: str
    cell: str
    weight: float
    visible: bool
    outcome: str  # passed | failed | error
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CellView:
    """One nbgrader grade cell: autograded (with its checks) or graded by hand."""

    grade_id: str
    points: float
    score: float | None  # None: waiting for a human (manual cells)
    autograded: bool
    needs_human: bool
    checks: tuple[CheckView, ...] = ()


@dataclass(frozen=True)
class SubmissionResult:
    """Everything known about one graded submission."""

    student: str
    student_name: str
    assignment: str
    notebook: str
    notebook_sha256: str
    grading_key: str
    attempt: int
    submitted_at: str | None
    deadline: str | None
    late_days: float
    late_penalty: float
    raw_score: float
    score: float
    max_score: float
    status: str
    message: str
    wall_s: float
    device: str
    cells: tuple[CellView, ...]
    flags: tuple[str, ...]
    run_dir: str  # relative to the result file's folder

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> SubmissionResult:
        cells = tuple(
            CellView(
                **{
                    **c,
                    "checks": tuple(
                        CheckView(**{**k, "flags": tuple(k["flags"])}) for k in c["checks"]
                    ),
                }
            )
            for c in data["cells"]
        )
        return SubmissionResult(**{**data, "cells": cells, "flags": tuple(data["flags"])})


def write_result(result: SubmissionResult, folder: Path) -> Path:
    """Write ``result.json`` atomically into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / RESULT_FILE
    tmp = target.with_suffix(".tmp")
    tmp.write_text(result.to_json() + "\n", "utf-8")
    tmp.replace(target)
    return target


def read_result(path: Path) -> SubmissionResult:
    """Read one ``result.json``; a clear error naming the file when it is damaged."""
    try:
        return SubmissionResult.from_dict(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise AutograderError(f"{path}: not a valid graded result: {err}") from err


def read_results(autograded: Path, assignment: str) -> list[SubmissionResult]:
    """Every student's result for ``assignment`` under ``autograded/``, sorted by student."""
    paths = sorted(autograded.glob(f"*/{assignment}/{RESULT_FILE}"))
    return [read_result(p) for p in paths]
