"""Grading on a real Dask cluster: a scheduler and two workers started as subprocesses on
127.0.0.1 grade a tiny assignment; a worker killed mid-batch, an unreachable scheduler and a
killed coordinator leave every submission graded exactly once.

The tiny course (one solution cell, one autograded test cell worth 2 points, a visible and a
hidden check) is also used by ``tests/test_postgres.py`` and ``benchmarks/bench_dask.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from autograder.config import CourseConfig, load_config

pytest.importorskip("distributed", reason="grading on a cluster needs dask[distributed]")
from autograder.errors import AutograderError

BIN = Path(sys.executable).parent
TINY = "tiny"
NOTEBOOK = "tiny.ipynb"

# -- the tiny course (tests/tiny_course.py) with a hidden check added ----------------------
POINTS = 4.0
HIDDEN = """\
import pytest


@pytest.mark.check(cell="test_answer", weight=1)
def test_no_crash(run_record):
    crashes = [e["ename"] for e in run_record["errors"] if not e["test_cell"]]
    assert not crashes, f"the notebook crashed: {crashes}"
"""
ANSWERS = {  # (answer, code put before it, score): checks weigh 1 (ran), 3 (42 saved), 1 (hidden)
    "right": ("42", "", 4.0),
    "wrong": ("41", "", 1.6),
    "crash": ("42", "raise ValueError('boom')\n", 0.8),
}


def release_tiny(root: Path, data_dir: Path) -> CourseConfig:
    """Write the tiny course with its hidden check under ``root`` and release it."""
    from tiny_course import make_course

    from autograder.release import release

    make_course(root, data_dir)
    (root / "grading_tests" / TINY / "test_hidden.py").write_text(HIDDEN, "utf-8")
    config = load_config(root)
    release(config, TINY, log=lambda _: None)
    return config


def submit_batch(
    config: CourseConfig, count: int, *, sleep_s: float = 0.0, start: int = 0
) -> dict[str, float]:
    """``count`` students cycling through :data:`ANSWERS`; returns their expected scores."""
    from tiny_course import submit

    expected = {}
    kinds = list(ANSWERS)
    for index in range(start, start + count):
        kind = kinds[index % len(kinds)]
        student = f"s{index:02d}-{kind}"
        answer, before, score = ANSWERS[kind]
        pause = f"import time\ntime.sleep({sleep_s})\n" if sleep_s else ""
        submit(config.root, student, answer, extra=pause + before)
        expected[student] = score
    return expected


def copy_course(source: Path, target: Path) -> CourseConfig:
    """A fresh copy of a released course (its own gradebook, nothing graded)."""
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("submitted", "autograded", "feedback")
    )
    return load_config(target)


def gradebook_rows(config: CourseConfig) -> dict[str, list[dict[str, Any]]]:
    """Per student: every submission row of ``tiny`` with its grades per cell."""
    from nbgrader.api import Grade, SubmittedAssignment

    from autograder.gradebook import open_gradebook

    rows: dict[str, list[dict[str, Any]]] = {}
    with open_gradebook(config) as gb:
        for sub in gb.assignment_submissions(TINY):
            grades = gb.db.query(Grade).join(Grade.notebook).filter_by(assignment=sub).all()
            cells: dict[str, list[float | None]] = {}
            for grade in grades:
                cells.setdefault(grade.name, []).append(grade.auto_score)
            rows.setdefault(sub.student_id, []).append(
                {"cells": cells, "score": sub.score, "id": sub.id}
            )
        total = gb.db.query(SubmittedAssignment).count()
    assert total == sum(len(v) for v in rows.values())
    return rows


def assert_graded_once(config: CourseConfig, expected: dict[str, float]) -> None:
    """One submission row per student, one grade per cell, the expected scores, and a
    ``result.json`` that agrees."""
    rows = gradebook_rows(config)
    assert sorted(rows) == sorted(expected)
    for student, score in expected.items():
        assert len(rows[student]) == 1, f"{student}: {len(rows[student])} submission rows"
        cells = rows[student][0]["cells"]
        assert cells["test_answer"] == [pytest.approx(score)], (student, cells)
        result = json.loads((config.autograded_dir / student / TINY / "result.json").read_text())
        assert result["score"] == pytest.approx(score), student


# -- a real cluster -----------------------------------------------------------------------
@dataclass
class Cluster:
    """A ``dask scheduler`` and ``dask worker`` subprocesses on 127.0.0.1."""

    folder: Path
    env: dict[str, str]
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, workers: dict[str, list[str]], timeout: float = 90) -> Cluster:
        """Start the scheduler, then one worker per name with its extra arguments."""
        scheduler_file = self.folder / "scheduler.json"
        self.scheduler = self._spawn(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
        )
        wait_for(scheduler_file.is_file, timeout, "the scheduler file")
        self.address = json.loads(scheduler_file.read_text())["address"]
        for name, extra in workers.items():
            self.add_worker(name, extra)
        self.wait_workers(len(workers), timeout)
        return self

    def add_worker(self, name: str, extra: list[str] | None = None) -> None:
        """A worker with one thread; ``--nanny`` in ``extra`` runs it under a nanny."""
        args = list(extra or [])
        nanny = "--nanny" in args
        self.workers[name] = self._spawn(
            name,
            [
                "worker",
                self.address,
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                *([] if nanny else ["--no-nanny"]),
                "--no-dashboard",
                "--local-directory",
                str(self.folder / name),
                "--death-timeout",
                "60",
                *args,
            ],
        )

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        return subprocess.Popen(
            [str(BIN / "dask"), *args],
            stdout=log,
            stderr=log,
            env=self.env,
            cwd=self.folder,
            start_new_session=True,
        )

    def info(self) -> dict[str, Any]:
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            info: dict[str, Any] = client.scheduler_info(n_workers=-1)
            return info

    def wait_workers(self, count: int, timeout: float) -> None:
        wait_for(lambda: len(self.info()["workers"]) == count, timeout, f"{count} worker(s)")

    def worker_address(self, name: str) -> str:
        for address, info in self.info()["workers"].items():
            if info.get("name") == name:
                return str(address)
        raise LookupError(name)

    def kill(self, name: str) -> None:
        process = self.workers[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def close(self) -> None:
        """Stop the workers, then the scheduler (SIGKILL after a short grace)."""
        for group in (list(self.workers.values()), [self.scheduler]):
            for process in group:
                if process is not None and process.poll() is None:
                    process.terminate()
            for process in group:
                if process is None:
                    continue
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=15)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout:g} s for {what}")


def cluster_env(data_dir: Path) -> dict[str, str]:
    """The environment of cluster processes: this venv first on PATH, the worker's mirror."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AUTOGRADER_DATA_DIR": str(data_dir),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, mnist_data_dir: Path) -> Path:
    """The tiny course, released once for this module."""
    root = tmp_path_factory.mktemp("tiny-course")
    release_tiny(root, mnist_data_dir)
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, mnist_data_dir: Path) -> Iterator[Cluster]:
    """A scheduler and two workers: ``gpu`` advertises the Dask resource GPU=1, ``cpu`` runs
    under a nanny (as ``dask worker`` does by default)."""
    running = Cluster(tmp_path_factory.mktemp("cluster"), cluster_env(mnist_data_dir))
    try:
        yield running.start({"gpu": ["--resources", "GPU=1"], "cpu": ["--nanny"]})
    finally:
        running.close()


