"""The class dashboard for graders: score histogram, pass rate per check (hidden checks
included), the slowest runs, the flagged submissions and every student's score, each row
linking to that student's feedback report. Pure HTML, CSS and inline SVG: no scripts, no
network.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autograder.report.render import render_page
from autograder.results import SubmissionResult

SANDBOX_STATUSES = ("memory-limit", "process-limit", "disk-limit", "output-limit", "killed")
CRASH_STATUSES = ("cell-error", "harvest-failed", "invalid-notebook")
HISTOGRAM_BINS = 10
SLOWEST = 10
TAG_LABELS: dict[str, str] = {
    "timeout": "тайм-аут",
    "crash": "ошибка выполнения",
    "sandbox": "лимит песочницы",
    "metric-mismatch": "расхождение метрик",
    "late": "опоздание",
    "needs-human": "нужен человек",
    "flagged": "есть отметки",
}


@dataclass(frozen=True)
class Row:
    """One submission as the dashboard lists it."""

    result: SubmissionResult
    href: str
    tags: tuple[str, ...]
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Bin:
    """One histogram bar: a score range, its count and the SVG geometry."""

    label: str
    count: int
    x: float
    y: float
    height: float


@dataclass(frozen=True)
class CheckRate:
    """How one check fared across the class."""

    cell: str
    check: str
    visible: bool
    passed: int
    failed: int
    errors: int

    @property
    def rate(self) -> float:
        judged = self.passed + self.failed
        return self.passed / judged if judged else 0.0


@dataclass(frozen=True)
class Slow:
    """One of the slowest runs, with its bar width as a share of the slowest."""

    row: Row
    share: float


def submission_tags(result: SubmissionResult) -> tuple[str, ...]:
    """Why a submission deserves a grader's look (empty when it does not)."""
    tags = []
    if result.status == "timeout":
        tags.append("timeout")
    if result.status in CRASH_STATUSES:
        tags.append("crash")
    if result.status in SANDBOX_STATUSES:
        tags.append("sandbox")
    if any(check.flags for cell in result.cells for check in cell.checks):
        tags.append("metric-mismatch")
    if result.late_days > 0:
        tags.append("late")
    if any(cell.autograded and cell.needs_human for cell in result.cells):
        tags.append("needs-human")
    if not tags and result.flags:
        tags.append("flagged")
    return tuple(tags)


def write_dashboard(
    results: list[SubmissionResult],
    out: Path,
    *,
    report_href: Callable[[SubmissionResult], str],
) -> Path:
    """Write the class dashboard to ``out`` and return it; ``report_href(result)`` gives the
    link (relative to ``out``'s folder, or absolute) to each student's feedback report."""
    ordered = sorted(results, key=lambda r: (r.student, r.assignment))
    rows = [Row(r, report_href(r), submission_tags(r), r.flags) for r in ordered]
    scores = [r.score for r in ordered]
    slowest = sorted(rows, key=lambda row: (-row.result.wall_s, row.result.student))[:SLOWEST]
    top = slowest[0].result.wall_s if slowest else 0.0
    return render_page(
        "dashboard.html",
        out,
        assignments=sorted({r.assignment for r in ordered}),
        rows=rows,
        flagged=[row for row in rows if row.tags],
        tag_labels=TAG_LABELS,
        tag_counts=_tag_counts(rows),
        histogram=_histogram(ordered),
        rates=_check_rates(ordered),
        slowest=[Slow(row, row.result.wall_s / top if top > 0 else 0.0) for row in slowest],
        count=len(ordered),
        mean=statistics.fmean(scores) if scores else None,
        median=statistics.median(scores) if scores else None,
        max_score=max((r.max_score for r in ordered), default=0.0),
        manual_pending=sum(1 for r in ordered for cell in r.cells if cell.score is None),
    )


def _tag_counts(rows: list[Row]) -> dict[str, int]:
    return {tag: sum(tag in row.tags for row in rows) for tag in TAG_LABELS}


HIST_WIDTH = 640.0
HIST_HEIGHT = 160.0


def _histogram(results: list[SubmissionResult]) -> list[Bin]:
    """Scores as shares of each result's maximum, in :data:`HISTOGRAM_BINS` equal ranges."""
    counts = [0] * HISTOGRAM_BINS
    for result in results:
        share = result.score / result.max_score if result.max_score > 0 else 0.0
        index = min(HISTOGRAM_BINS - 1, max(0, int(share * HISTOGRAM_BINS)))
        counts[index] += 1
    peak = max(counts) if results else 0
    width = HIST_WIDTH / HISTOGRAM_BINS
    bins = []
    for index, count in enumerate(counts):
        height = round(HIST_HEIGHT * count / peak, 1) if peak else 0.0
        low, high = index * 100 // HISTOGRAM_BINS, (index + 1) * 100 // HISTOGRAM_BINS
        bins.append(
            Bin(
                f"{low}–{high}%",
                count,
                round(index * width, 1),
                round(HIST_HEIGHT - height, 1),
                height,
            )
        )
    return bins


def _check_rates(results: list[SubmissionResult]) -> list[CheckRate]:
    """Pass counts per check, in the order cells and checks first appear."""
    order: list[tuple[str, str]] = []
    visible: dict[tuple[str, str], bool] = {}
    counts: dict[tuple[str, str], list[int]] = {}
    for result in results:
        for cell in result.cells:
            for check in cell.checks:
                key = (cell.grade_id, check.check)
                if key not in counts:
                    order.append(key)
                    counts[key] = [0, 0, 0]
                    visible[key] = check.visible
                slot = {"passed": 0, "failed": 1}.get(check.outcome, 2)
                counts[key][slot] += 1
    return [
        CheckRate(cell, check, visible[(cell, check)], *counts[(cell, check)])
        for cell, check in order
    ]
