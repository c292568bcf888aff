"""Recording grades in nbgrader's gradebook (SQLite by default, any SQLAlchemy URL).

Only this module writes the gradebook. Scores go where ``nbgrader autograde`` puts them
(``Grade.auto_score``), the late penalty into ``SubmittedNotebook.late_submission_penalty``,
so ``nbgrader export`` and the formgrader show the same totals; manual scores a grader
entered in the formgrader are never touched by a regrade.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from autograder.config import CourseConfig
from autograder.errors import AutograderError
from autograder.nbgrader_bridge import ensure_tools_on_path
from autograder.results import SubmissionResult


@contextlib.contextmanager
def open_gradebook(config: CourseConfig) -> Iterator[Any]:
    """nbgrader's :class:`Gradebook` on the course's database; a clear error when it fails."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    # nbgrader 0.9 builds submissions in a way SQLAlchemy 2 warns about; harmless here
    warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")
    ensure_tools_on_path()
    try:
        gradebook = Gradebook(config.db_url, config.course_id)
    except Exception as err:
        raise AutograderError(f"{config.db_url}: cannot open the gradebook: {err}") from err
    try:
        yield gradebook
    finally:
        gradebook.close()


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


RECORD_ATTEMPTS = 3


def record_result(
    gb: Any, config: CourseConfig, result: SubmissionResult, notebook: str, extension_days: float
) -> None:
    """Write one graded submission into the open gradebook ``gb`` in one transaction,
    retrying when another grading process created the same student or submission row first
    (a unique-key race that rolls back cleanly)."""
    from nbgrader.api import InvalidEntry
    from sqlalchemy.exc import IntegrityError

    for attempt in range(RECORD_ATTEMPTS):
        try:
            _record_once(gb, config, result, notebook, extension_days)
            return
        except AutograderError as err:
            raced = isinstance(err.__cause__, IntegrityError | InvalidEntry)
            if not raced or attempt == RECORD_ATTEMPTS - 1:
                raise


def _record_once(
    gb: Any, config: CourseConfig, result: SubmissionResult, notebook: str, extension_days: float
) -> None:
    assignment = config.assignment(result.assignment)
    notebook = Path(notebook).stem  # nbgrader names notebooks without ".ipynb"
    first, _, last = result.student_name.partition(" ")
    try:
        gb.update_or_create_assignment(result.assignment, duedate=_naive_utc(assignment.deadline))
        gb.update_or_create_student(
            result.student, first_name=first or None, last_name=last or None
        )
        submitted = datetime.fromisoformat(result.submitted_at) if result.submitted_at else None
        gb.update_or_create_submission(
            result.assignment,
            result.student,
            timestamp=_naive_utc(submitted),
            extension=timedelta(days=extension_days) if extension_days else None,
        )
        for cell in result.cells:
            grade = gb.find_grade(cell.grade_id, notebook, result.assignment, result.student)
            if cell.autograded:
                grade.auto_score = cell.score
                grade.needs_manual_grade = cell.needs_human
            elif grade.manual_score is None:
                grade.auto_score = None
                grade.needs_manual_grade = True
        submitted_nb = gb.find_submission_notebook(notebook, result.assignment, result.student)
        submitted_nb.late_submission_penalty = result.late_penalty
        submitted_nb.flagged = bool(result.flags)
        gb.db.commit()
    except Exception as err:
        gb.db.rollback()
        raise AutograderError(
            f"{config.db_url}: cannot record {result.student}/{result.assignment}: {err}"
        ) from err


def export_nbgrader_csv(config: CourseConfig, target: Path, assignment: str) -> Path:
    """``nbgrader export``'s CSV (one row per student and assignment) written to ``target``."""
    from nbgrader.plugins import CsvExportPlugin

    target.parent.mkdir(parents=True, exist_ok=True)
    plugin = CsvExportPlugin()
    plugin.to = str(target)
    plugin.assignment = [assignment]
    with open_gradebook(config) as gb:
        plugin.export(gb)
    return target
