"""The gradebook on a real PostgreSQL server: Debian's server binaries, started on 127.0.0.1
for this test session (trust authentication, a free port, a throw-away data folder).

The same batch graded against SQLite and against PostgreSQL gives the same grades, and two
grading processes writing the same PostgreSQL gradebook at once leave every submission in it
exactly once.
"""

from __future__ import annotations

import csv
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_distributed import (
    TINY,
    assert_graded_once,
    copy_course,
    gradebook_rows,
    release_tiny,
    submit_batch,
)

from autograder.config import CourseConfig, load_config

PG_BIN_ENV = "AUTOGRADER_PG_BIN"
SQLITE_URL = 'gradebook_url = "sqlite:///gradebook/gradebook.db"'


def find_pg_bin() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: ``$AUTOGRADER_PG_BIN``, ``PATH``, or the
    newest Debian ``/usr/lib/postgresql/<version>/bin``."""
    candidates = [os.environ.get(PG_BIN_ENV, "")]
    on_path = shutil.which("initdb")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    candidates += reversed(debian)
    for folder in filter(None, candidates):
        if all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


@dataclass
class PostgresServer:
    """A PostgreSQL server on 127.0.0.1 that this test session started."""

    bindir: Path
    folder: Path
    port: int
    as_user: list[str]
    counter: Iterator[int] = field(default_factory=itertools.count)

    def pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg2

        name = f"gradebook_{next(self.counter)}"
        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name}")
        finally:
            connection.close()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session; skipped only where its binaries are missing."""
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip(
            f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install "
            f"Debian's 'postgresql' package or set {PG_BIN_ENV}"
        )
    pytest.importorskip("psycopg2", reason="psycopg2 is needed for a PostgreSQL gradebook")
    folder = Path(tempfile.mkdtemp(prefix="autograder-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as 'postgres'
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = PostgresServer(bindir, folder, _free_port(), as_user)
    data = folder / "data"
    server.pg(
        "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={server.port} "
        f"-c unix_socket_directories={folder} -c fsync=off -c max_connections=50"
    )
    try:
        server.pg(
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(folder / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
    except subprocess.CalledProcessError as err:
        log = (folder / "server.log").read_text(errors="replace")[-2000:]
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {err.stderr!r}\n{log}") from err
    try:
        yield server
    finally:
        server.pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, mnist_data_dir: Path) -> Path:
    """The tiny course (with its hidden check), released once on SQLite."""
    root = tmp_path_factory.mktemp("tiny-course")
    release_tiny(root, mnist_data_dir)
    return root


def on_postgres(released: Path, target: Path, url: str) -> CourseConfig:
    """A copy of the released course whose gradebook is ``url``, released into it."""
    from autograder.release import release

    copy_course(released, target)
    pyproject = target / "pyproject.toml"
    text = pyproject.read_text("utf-8")
    assert SQLITE_URL in text
    pyproject.write_text(text.replace(SQLITE_URL, f'gradebook_url = "{url}"'), "utf-8")
    config = load_config(target)
    assert config.db_url == url
    release(config, TINY, log=lambda _: None)  # the assignment and its cells, in PostgreSQL
    return config


def totals(config: CourseConfig, target: Path) -> dict[str, dict[str, str]]:
    """``nbgrader export``'s rows per student (scores and penalties)."""
    from autograder.gradebook import export_nbgrader_csv

    export_nbgrader_csv(config, target, TINY)
    with target.open() as handle:
        return {
            row["student_id"]: {
                k: row[k] for k in ("raw_score", "late_submission_penalty", "score", "max_score")
            }
            for row in csv.DictReader(handle)
        }


def _without_ids(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {s: [{k: v for k, v in r.items() if k != "id"} for r in rs] for s, rs in rows.items()}


def test_postgres_gives_the_same_grades_as_sqlite(
    postgres: PostgresServer, released: Path, tmp_path: Path
) -> None:
    from autograder.grade import grade

    lite = copy_course(released, tmp_path / "sqlite")
    pg = on_postgres(released, tmp_path / "postgres", postgres.create_database())
    expected = submit_batch(lite, 6)
    assert submit_batch(pg, 6) == expected
    for config in (lite, pg):
        summary = grade(config, TINY, workers=2, log=lambda _: None)
        assert sorted(summary.graded) == sorted(expected)
        assert_graded_once(config, expected)
    assert _without_ids(gradebook_rows(pg)) == _without_ids(gradebook_rows(lite))
    assert totals(pg, tmp_path / "pg.csv") == totals(lite, tmp_path / "lite.csv")
    assert len(totals(pg, tmp_path / "pg.csv")) == len(expected)
    # a regrade updates the same rows instead of adding new ones
    grade(pg, TINY, workers=2, force=True, log=lambda _: None)
    assert_graded_once(pg, expected)


GRADE_SCRIPT = """\
import sys
from pathlib import Path
from autograder.config import load_config
from autograder.grade import grade
summary = grade(load_config(Path(sys.argv[1])), sys.argv[2], workers=1, force=True,
                log=lambda _: None)
print(len(summary.graded))
"""


def _grade_in_parallel(courses: list[CourseConfig]) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", GRADE_SCRIPT, str(c.root), TINY],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in courses
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]


def test_two_graders_at_once_on_different_students(
    postgres: PostgresServer, released: Path, tmp_path: Path
) -> None:
    url = postgres.create_database()
    first = on_postgres(released, tmp_path / "first", url)
    second = copy_course(first.root, tmp_path / "second")
    expected = submit_batch(first, 3) | submit_batch(second, 3, start=3)
    _grade_in_parallel([first, second])
    assert_graded_once_in(first, second, expected)


def test_two_graders_at_once_on_the_same_students(
    postgres: PostgresServer, released: Path, tmp_path: Path
) -> None:
    url = postgres.create_database()
    first = on_postgres(released, tmp_path / "first", url)
    second = copy_course(first.root, tmp_path / "second")
    expected = submit_batch(first, 4)
    assert submit_batch(second, 4) == expected
    _grade_in_parallel([first, second])
    assert_graded_once(first, expected)
    assert_graded_once(second, expected)


def assert_graded_once_in(
    first: CourseConfig, second: CourseConfig, expected: dict[str, float]
) -> None:
    """Every student once in the shared gradebook; each course's result files agree."""
    rows = gradebook_rows(first)
    assert sorted(rows) == sorted(expected)
    for student, score in expected.items():
        assert len(rows[student]) == 1, f"{student}: {len(rows[student])} submission rows"
        assert rows[student][0]["cells"]["test_answer"] == [pytest.approx(score)]
        owner = first if (first.submitted_dir / student).is_dir() else second
        assert (owner.autograded_dir / student / TINY / "result.json").is_file()
