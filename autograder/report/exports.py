"""Grade exports: Gradescope's autograder ``results.json`` for one submission, and a Canvas
gradebook import CSV for a class. Both are deterministic (sorted, fixed rounding).

Gradescope: one test per check. A check's ``max_score`` is its weight's share of its grade
cell's points among the cell's *judged* checks (passed or failed), so the tests of a cell add
up to the cell's points and score exactly as :mod:`autograder.checks.scoring` does; a check
that hit a grader error is worth 0 here and says so. An autograded cell without checks is one
test of its own; cells graded by hand are left to Gradescope's manual grading and mentioned in
``output``. The top-level ``score`` is the final score, late penalty included.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from autograder.report.render import fmt_measure, fmt_points
from autograder.results import CellView, SubmissionResult

CANVAS_FIXED_COLUMNS = ("Student", "ID", "SIS User ID", "Section")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _round(value: float) -> float:
    return round(value, 4) + 0.0  # + 0.0 turns -0.0 into 0.0


def _cell_tests(cell: CellView) -> list[dict[str, Any]]:
    if not cell.checks:
        score = cell.score or 0.0
        return [
            {
                "name": cell.grade_id,
                "score": _round(score),
                "max_score": _round(cell.points),
                "status": "passed" if score >= cell.points else "failed",
                "output": "no checks ran for this cell",
                "visibility": "visible",
            }
        ]
    judged = [c for c in cell.checks if c.outcome in ("passed", "failed")]
    judged_weight = sum(c.weight for c in judged)
    total_weight = sum(c.weight for c in cell.checks)
    tests = []
    for check in cell.checks:
        if judged_weight > 0:
            share = check.weight / judged_weight if check.outcome != "error" else 0.0
        else:
            share = check.weight / total_weight if total_weight > 0 else 0.0
        max_score = cell.points * share
        output = "\n".join([check.message, *_metric_lines(check.details)])
        if check.outcome == "error":
            output = f"{output}\n(grader error: not counted; a human will review this cell)"
        tests.append(
            {
                "name": f"{cell.grade_id}: {check.check}",
                "score": _round(max_score if check.outcome == "passed" else 0.0),
                "max_score": _round(max_score),
                "status": "passed" if check.outcome == "passed" else "failed",
                "output": output.strip(),
                "visibility": "visible" if check.visible else "hidden",
            }
        )
    return tests


def _metric_lines(details: dict[str, Any]) -> list[str]:
    lines = []
    metrics = details.get("metrics")
    for metric in metrics if isinstance(metrics, list) else []:
        if not isinstance(metric, dict):
            continue
        line = f"{metric.get('name')}: measured by the grader {_measure(metric.get('measured'))}"
        if metric.get("claimed") is not None:
            line += f", your history says {_measure(metric.get('claimed'))}"
        if metric.get("threshold") is not None:
            line += f", required {metric['threshold']}"
        lines.append(line)
    return lines


def _measure(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return fmt_measure(float(value))
    return str(value)


def gradescope_results(result: SubmissionResult) -> dict[str, Any]:
    """The Gradescope autograder payload for ``result`` (see the module docstring)."""
    tests = [t for cell in result.cells if cell.autograded for t in _cell_tests(cell)]
    lines = [f"Status: {result.status}" + (f" ({result.message})" if result.message else "")]
    lines.append(f"Score: {fmt_points(result.score)} / {fmt_points(result.max_score)}")
    if result.late_penalty > 0:
        lines.append(
            f"Late by {fmt_points(result.late_days)} day(s): "
            f"-{fmt_points(result.late_penalty)} point(s) "
            f"from {fmt_points(result.raw_score)}"
        )
    manual = [c for c in result.cells if c.score is None]
    if manual:
        points = sum(c.points for c in manual)
        lines.append(
            f"Graded by hand later: {', '.join(c.grade_id for c in manual)} "
            f"({fmt_points(points)} point(s))"
        )
    return {
        "score": _round(result.score),
        "execution_time": round(result.wall_s),
        "output": "\n".join(lines),
        "tests": tests,
    }


def write_gradescope(result: SubmissionResult, out: Path) -> Path:
    """Write Gradescope's ``results.json`` for ``result`` to ``out`` and return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(gradescope_results(result), ensure_ascii=False, indent=2, sort_keys=True)
    out.write_text(text + "\n", "utf-8")
    return out


def _cell_text(value: str) -> str:
    """Keep a spreadsheet from reading a name as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_canvas_csv(results: list[SubmissionResult], out: Path, *, assignment_column: str) -> Path:
    """Write a Canvas gradebook import CSV (``Student, ID, SIS User ID, Section,
    <assignment_column>``), one row per student sorted by id; the student id goes into
    ``SIS User ID``, Canvas's own ``ID`` and ``Section`` stay empty."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([*CANVAS_FIXED_COLUMNS, assignment_column])
        for result in sorted(results, key=lambda r: r.student):
            writer.writerow(
                [
                    _cell_text(result.student_name),
                    "",
                    _cell_text(result.student),
                    "",
                    fmt_points(result.score),
                ]
            )
    return out
