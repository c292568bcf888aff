"""Running an assignment's checks over a batch of run folders in one pytest session, in the
trusted grader process, and turning the verdicts into grade-cell scores."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autograder.checks.scoring import CellScore, CheckResult, score_cells
from autograder.errors import AutograderError

VISIBLE_FILE = "test_visible.py"


@dataclass(frozen=True)
class CheckRun:
    """The verdicts and scores of one submission."""

    run_dir: Path
    results: tuple[CheckResult, ...]
    scores: dict[str, CellScore]

    @property
    def flags(self) -> list[str]:
        return [flag for result in self.results for flag in result.flags]

    @property
    def grader_errors(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome == "error"]


def check_files(checks_dir: Path, *, visible_only: bool) -> list[Path]:
    """The check modules of an assignment (``test_*.py``); only the visible one on request."""
    if visible_only:
        files = [checks_dir / VISIBLE_FILE] if (checks_dir / VISIBLE_FILE).is_file() else []
    else:
        files = sorted(checks_dir.glob("test_*.py"))
    if not files:
        raise AutograderError(f"{checks_dir}: no checks ({VISIBLE_FILE} / test_*.py) found")
    return files


def collect_cells(checks_dir: Path, *, visible_only: bool = False) -> dict[str, list[str]]:
    """Which checks score which grade cell, found by collecting the check modules."""
    files = check_files(checks_dir, visible_only=visible_only)
    with tempfile.TemporaryDirectory(prefix="autograder-collect-") as tmp:
        out = Path(tmp) / "cells.json"
        code = _pytest([*map(str, files), "--collect-only", "--ag-cells", str(out)], quiet=True)
        if code not in (0, 5) or not out.exists():
            raise AutograderError(f"{checks_dir}: the checks cannot be collected (pytest {code})")
        cells: dict[str, list[str]] = json.loads(out.read_text("utf-8"))
    return cells


def run_checks(
    checks_dir: Path,
    run_dirs: Sequence[Path],
    points: dict[str, float],
    *,
    data_dir: Path | None = None,
    visible_only: bool = False,
    quiet: bool = True,
) -> dict[Path, CheckRun]:
    """Run the checks over every folder of ``run_dirs`` in one pytest session."""
    files = check_files(checks_dir, visible_only=visible_only)
    if not run_dirs:
        return {}
    with tempfile.TemporaryDirectory(prefix="autograder-checks-") as tmp:
        results_file = Path(tmp) / "results.json"
        args = [*map(str, files), "--ag-results", str(results_file)]
        for run_dir in run_dirs:
            args += ["--ag-run", str(run_dir.resolve())]
        if data_dir is not None:
            args += ["--ag-data-dir", str(data_dir)]
        if visible_only:
            args.append("--ag-visible-only")
        code = _pytest(args, quiet=quiet)
        if not results_file.exists():
            raise AutograderError(f"{checks_dir}: the checks did not run (pytest exit {code})")
        raw: dict[str, list[dict[str, Any]]] = json.loads(results_file.read_text("utf-8"))
    runs = {}
    for run_dir in run_dirs:
        found = raw.get(str(run_dir.resolve()), [])
        results = tuple(CheckResult(**{**r, "flags": tuple(r["flags"])}) for r in found)
        runs[run_dir] = CheckRun(run_dir, results, score_cells(results, points))
    return runs


def _pytest(args: list[str], *, quiet: bool) -> int:
    """One in-process pytest session with the autograder plugin and no project ini file.

    The check modules it imports are dropped from ``sys.modules`` afterwards, so the next
    session (another course, or changed checks) imports them afresh instead of reusing a
    module of the same name."""
    base = [
        "-c",
        os.devnull,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--import-mode=importlib",
        "-q",
        "--no-header",
        "-W",
        "ignore::DeprecationWarning",
    ]
    before = set(sys.modules)
    try:
        if quiet:
            with contextlib.redirect_stdout(io.StringIO()):
                return int(pytest.main([*base, *args]))
        return int(pytest.main([*base, *args]))
    finally:
        for name in set(sys.modules) - before:
            if name.startswith(("test_", "conftest")) or ".test_" in name:
                del sys.modules[name]
