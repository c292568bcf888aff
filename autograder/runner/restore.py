"""Restore the instructor's cells of a submission from the released notebook, as nbgrader
does before autograding: locked cells and test cells come back verbatim, in the release's
order; the student's answer cells and any cells they added keep their content.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RestoreReport:
    """What restoring changed: cells put back, re-ordered, missing answers, extra cells."""

    restored: list[str] = field(default_factory=list)
    reinserted: list[str] = field(default_factory=list)
    reordered: bool = False
    missing_answers: list[str] = field(default_factory=list)
    extra_cells: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "restored": self.restored,
            "reinserted": self.reinserted,
            "reordered": self.reordered,
            "missing_answers": self.missing_answers,
            "extra_cells": self.extra_cells,
        }


def _grade_id(cell: Any) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader") or {}
    gid = meta.get("grade_id")
    return gid if isinstance(gid, str) else None


def _instructor_owned(cell: Any) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader") or {}
    return bool(meta.get("locked")) or (bool(meta.get("grade")) and not meta.get("solution"))


def restore_cells(submission: Any, release: Any) -> tuple[Any, RestoreReport]:
    """A copy of ``submission`` laid out on ``release``'s cells; see the module docstring."""
    report = RestoreReport()
    release_ids = [gid for c in release.cells if (gid := _grade_id(c))]
    wanted = set(release_ids)
    by_id: dict[str, Any] = {}
    order: list[str] = []
    # student cells that follow a known cell (or lead the notebook), kept with it
    trailing: dict[str | None, list[Any]] = {}
    anchor: str | None = None
    for cell in submission.cells:
        gid = _grade_id(cell)
        if gid is not None and gid in wanted and gid not in by_id:
            by_id[gid] = cell
            order.append(gid)
            anchor = gid
        else:
            trailing.setdefault(anchor, []).append(cell)
            report.extra_cells += 1

    known = [gid for gid in order if gid in wanted]
    report.reordered = known != [gid for gid in release_ids if gid in known]

    cells: list[Any] = list(trailing.get(None, []))
    for cell in release.cells:
        gid = _grade_id(cell)
        theirs = by_id.get(gid) if gid else None
        if gid is None or _instructor_owned(cell):
            if theirs is None and gid is not None:
                report.reinserted.append(gid)
            elif theirs is not None and (
                theirs.get("source") != cell.get("source")
                or theirs.get("cell_type") != cell.get("cell_type")
            ):
                report.restored.append(gid or "")
            restored = copy.deepcopy(cell)
            if theirs is not None and restored.cell_type == "code":
                restored["outputs"] = []
            cells.append(restored)
        elif theirs is None:
            report.missing_answers.append(gid)
            cells.append(copy.deepcopy(cell))
        else:
            mine = copy.deepcopy(theirs)
            mine["metadata"]["nbgrader"] = copy.deepcopy(cell["metadata"]["nbgrader"])
            if mine.get("cell_type") != cell.get("cell_type"):
                report.restored.append(gid)
                mine = copy.deepcopy(cell)
            cells.append(mine)
        if gid is not None:
            cells.extend(trailing.get(gid, []))
    result = copy.deepcopy(submission)
    result.cells = cells
    return result, report