@pytest.fixture
def course(released: Path, tmp_path: Path) -> CourseConfig:
    return copy_course(released, tmp_path / "course")


def remote(config: CourseConfig, student: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (config.autograded_dir / student / TINY / "run" / "remote.json").read_text()
    )
    return data


# -- tests on the cluster -----------------------------------------------------------------
def test_batch_is_graded_on_the_cluster(cluster: Cluster, course: CourseConfig) -> None:
    from autograder.distributed import dask_executor
    from autograder.grade import grade

    expected = submit_batch(course, 6)
    lines: list[str] = []
    summary = grade(course, TINY, executor=dask_executor(cluster.address), log=lines.append)
    assert sorted(summary.graded) == sorted(expected)
    assert_graded_once(course, expected)
    workers = {remote(course, s)["worker"] for s in expected}
    assert len(workers) == 2, "both workers took tasks"
    checks = {c["check"] for c in remote(course, "s00-right")["checks"]}
    assert "test_hidden::test_no_crash" in checks  # hidden checks travel from here
    assert "test_visible::test_answer_saved" in checks
    run = course.autograded_dir / "s00-right" / TINY / "run"
    assert (run / "executed.ipynb").is_file()
    assert (run / "artifacts" / "files" / "answer.txt").read_text() == "42"
    # a re-run finds everything graded and connects to nothing
    again = grade(course, TINY, executor=dask_executor("tcp://127.0.0.1:9"), log=lines.append)
    assert again.graded == [] and sorted(again.skipped) == sorted(expected)


