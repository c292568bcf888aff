"""The one scoring rule.

A grade cell's score is its points times the weighted share of its checks that pass::

    score(cell) = points(cell) * sum(weight of passed checks) / sum(weight of judged checks)

A check that passed or failed is *judged*. A check that hit a grader error is not judged: it
never counts against the student, and the cell is flagged for a human. A cell whose checks all
hit grader errors scores 0 until a human looks (flagged), and a cell with no checks at all is
not autograded here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """One check on one submission."""

    check: str
    cell: str
    weight: float
    visible: bool
    outcome: str  # "passed" | "failed" | "error"
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CellScore:
    """The score of one grade cell."""

    cell: str
    points: float
    score: float
    passed: int
    failed: int
    errors: int

    @property
    def needs_human(self) -> bool:
        return self.errors > 0


def score_cells(results: Iterable[CheckResult], points: dict[str, float]) -> dict[str, CellScore]:
    """Apply the rule above to every grade cell in ``points``."""
    by_cell: dict[str, list[CheckResult]] = {cell: [] for cell in points}
    for result in results:
        by_cell.setdefault(result.cell, []).append(result)
    scores = {}
    for cell, cell_points in points.items():
        checks = by_cell.get(cell, [])
        judged = [r for r in checks if r.outcome in ("passed", "failed")]
        total = sum(r.weight for r in judged)
        passed = sum(r.weight for r in judged if r.outcome == "passed")
        score = cell_points * passed / total if total > 0 else 0.0
        scores[cell] = CellScore(
            cell=cell,
            points=cell_points,
            score=round(score, 4),
            passed=sum(r.outcome == "passed" for r in checks),
            failed=sum(r.outcome == "failed" for r in checks),
            errors=sum(r.outcome == "error" for r in checks),
        )
    return scores
