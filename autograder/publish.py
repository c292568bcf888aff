"""Report stage: feedback pages, the class dashboard and the grade exports, all from the
``result.json`` files of one assignment (and nbgrader's gradebook for its CSV).

Paths: ``feedback/<student>/<a>/report.html`` per student (nbgrader's feedback folder),
``gradebook/<a>/dashboard.html`` for graders, and beside it ``grades.csv`` (nbgrader export),
``canvas.csv`` and ``gradescope/<student>.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

from autograder.config import CourseConfig
from autograder.gradebook import export_nbgrader_csv
from autograder.report.dashboard import write_dashboard
from autograder.report.exports import write_canvas_csv, write_gradescope
from autograder.report.feedback import write_feedback
from autograder.results import SubmissionResult, read_results


def report_path(config: CourseConfig, result: SubmissionResult) -> Path:
    return config.feedback_dir / result.student / result.assignment / "report.html"


def dashboard_path(config: CourseConfig, assignment: str) -> Path:
    return config.gradebook_dir / assignment / "dashboard.html"


def publish(config: CourseConfig, assignment: str) -> Path:
    """Write every report and export of ``assignment``; returns the dashboard's path."""
    results = read_results(config.autograded_dir, assignment)
    dashboard = dashboard_path(config, assignment)
    exports = dashboard.parent
    for result in results:
        result_dir = config.autograded_dir / result.student / assignment
        write_feedback(
            result,
            result_dir,
            report_path(config, result).parent,
            show_hidden=config.show_hidden_checks,
        )
        write_gradescope(result, exports / "gradescope" / f"{result.student}.json")
    write_canvas_csv(results, exports / "canvas.csv", assignment_column=assignment)
    export_nbgrader_csv(config, exports / "grades.csv", assignment)
    return write_dashboard(
        results,
        dashboard,
        report_href=lambda r: os.path.relpath(report_path(config, r), dashboard.parent),
    )
