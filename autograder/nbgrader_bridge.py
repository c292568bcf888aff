"""The one place that drives nbgrader's converters and gradebook.

nbgrader is configured in code from the course configuration (no ``nbgrader_config.py``): the
course root, course id and gradebook URL. Its gradebook shells out to ``alembic``, so the
interpreter's ``bin/`` folder is put on ``PATH`` first.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from traitlets.config import Config

from autograder.config import CourseConfig
from autograder.errors import AutograderError


def ensure_tools_on_path() -> None:
    """Put this interpreter's ``bin/`` (alembic, jupyter) first on ``PATH``."""
    bindir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir, *parts])


def nbgrader_config(config: CourseConfig, root: Path) -> Config:
    """A traitlets config for nbgrader's apps on course root ``root``."""
    cfg = Config()
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.course_id = config.course_id
    cfg.CourseDirectory.db_url = config.db_url
    cfg.Application.log_level = "WARN"
    return cfg


def generate_assignment(config: CourseConfig, assignment: str) -> Path:
    """Run nbgrader's generate_assignment into a scratch course, then swap the result into
    ``release/<assignment>/``; the gradebook records the assignment and its grade cells."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    ensure_tools_on_path()
    config.gradebook_dir.mkdir(parents=True, exist_ok=True)
    target = config.release_dir / assignment
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="release-", dir=config.state_dir) as tmp:
        scratch = Path(tmp)
        shutil.copytree(
            config.source_dir / assignment,
            scratch / "source" / assignment,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
        )
        cfg = nbgrader_config(config, scratch)
        coursedir = CourseDirectory(config=cfg)
        coursedir.assignment_id = assignment
        app: Any = GenerateAssignment(coursedir=coursedir, config=cfg)
        app.force = True
        app.create_assignment = True
        try:
            app.start()
        except Exception as err:
            raise AutograderError(
                f"{config.source_dir / assignment}: nbgrader generate_assignment failed: {err}"
            ) from err
        produced = scratch / "release" / assignment
        if not produced.is_dir():
            raise AutograderError(
                f"{config.source_dir / assignment}: nbgrader produced no release folder"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        old = scratch / "previous"
        if target.exists():
            target.rename(old)
        produced.rename(target)
    return target