def test_gpu_tasks_go_only_to_gpu_workers(cluster: Cluster, course: CourseConfig) -> None:
    from autograder.distributed import dask_executor
    from autograder.grade import grade

    expected = submit_batch(course, 4)
    grade(
        course, TINY, executor=dask_executor(cluster.address, gpu_fraction=0.5), log=lambda _: None
    )
    assert_graded_once(course, expected)
    gpu_worker = cluster.worker_address("gpu")
    assert {remote(course, s)["worker"] for s in expected} == {gpu_worker}


def test_killed_worker_leaves_its_submission_to_another(
    tmp_path: Path, course: CourseConfig, mnist_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autograder.grade as grading
    from autograder.distributed import dask_executor, task_key

    fresh = Cluster(tmp_path / "cluster", cluster_env(mnist_data_dir))
    (tmp_path / "cluster").mkdir()
    try:
        fresh.start({"w0": [], "w1": []})
        expected = submit_batch(course, 6, sleep_s=2.5)
        recorded: list[str] = []
        real_record = grading.record_result

        def counting(*args: Any, **kwargs: Any) -> None:
            recorded.extend(a.student for a in args if hasattr(a, "grading_key"))
            real_record(*args, **kwargs)

        monkeypatch.setattr(grading, "record_result", counting)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["summary"] = grading.grade(
                    course, TINY, executor=dask_executor(fresh.address), log=lambda _: None
                )
            except BaseException as err:
                outcome["error"] = err

        thread = threading.Thread(target=run)
        thread.start()
        wait_for(
            lambda: any(True for _ in course.autograded_dir.glob(f"*/{TINY}/run/grading-key.txt")),
            120,
            "the first result",
        )
        victim = fresh.worker_address("w1")
        in_flight: list[str] = []

        def w1_busy() -> bool:
            from distributed import Client

            with Client(fresh.address, timeout=10, set_as_default=False) as client:
                in_flight[:] = [str(k) for k in client.processing()[victim]]
            return bool(in_flight)

        wait_for(w1_busy, 60, "a task on w1")
        fresh.kill("w1")
        thread.join(timeout=240)
        assert not thread.is_alive(), "grading did not finish after the worker died"
        assert "error" not in outcome, outcome.get("error")
        assert sorted(recorded) == sorted(expected), "each submission recorded exactly once"
        assert_graded_once(course, expected)
        survivor = fresh.worker_address("w0")
        rerun = [
            s for s in expected if any(k.startswith(f"autograder-{TINY}-{s}-") for k in in_flight)
        ]
        assert rerun, in_flight
        for student in rerun:
            assert remote(course, student)["worker"] == survivor
        assert task_key  # the keys above follow task_key's form
    finally:
        fresh.close()


def test_unreachable_scheduler_records_nothing(course: CourseConfig) -> None:
    import socket

    from autograder.distributed import dask_executor
    from autograder.grade import grade

    submit_batch(course, 2)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = course.gradebook_dir / "gradebook.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    address = f"tcp://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(AutograderError) as caught:
        grade(course, TINY, executor=dask_executor(address, connect_timeout=2), log=lambda _: None)
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert address in message and "\n" not in message
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert gradebook_rows(course) == {}
    assert not list(course.autograded_dir.glob(f"*/{TINY}/result.json"))


def test_killed_coordinator_resumes_on_rerun(cluster: Cluster, course: CourseConfig) -> None:
    from autograder.distributed import dask_executor
    from autograder.grade import grade

    expected = submit_batch(course, 6, sleep_s=1.5)
    script = (
        "import sys; from pathlib import Path\n"
        "from autograder.config import load_config\n"
        "from autograder.distributed import dask_executor\n"
        "from autograder.grade import grade\n"
        f"grade(load_config(Path({str(course.root)!r})), {TINY!r}, "
        f"executor=dask_executor({cluster.address!r}), log=lambda _: None)\n"
    )
    coordinator = subprocess.Popen(
        [sys.executable, "-c", script],
        env=cluster.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: any(True for _ in course.autograded_dir.glob(f"*/{TINY}/run/grading-key.txt")),
            120,
            "the first result",
        )
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=30)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
    came_back = len(list(course.autograded_dir.glob(f"*/{TINY}/run/grading-key.txt")))
    assert 1 <= came_back < len(expected)
    assert gradebook_rows(course) == {}, "nothing is recorded before the batch is back"
    lines: list[str] = []
    summary = grade(course, TINY, executor=dask_executor(cluster.address), log=lines.append)
    assert sorted(summary.graded) == sorted(expected)
    assert any(line.startswith("reusing ") for line in lines), lines
    assert_graded_once(course, expected)


