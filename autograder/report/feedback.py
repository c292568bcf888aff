"""The per-student feedback report: ``feedback/<student>/<assignment>/report.html``.

It shows the total and late penalty, every grade cell's score, each visible check's verdict
and message, layer tables side by side with the first difference marked, the grader's own
measurements beside the student's claims, the run (status, time, device, the student's
tracebacks) and the plots the notebook drew or saved (copied to ``plots/`` beside the page).

Hidden checks are summarized per cell ("2 скрытые проверки: 1 пройдена, 1 не пройдена")
without names or messages unless ``show_hidden``. What they measured (layer tables, metrics)
is evidence about the student's own work, not the check itself, and is shown unnamed unless
``hidden_evidence=False``. Grader-facing flags appear only with ``show_hidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.report.render import render_page
from autograder.report.run_folder import RunError, copy_plots, read_run_folder
from autograder.results import CellView, CheckView, SubmissionResult

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class LayerCells:
    """One layer row as shown: type and config, output shape, parameter count."""

    layer: str
    output_shape: str
    params: int


@dataclass(frozen=True)
class LayerPair:
    """Row ``number`` of the expected and found stacks (``None`` past a stack's end)."""

    number: int
    expected: LayerCells | None
    found: LayerCells | None
    first_difference: bool
    differs: bool


@dataclass(frozen=True)
class LayerTable:
    """Expected and found layer stacks of one model, aligned row by row."""

    model: str
    rows: tuple[LayerPair, ...]
    first_difference: int | None  # 1-based row number


@dataclass(frozen=True)
class Metric:
    """A grader measurement beside the student's claimed value and the threshold."""

    name: str
    measured: float | None
    claimed: float | None
    threshold: str | None


@dataclass(frozen=True)
class CheckRow:
    """One check as the report shows it."""

    name: str
    visible: bool
    outcome: str
    message: str
    layer_tables: tuple[LayerTable, ...]
    metrics: tuple[Metric, ...]
    flags: tuple[str, ...]


@dataclass(frozen=True)
class HiddenSummary:
    """Counts of a cell's hidden checks, and their unnamed evidence."""

    total: int
    passed: int
    failed: int
    errors: int
    layer_tables: tuple[LayerTable, ...]
    metrics: tuple[Metric, ...]


@dataclass(frozen=True)
class CellSection:
    """One grade cell: score, shown checks and the hidden summary."""

    grade_id: str
    points: float
    score: float | None
    autograded: bool
    needs_human: bool
    checks: tuple[CheckRow, ...]
    hidden: HiddenSummary | None


def write_feedback(
    result: SubmissionResult,
    result_dir: Path,
    out_dir: Path,
    *,
    show_hidden: bool = False,
    hidden_evidence: bool = True,
) -> Path:
    """Write ``out_dir/report.html`` for ``result`` (whose ``result.json`` lies in
    ``result_dir``) and copy the student's plots to ``out_dir/plots/``; return the page's path.

    ``show_hidden`` reveals hidden checks' names, messages and the grader's flags (a grader's
    view); ``hidden_evidence`` shows the layer tables and measurements of hidden checks
    without naming them. The same input always gives byte-identical output.
    """
    run_dir = result_dir / result.run_dir
    run = read_run_folder(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = copy_plots(run, run_dir, out_dir)
    cells = tuple(
        _cell_section(cell, show_hidden=show_hidden, hidden_evidence=hidden_evidence)
        for cell in result.cells
    )
    manual_points = sum(c.points for c in result.cells if c.score is None)
    return render_page(
        "feedback.html",
        out_dir / REPORT_FILE,
        result=result,
        cells=cells,
        manual_points=manual_points,
        run_found=run.found,
        peak_memory_mb=run.peak_memory_mb,
        errors=_sorted_errors(run.errors),
        figures=tuple(p for p in plots if p.kind == "figure"),
        saved=tuple(p for p in plots if p.kind == "saved"),
        flags=result.flags if show_hidden else (),
        show_hidden=show_hidden,
    )


def _sorted_errors(errors: tuple[RunError, ...]) -> tuple[RunError, ...]:
    return tuple(sorted(errors, key=lambda e: e.index))


def _cell_section(cell: CellView, *, show_hidden: bool, hidden_evidence: bool) -> CellSection:
    shown = [c for c in cell.checks if c.visible or show_hidden]
    hidden = [c for c in cell.checks if not c.visible and not show_hidden]
    summary = None
    if hidden:
        evidence = hidden if hidden_evidence else []
        summary = HiddenSummary(
            total=len(hidden),
            passed=sum(c.outcome == "passed" for c in hidden),
            failed=sum(c.outcome == "failed" for c in hidden),
            errors=sum(c.outcome == "error" for c in hidden),
            layer_tables=tuple(t for c in evidence for t in _layer_tables(c.details)),
            metrics=tuple(m for c in evidence for m in _metrics(c.details)),
        )
    return CellSection(
        grade_id=cell.grade_id,
        points=cell.points,
        score=cell.score,
        autograded=cell.autograded,
        needs_human=cell.needs_human,
        checks=tuple(_check_row(c, show_flags=show_hidden) for c in shown),
        hidden=summary,
    )


def _check_row(check: CheckView, *, show_flags: bool) -> CheckRow:
    return CheckRow(
        name=check.check,
        visible=check.visible,
        outcome=check.outcome,
        message=check.message,
        layer_tables=_layer_tables(check.details),
        metrics=_metrics(check.details),
        flags=check.flags if show_flags else (),
    )


def _layer_tables(details: dict[str, Any]) -> tuple[LayerTable, ...]:
    """``details["layer_tables"]`` (one table, or a list of them) as aligned rows."""
    raw = details.get("layer_tables")
    items = raw if isinstance(raw, list) else [raw]
    tables = []
    for item in items:
        if not isinstance(item, dict):
            continue
        expected = _layer_rows(item.get("expected"))
        found = _layer_rows(item.get("found"))
        first = item.get("first_difference")
        first_index = first if isinstance(first, int) and not isinstance(first, bool) else None
        rows = []
        for index in range(max(len(expected), len(found))):
            want = expected[index] if index < len(expected) else None
            got = found[index] if index < len(found) else None
            rows.append(LayerPair(index + 1, want, got, index == first_index, want != got))
        tables.append(
            LayerTable(
                model=str(item.get("model", "")),
                rows=tuple(rows),
                first_difference=None if first_index is None else first_index + 1,
            )
        )
    return tuple(tables)


def _layer_rows(raw: object) -> list[LayerCells]:
    if not isinstance(raw, list):
        return []
    return [
        LayerCells(str(r.get("layer", "")), str(r.get("output_shape", "")), _int(r.get("params")))
        for r in raw
        if isinstance(r, dict)
    ]


def _metrics(details: dict[str, Any]) -> tuple[Metric, ...]:
    raw = details.get("metrics")
    if not isinstance(raw, list):
        return ()
    return tuple(
        Metric(
            name=str(m.get("name", "")),
            measured=_number(m.get("measured")),
            claimed=_number(m.get("claimed")),
            threshold=None if m.get("threshold") is None else str(m["threshold"]),
        )
        for m in raw
        if isinstance(m, dict)
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
