"""A student's self-check: run their notebook like the grader does, then only the visible
checks, from the course (``grading_tests/<a>/test_visible.py``) or from the released folder
(its copy of the same file). Hidden checks are never looked up here."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from autograder.checks.run import VISIBLE_FILE, run_checks
from autograder.config import Limits, load_config
from autograder.datasets import mnist_path
from autograder.errors import AutograderError, ConfigError
from autograder.runner.run import RunRequest, run_submission


def self_check(
    notebook: Path, *, assignment: str | None, out: Path | None, sandbox: bool
) -> dict[str, Any]:
    """Run ``notebook`` and its visible checks; returns a JSON-ready report."""
    notebook = notebook.resolve()
    name = assignment or notebook.parent.name
    limits, mnist, release, checks_dir = Limits(), None, None, notebook.parent
    try:
        config = load_config()
    except ConfigError:
        config = None
    if config is not None and (config.grading_tests_dir / name / VISIBLE_FILE).is_file():
        limits, checks_dir = config.limits, config.grading_tests_dir / name
        mirror = mnist_path(config.data_dir)
        mnist = mirror if mirror.is_file() else None
        released = config.release_dir / name / notebook.name
        release = released if released.is_file() else None
    if not (checks_dir / VISIBLE_FILE).is_file():
        raise AutograderError(
            f"{notebook}: no visible checks for {name!r} (expected {VISIBLE_FILE} beside the "
            "notebook, as in the released folder, or run inside the course)"
        )
    with tempfile.TemporaryDirectory(prefix="autograder-check-") as tmp:
        run_dir = out or Path(tmp) / "run"
        record = run_submission(
            RunRequest(
                assignment=name,
                notebook=notebook,
                out=run_dir,
                limits=limits,
                mnist_npz=mnist,
                release_notebook=release,
                sandbox=sandbox,
            )
        )
        checked = run_checks(
            checks_dir,
            [run_dir],
            {},
            visible_only=True,
            data_dir=config.data_dir if config else None,
        )[run_dir]
    checks = [
        {k: v for k, v in asdict(r).items() if k in ("check", "cell", "outcome", "message")}
        for r in checked.results
    ]
    return {
        "notebook": str(notebook),
        "assignment": name,
        "status": record["status"],
        "message": record["message"],
        "wall_s": record["wall_s"],
        "checks": checks,
        "passed": sum(c["outcome"] == "passed" for c in checks),
    }