@pytest.mark.slow
def test_lost_scheduler_records_nothing_and_a_rerun_completes(
    tmp_path: Path, course: CourseConfig, mnist_data_dir: Path
) -> None:
    from autograder.distributed import dask_executor
    from autograder.grade import grade

    expected = submit_batch(course, 6, sleep_s=2)
    first = Cluster(tmp_path / "first", cluster_env(mnist_data_dir))
    (tmp_path / "first").mkdir()
    outcome: dict[str, BaseException] = {}
    try:
        first.start({"w0": [], "w1": []})

        def run() -> None:
            try:
                grade(course, TINY, executor=dask_executor(first.address), log=lambda _: None)
            except BaseException as err:
                outcome["error"] = err

        thread = threading.Thread(target=run)
        thread.start()
        wait_for(
            lambda: any(True for _ in course.autograded_dir.glob(f"*/{TINY}/run/grading-key.txt")),
            120,
            "the first result",
        )
        assert first.scheduler is not None
        os.kill(first.scheduler.pid, signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive(), "grading hung after the scheduler died"
    finally:
        first.close()
    assert isinstance(outcome.get("error"), AutograderError), outcome
    assert "could not be graded on the cluster" in str(outcome["error"])
    assert gradebook_rows(course) == {}
    assert not list(course.autograded_dir.glob(f"*/{TINY}/result.json"))
    second = Cluster(tmp_path / "second", cluster_env(mnist_data_dir))
    (tmp_path / "second").mkdir()
    try:
        second.start({"w0": []})
        lines: list[str] = []
        grade(course, TINY, executor=dask_executor(second.address), log=lines.append)
    finally:
        second.close()
    assert any(line.startswith("reusing ") for line in lines), lines
    assert_graded_once(course, expected)


def test_worker_without_the_mnist_mirror_fails_clearly(
    tmp_path: Path, course: CourseConfig
) -> None:
    from autograder.distributed import dask_executor
    from autograder.grade import grade

    submit_batch(course, 2)
    (tmp_path / "empty").mkdir()
    (tmp_path / "cluster").mkdir()
    bare = Cluster(tmp_path / "cluster", cluster_env(tmp_path / "empty"))
    try:
        bare.start({"bare": []})
        with pytest.raises(AutograderError) as caught:
            grade(course, TINY, executor=dask_executor(bare.address), log=lambda _: None)
    finally:
        bare.close()
    message = str(caught.value)
    assert "2 of 2 submission(s) could not be graded" in message
    assert "no MNIST mirror" in message and "autograder datasets" in message
    assert gradebook_rows(course) == {}


def _cli_with_scheduler() -> Any:
    from autograder.cli import main

    grade_command = main.commands["grade"]  # type: ignore[attr-defined]
    if not any("--scheduler" in p.opts for p in grade_command.params):
        pytest.skip("`autograder grade` has no --scheduler option yet")
    return main


def test_cli_grades_on_the_cluster(cluster: Cluster, course: CourseConfig) -> None:
    from click.testing import CliRunner

    main = _cli_with_scheduler()
    expected = {s: v for s, v in submit_batch(course, 4).items() if s.endswith("-right")}
    for student in set(os.listdir(course.submitted_dir)) - set(expected):
        shutil.rmtree(course.submitted_dir / student)
    args = ["grade", TINY, "--course", str(course.root), "--scheduler", cluster.address]
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 0, outcome.output
    assert_graded_once(course, expected)
    assert all(remote(course, s)["worker"].startswith("tcp://127.0.0.1:") for s in expected)


def test_cli_reports_an_unreachable_scheduler(course: CourseConfig) -> None:
    import socket

    from click.testing import CliRunner

    main = _cli_with_scheduler()
    submit_batch(course, 1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    database = course.gradebook_dir / "gradebook.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    args = ["grade", TINY, "--course", str(course.root), "--scheduler", address]
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 2
    assert f"error: cannot reach the Dask scheduler at {address}" in outcome.output
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before


# -- the transfer rules, without a cluster --------------------------------------------------
def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, **attrs: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("/etc/passwd"),
        _member("artifacts/../../escape.txt"),
        _member("grading-key.txt"),
        _member("remote.json"),
        _member("artifacts/link", tarfile.SYMTYPE, linkname="/etc/passwd"),
        _member("artifacts/hard", tarfile.LNKTYPE, linkname="run.json"),
        _member("artifacts/dev", tarfile.CHRTYPE, devmajor=1, devminor=3),
        _member("artifacts/fifo", tarfile.FIFOTYPE),
    ],
    ids=["absolute", "dotdot", "key-file", "remote-file", "symlink", "hardlink", "device", "fifo"],
)
def test_unsafe_members_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    from autograder.distributed import DistributedError, safe_extract

    data = _tar([(_member("run.json"), b"{}"), (member, b"x")])
    with pytest.raises(DistributedError):
        safe_extract(data, tmp_path)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_unpacking_is_size_limited(tmp_path: Path) -> None:
    from autograder.distributed import DistributedError, safe_extract

    data = _tar([(_member("artifacts/big.bin"), b"\0" * 50_000)])  # compresses to ~100 bytes
    with pytest.raises(DistributedError, match="more than"):
        safe_extract(data, tmp_path, limit=10_000)
    safe_extract(
        _tar([(_member("run.json"), b"{}"), (_member("artifacts/files/a.txt"), b"a")]),
        tmp_path / "ok",
    )
    assert (tmp_path / "ok" / "artifacts" / "files" / "a.txt").read_text() == "a"


