"""Reports from graded results: per-student feedback pages, the class dashboard and grade
exports (Gradescope ``results.json``, Canvas CSV). They read only ``result.json`` and the run
folder beside it, and render every page with autoescaping Jinja2 templates shipped in
``autograder/report/templates/``.
"""

from __future__ import annotations

from autograder.report.dashboard import write_dashboard
from autograder.report.exports import gradescope_results, write_canvas_csv, write_gradescope
from autograder.report.feedback import REPORT_FILE, write_feedback

__all__ = [
    "REPORT_FILE",
    "gradescope_results",
    "write_canvas_csv",
    "write_dashboard",
    "write_feedback",
    "write_gradescope",
]
