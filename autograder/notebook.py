"""Reading notebooks and checking their nbgrader metadata.

Every error names the file and, where there is one, the cell (by its grade id or its index),
so that an instructor can go straight to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from autograder.errors import NotebookError

NBGRADER_SCHEMA = 3


@dataclass(frozen=True)
class GradeCell:
    """An nbgrader grade cell: autograded tests or a manually graded answer."""

    grade_id: str
    points: float
    autograded: bool
    index: int


def autograded_points(cells: dict[str, GradeCell]) -> dict[str, float]:
    """Points per autograded grade cell: what the checks score."""
    return {c.grade_id: c.points for c in cells.values() if c.autograded}


def cell_label(cell: Any, index: int) -> str:
    """A human label for a cell: its nbgrader grade id when it has one, else its position."""
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"cell {index} ({grade_id})" if grade_id else f"cell {index}"


def read_notebook(path: Path) -> Any:
    """Read and validate a notebook as nbformat 4; one clear error when it is not one."""
    try:
        raw = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise NotebookError(f"{path}: cannot read the notebook: {err}") from err
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise NotebookError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from err
    if not isinstance(data, dict) or "cells" not in data:
        raise NotebookError(f"{path}: not a Jupyter notebook (no 'cells' list)")
    if data.get("nbformat") != 4:
        raise NotebookError(
            f"{path}: nbformat {data.get('nbformat')!r} is not supported; save it with "
            "Jupyter as nbformat 4"
        )
    try:
        nb = nbformat.reads(raw, as_version=4)
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise NotebookError(f"{path}: invalid nbformat at {where}: {err.message}") from err
    except Exception as err:
        raise NotebookError(f"{path}: invalid notebook: {err}") from err
    return nb


def grade_cells(nb: Any, path: Path) -> list[GradeCell]:
    """The grade cells of a source notebook, after checking their nbgrader metadata.

    Rejects duplicate grade ids, grade cells without positive points, cells marked both as
    autograder tests and as locked-free solutions in code, and unknown schema versions.
    """
    seen: dict[str, int] = {}
    found: list[GradeCell] = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if not meta:
            continue
        label = cell_label(cell, index)
        grade_id = meta.get("grade_id")
        if not grade_id:
            raise NotebookError(f"{path}: {label} has nbgrader metadata but no grade_id")
        if grade_id in seen:
            raise NotebookError(
                f"{path}: {label} repeats grade_id {grade_id!r} of cell {seen[grade_id]}"
            )
        seen[grade_id] = index
        schema = meta.get("schema_version", NBGRADER_SCHEMA)
        if schema != NBGRADER_SCHEMA:
            raise NotebookError(
                f"{path}: {label} has nbgrader schema_version {schema}, expected "
                f"{NBGRADER_SCHEMA} (run `nbgrader update` on it)"
            )
        if not meta.get("grade"):
            continue
        points = meta.get("points")
        if not isinstance(points, int | float) or isinstance(points, bool) or points <= 0:
            raise NotebookError(
                f"{path}: {label} is a grade cell without positive points (points={points!r})"
            )
        autograded = cell.cell_type == "code" and not meta.get("solution")
        found.append(GradeCell(grade_id, float(points), autograded, index))
    if not found:
        raise NotebookError(f"{path}: no grade cells; nothing in this notebook would be scored")
    return found