def test_pack_run_drops_models_over_the_limit(tmp_path: Path) -> None:
    from autograder.distributed import DistributedError, pack_run, safe_extract

    run = tmp_path / "run"
    (run / "artifacts" / "models").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "artifacts" / "models" / "m.keras").write_bytes(os.urandom(200_000))
    (run / "stray.txt").write_text("not part of a run folder")
    data, dropped = pack_run(run, 10**6)
    assert dropped == []
    safe_extract(data, tmp_path / "back")
    assert (tmp_path / "back" / "artifacts" / "models" / "m.keras").is_file()
    assert not (tmp_path / "back" / "stray.txt").exists()
    data, dropped = pack_run(run, 50_000)
    assert dropped == ["artifacts/models/m.keras"] and len(data) < 50_000
    with pytest.raises(DistributedError, match="even without models"):
        pack_run(run, 10)


def test_only_check_files_travel(tmp_path: Path) -> None:
    from autograder.distributed import DistributedError, read_checks, read_limited

    (tmp_path / "test_a.py").write_text("x = 1")
    (tmp_path / "calibration.json").write_text("{}")
    (tmp_path / "notes.md").write_text("private")
    (tmp_path / "samples").mkdir()
    assert sorted(read_checks(tmp_path)) == ["calibration.json", "test_a.py"]
    (tmp_path / "test_link.py").symlink_to(tmp_path / "test_a.py")
    with pytest.raises(DistributedError, match="link"):
        read_checks(tmp_path)
    big = tmp_path / "big.ipynb"
    big.write_bytes(b"0" * 2048)
    with pytest.raises(DistributedError, match="over the"):
        read_limited(big, 1024, "submission")


def test_grade_task_refuses_other_versions_and_bad_names() -> None:
    from autograder.distributed import DistributedError, TaskPayload, grade_task

    payload = TaskPayload(
        version="0.0.0-other",
        assignment=TINY,
        student="a",
        notebook_name=NOTEBOOK,
        notebook=b"{}",
        release_name=NOTEBOOK,
        release=b"{}",
        checks={},
        points={},
        limits={},
    )
    with pytest.raises(DistributedError, match="same version"):
        grade_task(payload)
    from autograder import __version__

    bad = TaskPayload(
        version=__version__,
        assignment=TINY,
        student="a",
        notebook_name="../x.ipynb",
        notebook=b"{}",
        release_name=NOTEBOOK,
        release=b"{}",
        checks={},
        points={},
        limits={},
    )
    with pytest.raises(DistributedError, match="refusing"):
        grade_task(bad)


def test_executor_rejects_bad_settings() -> None:
    from autograder.distributed import dask_executor

    with pytest.raises(AutograderError, match="--device"):
        dask_executor("tcp://127.0.0.1:1", device="tpu")
    with pytest.raises(AutograderError, match="fraction"):
        dask_executor("tcp://127.0.0.1:1", gpu_fraction=0)
