"""Course configuration: the ``[tool.autograder]`` table of the course's ``pyproject.toml``.

One file holds the course id, assignments (deadlines, late policy), students, the gradebook URL
and the runner limits. Every value has a default, so the demo needs no editing.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from autograder.errors import ConfigError

ROOT_ENV = "AUTOGRADER_ROOT"
DATA_ENV = "AUTOGRADER_DATA_DIR"


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed notebook run."""

    notebook_timeout_s: int = 900
    cell_timeout_s: int = 240
    memory_mb: int = 6144
    processes: int = 256
    disk_mb: int = 1024
    output_kb_per_cell: int = 512


@dataclass(frozen=True)
class Assignment:
    """One assignment: its name (the folder under ``source/``) and its late policy."""

    name: str
    deadline: datetime | None = None
    late_penalty_per_day: float = 0.0
    max_late_days: int = 0


@dataclass(frozen=True)
class Student:
    """One student of the course."""

    id: str
    name: str = ""


@dataclass(frozen=True)
class Extension:
    """Extra days one student has for one assignment."""

    student: str
    assignment: str
    days: float


@dataclass(frozen=True)
class CourseConfig:
    """The whole course configuration, with paths resolved against the course root."""

    root: Path
    course_id: str = "nn-course"
    gradebook_url: str = "sqlite:///gradebook/gradebook.db"
    data_dir: Path = Path(".cache/datasets")
    state_dir: Path = Path(".cache/autograder")
    limits: Limits = field(default_factory=Limits)
    assignments: tuple[Assignment, ...] = ()
    students: tuple[Student, ...] = ()
    extensions: tuple[Extension, ...] = ()
    student_pattern: str | None = None
    show_hidden_checks: bool = False

    @property
    def source_dir(self) -> Path:
        return self.root / "source"

    @property
    def release_dir(self) -> Path:
        return self.root / "release"

    @property
    def grading_tests_dir(self) -> Path:
        return self.root / "grading_tests"

    @property
    def gradebook_dir(self) -> Path:
        return self.root / "gradebook"

    @property
    def db_url(self) -> str:
        """The gradebook URL with a relative SQLite path made absolute against the root."""
        prefix = "sqlite:///"
        if self.gradebook_url.startswith(prefix) and not self.gradebook_url.startswith(
            prefix + "/"
        ):
            return prefix + str(self.root / self.gradebook_url[len(prefix) :])
        return self.gradebook_url

    @property
    def submitted_dir(self) -> Path:
        return self.root / "submitted"

    @property
    def autograded_dir(self) -> Path:
        return self.root / "autograded"

    @property
    def feedback_dir(self) -> Path:
        return self.root / "feedback"

    def student_name(self, student: str) -> str:
        """The roster name of ``student`` (the id itself when not on the roster)."""
        return next((s.name for s in self.students if s.id == student and s.name), student)

    def extension_days(self, student: str, assignment: str) -> float:
        """Days of extension ``student`` has for ``assignment`` (0 when none)."""
        return sum(
            e.days for e in self.extensions if e.student == student and e.assignment == assignment
        )

    def assignment(self, name: str) -> Assignment:
        """The assignment called ``name``; a clear error when the course does not list it."""
        for assignment in self.assignments:
            if assignment.name == name:
                return assignment
        known = ", ".join(a.name for a in self.assignments) or "none"
        raise ConfigError(
            f"{self.root / 'pyproject.toml'}: no assignment {name!r} in [tool.autograder] "
            f"(known: {known})"
        )


def find_root(start: Path | None = None) -> Path:
    """The course root: ``$AUTOGRADER_ROOT``, else the nearest folder up from ``start``
    whose ``pyproject.toml`` has a ``[tool.autograder]`` table."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.autograder]" in pyproject.read_text("utf-8"):
            return folder
    raise ConfigError(
        f"{here}: not inside a course (no pyproject.toml with [tool.autograder] here or above); "
        f"run from the course folder or set {ROOT_ENV}"
    )


def load_config(root: Path | None = None) -> CourseConfig:
    """Read and validate the course configuration under ``root`` (found when omitted)."""
    root = (root or find_root()).resolve()
    path = root / "pyproject.toml"
    try:
        table = tomllib.loads(path.read_text("utf-8")).get("tool", {}).get("autograder", {})
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the course configuration: {err}") from err
    try:
        return _parse(root, table)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: invalid [tool.autograder] table: {err}") from err


def _parse(root: Path, table: dict[str, Any]) -> CourseConfig:
    data_dir = Path(os.environ.get(DATA_ENV) or table.get("data_dir", ".cache/datasets"))
    state_dir = Path(table.get("state_dir", ".cache/autograder"))
    assignments = tuple(
        Assignment(
            name=str(a["name"]),
            deadline=datetime.fromisoformat(a["deadline"]) if a.get("deadline") else None,
            late_penalty_per_day=float(a.get("late_penalty_per_day", 0.0)),
            max_late_days=int(a.get("max_late_days", 0)),
        )
        for a in table.get("assignments", [])
    )
    students = tuple(
        Student(id=str(s["id"]), name=str(s.get("name", ""))) for s in table.get("students", [])
    )
    extensions = tuple(
        Extension(student=str(e["student"]), assignment=str(e["assignment"]), days=float(e["days"]))
        for e in table.get("extensions", [])
    )
    pattern = table.get("student_pattern")
    return CourseConfig(
        root=root,
        course_id=str(table.get("course_id", "nn-course")),
        gradebook_url=str(table.get("gradebook_url", "sqlite:///gradebook/gradebook.db")),
        data_dir=data_dir if data_dir.is_absolute() else root / data_dir,
        state_dir=state_dir if state_dir.is_absolute() else root / state_dir,
        limits=Limits(**table.get("limits", {})),
        assignments=assignments,
        students=students,
        extensions=extensions,
        student_pattern=str(pattern) if pattern else None,
        show_hidden_checks=bool(table.get("show_hidden_checks", False)),
    )
