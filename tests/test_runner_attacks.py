"""Attacks on the runner, run for real: a real bubblewrap sandbox, real cgroup limits, a real
project kernel. Each attack notebook is built from the released lesson (its ``intro`` and,
where Keras is needed, ``setup`` cell) with the attack in the solution cell ``cnn_build``;
several attacks of one kind become extra cells after it, so one run checks them all. Where the
instructor's cells matter the run restores them from the released notebook, so the whole
lesson runs around the attack (no training: the released solution cells only raise).

Every test asserts that the attack failed and that ``run.json`` says why (its status, the
failing cell's exception), that ``run.json`` still validates and that nothing of the run is
left running. Limits are small so that each attack ends within seconds.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from tiny_course import LESSON_LIMITS, LIMITS, MNIST, RELEASE, ROOT

from autograder.config import Limits
from autograder.runner import limits
from autograder.runner import run as run_module
from autograder.runner.pool import run_many
from autograder.runner.record import read_record
from autograder.runner.run import RunRequest, run_submission
from autograder.runner.sandbox import sandbox_problem

SOURCE = ROOT / "source" / "lesson25" / "lesson25.ipynb"
HIDDEN_TEST = ROOT / "grading_tests" / "lesson25" / "test_hidden.py"
CALIBRATION = ROOT / "grading_tests" / "lesson25" / "calibration.json"
GRADEBOOK = ROOT / "gradebook" / "gradebook.db"

pytestmark = pytest.mark.skipif(
    sandbox_problem() is not None or not RELEASE.is_file(),
    reason=f"the sandbox cannot be set up here: {sandbox_problem()}",
)


# -- building and running attack notebooks ------------------------------------------------------


def attack_notebook(
    path: Path, attacks: dict[str, str], *, setup: bool = False, cell: str = "cnn_build"
) -> Path:
    """The released lesson cut down to ``intro`` (and ``setup``), then the solution cell
    ``cell`` holding the first attack and one extra cell per further attack. Every attack
    cell carries ``metadata.attack`` with its name, so its outputs can be found again."""
    release = nbformat.read(RELEASE, as_version=4)
    by_id = {c.metadata.nbgrader.grade_id: c for c in release.cells}
    keep = ["intro", "setup"] if setup else ["intro"]
    cells = [copy.deepcopy(by_id[gid]) for gid in keep]
    for number, (name, code) in enumerate(attacks.items()):
        if number == 0:
            attack = copy.deepcopy(by_id[cell])
            attack.source = code
        else:
            attack = nbformat.v4.new_code_cell(code)
        attack.metadata["attack"] = name
        cells.append(attack)
    release.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(release, path)
    return path


@dataclass
class Run:
    """One finished run: its record (re-read from ``run.json``) and executed notebook."""

    record: dict[str, Any]
    out: Path
    executed: Any
    by_attack: dict[str, int] = field(default_factory=dict)

    def index(self, attack: str) -> int:
        return self.by_attack[attack]

    def error(self, attack: str) -> dict[str, Any] | None:
        index = self.index(attack)
        return next((e for e in self.record["errors"] if e["index"] == index), None)

    def text(self, attack: str) -> str:
        """Everything the attack cell showed: streams, results and its error."""
        return outputs_text(self.executed.cells[self.index(attack)])

    def all_text(self) -> str:
        return "\n".join(outputs_text(c) for c in self.executed.cells)

    def leaked(self, secret: str | bytes) -> list[str]:
        """Files of the run's output folder that contain ``secret``."""
        needle = secret.encode() if isinstance(secret, str) else secret
        return [
            str(p.relative_to(self.out))
            for p in self.out.rglob("*")
            if p.is_file() and needle in p.read_bytes()
        ]


def outputs_text(cell: Any) -> str:
    parts: list[str] = []
    for output in cell.get("outputs", []):
        parts.append(str(output.get("text", "")))
        parts.extend(str(v) for v in output.get("data", {}).values())
        if output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "\n".join(parts)


def run_notebook(
    notebook: Path,
    out: Path,
    *,
    restore: bool = False,
    limits: Limits = LIMITS,
    sandbox: bool = True,
) -> Run:
    request = RunRequest(
        assignment="lesson25",
        notebook=notebook,
        out=out,
        limits=limits,
        mnist_npz=MNIST if MNIST.is_file() else None,
        release_notebook=RELEASE if restore else None,
        sandbox=sandbox,
    )
    record = run_submission(request)
    return finished(record, out)


def finished(record: dict[str, Any], out: Path) -> Run:
    """Checks every run must pass, whatever the attack: ``run.json`` validates and says the
    same as the returned record, the executed notebook is there, nothing is left running."""
    on_disk = read_record(out / "run.json")
    print(f"run.json [{out.name}]: {on_disk['status']}: {on_disk['message']}")  # for -rP
    assert on_disk == json.loads(json.dumps(record))
    assert record["sandbox"]["kind"] == "bwrap"
    assert record["leftover_processes"] == 0
    executed = nbformat.read(out / "executed.ipynb", as_version=4)
    by_attack = {
        c.metadata["attack"]: i for i, c in enumerate(executed.cells) if "attack" in c.metadata
    }
    return Run(on_disk, out, executed, by_attack)


def attack(
    tmp_path: Path,
    code: str,
    *,
    setup: bool = False,
    restore: bool = False,
    limits: Limits = LIMITS,
    name: str = "attack",
) -> Run:
    """Run one attack in the solution cell ``cnn_build`` and return the finished run."""
    notebook = attack_notebook(
        tmp_path / "submission" / "lesson25.ipynb", {name: code}, setup=setup
    )
    return run_notebook(notebook, tmp_path / "out", restore=restore, limits=limits)


def processes_with(marker: str) -> list[str]:
    """Command lines of live host processes that mention ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline:
            found.append(f"{proc.pid}: {cmdline}")
    return found


def assert_status(run: Run, status: str, attack_name: str = "attack") -> None:
    record = run.record
    assert record["status"] == status, (record["status"], record["message"])
    assert bool(record["message"]) == (status != "ok"), "a failed run must say why"
    if status not in ("ok", "cell-error", "harvest-failed", "invalid-notebook"):
        # a limit: the run names the attack cell it stopped in
        assert record["failed_cell"] is not None
        assert record["failed_cell"]["index"] == run.index(attack_name), record["failed_cell"]


# -- reading what the sandbox must not see ------------------------------------------------------


@dataclass(frozen=True)
class Course:
    """A course-like layout on the host with secrets in the instructor's folders and a
    submission in it, so that relative paths from the submission lead to them."""

    root: Path
    submission: Path
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    root = tmp_path_factory.mktemp("course")
    secrets = {}
    for rel in (
        "source/lesson25/lesson25.ipynb",
        "grading_tests/lesson25/test_hidden.py",
        "gradebook/gradebook.db",
    ):
        secret = f"SECRET-{rel.split('/')[0]}-{uuid.uuid4().hex}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(secret)
        secrets[rel] = secret
    submission = root / "submitted" / "ivanova" / "lesson25" / "lesson25.ipynb"
    return Course(root, submission, secrets)


def _read(path: str, *, show: bool = True) -> str:
    return f"with open({path!r}, 'rb') as handle:\n    data = handle.read()\n" + (
        "print('LEAKED', len(data), data[:2000])\n" if show else "print(len(data))\n"
    )


# name -> path the kernel tries to read (absolute, relative to the work dir, or sneaky)
READ_TARGETS = {
    "source-abs": str(SOURCE),
    "hidden-test-abs": str(HIDDEN_TEST),
    "calibration-abs": str(CALIBRATION),
    "gradebook-abs": str(GRADEBOOK),
    "source-rel": "../../source/lesson25/lesson25.ipynb",
    "source-rel-deep": "../../../../../work/main/source/lesson25/lesson25.ipynb",
    "hidden-test-rel": "../../grading_tests/lesson25/test_hidden.py",
    "gradebook-rel": "../../gradebook/gradebook.db",
    "source-via-proc-root": f"/proc/1/root{SOURCE}",
    "source-via-proc-cwd": f"/proc/self/cwd/../..{SOURCE}",
    "home-bashrc": "/root/.bashrc",
    "home-ssh": "/root/.ssh/authorized_keys",
    "project-pyproject": str(ROOT / "pyproject.toml"),
}
COURSE_TARGETS = {
    # the tmp course: relative from the submission's folder, and absolute
    "course-source-rel": "../../../source/lesson25/lesson25.ipynb",
    "course-hidden-test-rel": "../../../grading_tests/lesson25/test_hidden.py",
    "course-gradebook-rel": "../../../gradebook/gradebook.db",
    "course-source-abs": "{root}/source/lesson25/lesson25.ipynb",
    "course-hidden-test-abs": "{root}/grading_tests/lesson25/test_hidden.py",
    "course-gradebook-abs": "{root}/gradebook/gradebook.db",
}
LINK_TARGETS = {
    # links planted in the work dir, for the host to follow when it collects saved files
    "grading_tests": str(ROOT / "grading_tests"),
    "source.ipynb": str(SOURCE),
    "gradebook.db": str(GRADEBOOK),
}
IDENTITY = f"""\
import json, os, socket
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print("IDENTITY", json.dumps({{
    "uid": os.getuid(), "cap_eff": status["CapEff"].strip(), "pids": sorted(os.listdir("/proc")),
    "sys": os.path.exists("/sys"), "hostname": socket.gethostname(),
    "home": sorted(os.listdir("/root")), "work": sorted(os.listdir({str(ROOT)!r})),
    "cwd": os.getcwd(),
}}))
"""


@pytest.fixture(scope="module")
def read_run(tmp_path_factory: pytest.TempPathFactory, course: Course) -> Run:
    """One restored run of the whole lesson with every read attack in its own cell."""
    attacks = {name: _read(path) for name, path in READ_TARGETS.items()}
    attacks |= {name: _read(path.format(root=course.root)) for name, path in COURSE_TARGETS.items()}
    attacks["plant-links"] = "import os\n" + "".join(
        f"os.symlink({target!r}, {name!r})\n" for name, target in LINK_TARGETS.items()
    )
    attacks["identity"] = IDENTITY
    attacks["etc-shadow"] = _read("/etc/shadow", show=False)  # (never print it)
    notebook = attack_notebook(course.submission, attacks, setup=True)
    out = tmp_path_factory.mktemp("read-out")
    return run_notebook(notebook, out, restore=True, limits=LESSON_LIMITS)


@pytest.mark.parametrize("target", [*READ_TARGETS, *COURSE_TARGETS])
def test_reading_course_files_fails(read_run: Run, course: Course, target: str) -> None:
    error = read_run.error(target)
    assert error is not None, f"{target}: the read did not fail: {read_run.text(target)[:300]}"
    assert error["ename"] in ("FileNotFoundError", "PermissionError"), error["evalue"]
    assert "LEAKED" not in read_run.text(target)


def test_read_attacks_are_reported_and_leak_nothing(read_run: Run, course: Course) -> None:
    record = read_run.record
    assert record["status"] == "cell-error"
    # the first failure is the attack in the solution cell, named in the message
    assert record["failed_cell"]["grade_id"] == "cnn_build"
    assert record["failed_cell"]["ename"] == "FileNotFoundError"
    assert "cnn_build" in record["message"] and "FileNotFoundError" in record["message"]
    # the restore put the instructor's cells back around the attack cells
    assert "load_mnist" in record["restore"]["reinserted"]
    assert record["restore"]["extra_cells"] == len(read_run.by_attack) - 1
    assert "LEAKED" not in read_run.all_text()
    for secret in course.secrets.values():
        assert not read_run.leaked(secret)
    hidden_doc = HIDDEN_TEST.read_text("utf-8").splitlines()[0]
    assert not read_run.leaked(hidden_doc)
    assert not read_run.leaked(b"SQLite format 3")
    assert not read_run.leaked(json.dumps(json.loads(CALIBRATION.read_text())["thresholds"]))


def test_links_to_host_files_are_not_collected(read_run: Run) -> None:
    assert read_run.error("plant-links") is None  # making a link is allowed ...
    files = read_run.record["artifacts"]["files"]
    skipped = {s["path"]: s["reason"] for s in read_run.record["artifacts"]["skipped_files"]}
    # ... but the host does not follow it when it collects the saved files
    assert not [f for f in files if f["path"].split("/")[0] in LINK_TARGETS]
    assert set(LINK_TARGETS) <= set(skipped)
    assert all(reason == "symbolic link" for reason in skipped.values())
    assert not (read_run.out / "artifacts" / "files" / "grading_tests").exists()
    assert not read_run.leaked(HIDDEN_TEST.read_text("utf-8").splitlines()[0])


def test_sandbox_identity(read_run: Run) -> None:
    """What the kernel sees of itself: no capabilities, its own PID namespace (the sandbox's
    init and itself), no /sys (so no cgroup files), an empty home apart from the read-only
    interpreter, and of the project only the environment, the package and the datasets."""
    line = next(x for x in read_run.text("identity").splitlines() if x.startswith("IDENTITY"))
    seen = json.loads(line.split(" ", 1)[1])
    assert seen["uid"] == 65534
    assert seen["cap_eff"] == "0000000000000000"
    assert [p for p in seen["pids"] if p.isdigit()] == ["1", "2"]
    assert seen["sys"] is False
    assert seen["hostname"] == "sandbox"
    assert seen["home"] == [".pyenv"] or seen["home"] == []
    assert set(seen["work"]) <= {".venv", "autograder", ".cache"}
    assert seen["cwd"] == "/sandbox/work"


def test_root_only_system_files_are_masked(read_run: Run) -> None:
    # run as root, the sandbox's uid reads as host root: the secrets of /etc are masked
    # (the device node /dev/null bound over /etc/shadow, which the sandbox may not open)
    error = read_run.error("etc-shadow")
    assert error is not None and error["ename"] == "PermissionError"


# -- network ------------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[int, list[Any]]]:
    """A real TCP listener on the host loopback that answers with a secret."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    accepted: list[Any] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(addr)
            with conn:
                conn.sendall(b"HOST-LOOPBACK-SECRET")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    # the listener works from the host, so a failure from the sandbox means something
    with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
        assert probe.recv(100) == b"HOST-LOOPBACK-SECRET"
    deadline = time.monotonic() + 2
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    accepted.clear()
    yield port, accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


def _connect(host: str, port: int) -> str:
    return (
        "import socket\n"
        f"sock = socket.create_connection(({host!r}, {port}), timeout=2)\n"
        "print('CONNECTED', sock.recv(100))\n"
    )


def test_network_is_unreachable(tmp_path: Path, listener: tuple[int, list[Any]]) -> None:
    port, accepted = listener
    attacks = {
        "loopback": _connect("127.0.0.1", port),
        "public": _connect("1.1.1.1", 80),
        "dns": "import socket\nprint('RESOLVED', socket.getaddrinfo('example.com', 80))\n",
    }
    notebook = attack_notebook(tmp_path / "nb" / "lesson25.ipynb", attacks)
    run = run_notebook(notebook, tmp_path / "out")
    assert run.record["status"] == "cell-error"
    # the sandbox's own loopback has nothing listening: the host's listener is not there
    loopback = run.error("loopback")
    assert loopback is not None and loopback["ename"] == "ConnectionRefusedError"
    public = run.error("public")
    assert public is not None and public["ename"] == "OSError"
    assert "Network is unreachable" in public["evalue"]
    dns = run.error("dns")
    assert dns is not None and dns["ename"] == "gaierror"
    assert "CONNECTED" not in run.all_text() and "RESOLVED" not in run.all_text()
    assert not run.leaked("HOST-LOOPBACK-SECRET")
    assert accepted == []


# -- resource limits ----------------------------------------------------------------------------

FORK_BOMB = """\
import os
while True:
    os.fork()
"""
SPAWN_BOMB = """\
import subprocess
children = [subprocess.Popen(["sleep", "600"]) for _ in range(10_000)]
"""


@pytest.mark.parametrize("code", [FORK_BOMB, SPAWN_BOMB], ids=["fork", "spawn"])
def test_fork_bomb_hits_the_process_limit(tmp_path: Path, code: str) -> None:
    run = attack(tmp_path, code)
    assert_status(run, "process-limit")
    assert "64 processes" in run.record["message"]


CHUNKED_30_GB = """\
chunks = []
for _ in range(120):
    chunks.append(bytearray(256 * 2**20))  # 120 x 256 MB = 30 GB, every page touched
print("ALLOCATED 30 GB")
"""


def test_allocating_30_gb_hits_the_memory_limit(tmp_path: Path) -> None:
    run = attack(tmp_path, CHUNKED_30_GB)
    assert_status(run, "memory-limit")
    assert "1024 MB" in run.record["message"]
    assert run.record["peak_memory_mb"] <= 1024 + 1
    assert "ALLOCATED" not in run.all_text()


def test_allocating_30_gb_in_the_restored_lesson(tmp_path: Path) -> None:
    """The same attack after the lesson's own cells (Keras, MNIST) were restored and ran."""
    run = attack(tmp_path, CHUNKED_30_GB, setup=True, restore=True, limits=LESSON_LIMITS)
    assert_status(run, "memory-limit")
    assert run.record["restore"]["reinserted"]
    ran = [c["grade_id"] for c in run.record["cells"]]
    assert ran[:3] == ["setup", "example_hybrid", "load_mnist"]


def test_one_30_gb_allocation_is_refused(tmp_path: Path) -> None:
    """One 30 GB request: refused outright (MemoryError) where the machine cannot overcommit
    that much, else it runs into the memory limit."""
    run = attack(tmp_path, "block = bytearray(30 * 2**30)\nprint('ALLOCATED')\n")
    if run.record["status"] == "cell-error":
        assert run.record["failed_cell"]["ename"] == "MemoryError"
    else:
        assert_status(run, "memory-limit")
    assert "ALLOCATED" not in run.all_text()


MANY_FILES = """\
block = b"\\1" * 2**20
for i in range(1024):  # 1 GB in 1 MB files: the watchdog measures the work dir
    with open(f"fill{i}.bin", "wb") as handle:
        handle.write(block)
"""
ONE_FILE = """\
block = b"\\0" * 2**20
with open("big.bin", "wb") as handle:
    for _ in range(1024):  # 1 GB in one file: RLIMIT_FSIZE stops it at the disk limit
        handle.write(block)
"""
TMP_FILE = ONE_FILE.replace('"big.bin"', '"/tmp/big.bin"')
ROOT_FILES = MANY_FILES.replace('f"fill{i}.bin"', 'f"/sandbox/fill{i}.bin"')


def test_filling_the_work_dir_hits_the_disk_limit(tmp_path: Path) -> None:
    run = attack(tmp_path, MANY_FILES)
    assert_status(run, "disk-limit")
    assert "64 MB" in run.record["message"]
    # what was collected afterwards stays within the harvest's own limits
    copied = sum(f["bytes"] for f in run.record["artifacts"]["files"])
    assert copied <= 100 * 2**20


def test_one_huge_file_is_cut_at_the_disk_limit(tmp_path: Path) -> None:
    """The write fails with EFBIG at the size limit (the cell's error); the work dir is then
    over the limit (the file plus the notebook), which the watchdog reports as the status."""
    run = attack(tmp_path, ONE_FILE)
    assert run.record["status"] == "disk-limit", run.record["message"]
    error = run.error("attack")
    if error is not None:
        assert error["ename"] == "OSError" and "File too large" in error["evalue"]
    assert not any(f["path"] == "big.bin" for f in run.record["artifacts"]["files"])


HIDE_BEHIND_EMPTY_FILES = """\
import os
os.makedirs("/sandbox/harvest/junk")  # the watchdog measures the harvest dir first
for i in range({count}):
    open(f"/sandbox/harvest/junk/{{i}}", "w").close()
block = b"\\1" * 2**20
for n in range(4):  # 240 MB in files under the 64 MB per-file cap
    with open(f"big{{n}}.bin", "wb") as handle:
        for _ in range(60):
            handle.write(block)
print("WROTE 240 MB")
"""


def test_empty_files_cannot_hide_big_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More entries than the watchdog measures is a breach in itself; otherwise a folder of
    empty files measured first would hide any amount of data after it. (The cap is lowered
    from 200 000 so that the attack takes a second.)"""
    monkeypatch.setattr(limits, "MAX_FILES", 5000)
    run = attack(tmp_path, HIDE_BEHIND_EMPTY_FILES.format(count=6000))
    assert_status(run, "disk-limit")
    assert "more than 5000 files" in run.record["message"]
    # the watchdog polls, so the cell may finish its writes before it is stopped; what is
    # copied out of the sandbox stays within the limits of the saved files
    assert sum(f["bytes"] for f in run.record["artifacts"]["files"]) <= 100 * 2**20


def test_junk_files_do_not_bloat_the_record(tmp_path: Path) -> None:
    code = "for i in range(3000):\n    open(f'junk{i}', 'w').close()\n"
    run = attack(tmp_path, code)
    assert_status(run, "ok")
    artifacts = run.record["artifacts"]
    assert len(artifacts["files"]) == 200
    assert len(artifacts["skipped_files"]) == 101
    assert artifacts["skipped_files"][-1] == {"path": "...", "reason": "2700 more"}
    assert (run.out / "run.json").stat().st_size < 100_000


def test_filling_the_private_tmp_fails_with_enospc(tmp_path: Path) -> None:
    run = attack(tmp_path, TMP_FILE)
    assert_status(run, "cell-error")
    error = run.error("attack")
    assert error is not None and error["ename"] == "OSError"
    assert "No space left on device" in error["evalue"]


def test_filling_the_sandbox_root_hits_the_memory_limit(tmp_path: Path) -> None:
    """The sandbox's root is a tmpfs: its pages count against the memory limit."""
    run = attack(tmp_path, ROOT_FILES)
    assert_status(run, "memory-limit")


PRINT_FLUSHED = """\
line = "x" * 2**20
for _ in range(1024):  # 1 GB, sent as it is printed
    print(line, flush=True)
"""
PRINT_BUFFERED = PRINT_FLUSHED.replace(", flush=True", "")
DISPLAY_FLOOD = """\
from IPython.display import HTML, display
for _ in range(1024):
    display(HTML("<b>" + "w" * 2**20 + "</b>"))
"""
FD_FLOOD = """\
import os
line = b"z" * 2**20
for _ in range(1024):
    os.write(1, line)
"""


@pytest.mark.parametrize(
    ("code", "statuses"),
    [
        (PRINT_FLUSHED, ("output-limit",)),
        (DISPLAY_FLOOD, ("output-limit",)),
        # ipykernel buffers print() between flushes: the kernel may run out of memory
        # before a message reaches the runner's output budget
        (PRINT_BUFFERED, ("output-limit", "memory-limit")),
        # the fd is captured by ipykernel and echoed to the kernel log in the harvest dir
        (FD_FLOOD, ("output-limit", "disk-limit")),
    ],
    ids=["print-flushed", "display", "print-buffered", "fd-write"],
)
def test_printing_1_gb_is_stopped(tmp_path: Path, code: str, statuses: tuple[str, ...]) -> None:
    run = attack(tmp_path, code)
    assert run.record["status"] in statuses, run.record["message"]
    assert_status(run, run.record["status"])
    if run.record["status"] == "output-limit":
        assert "256 KB" in run.record["message"]
    # the executed notebook keeps at most the budget of the attack cell
    assert (run.out / "executed.ipynb").stat().st_size < 2 * 256 * 1024
    assert (run.out / "run.json").stat().st_size < 256 * 1024


def test_sleeping_forever_hits_the_cell_timeout(tmp_path: Path) -> None:
    """The cell is interrupted at its limit and the notebook goes on with the next cell."""
    attacks = {"attack": "import time\nwhile True:\n    time.sleep(3600)\n",
               "after": "print('AFTER')\n"}  # fmt: skip
    notebook = attack_notebook(tmp_path / "nb" / "lesson25.ipynb", attacks)
    run = run_notebook(notebook, tmp_path / "out", limits=replace(LIMITS, cell_timeout_s=3))
    assert_status(run, "timeout")
    assert "ran past 3 s" in run.record["message"]
    assert "the cells after it still ran" in run.record["message"]
    assert "AFTER" in run.text("after")
    assert run.record["wall_s"] < 30


@pytest.mark.parametrize(
    "code",
    [
        "import time\nwhile True:\n    try:\n        time.sleep(3600)\n"
        "    except KeyboardInterrupt:\n        pass\n",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
    ],
    ids=["catches-interrupt", "ignores-sigint"],
)
def test_sleeping_through_the_interrupt_ends_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    """A cell past its limit is interrupted so the notebook can go on; one that survives the
    interrupt ends the run after a grace period (lowered here from 30 s)."""
    monkeypatch.setattr(run_module, "INTERRUPT_GRACE_S", 2)
    run = attack(tmp_path, code + "\n", limits=replace(LIMITS, cell_timeout_s=3))
    assert_status(run, "timeout")
    assert "ran past 3 s" in run.record["message"]
    assert "still ran" not in run.record["message"]
    assert run.record["wall_s"] < 40


def test_spinning_with_signals_ignored_hits_the_notebook_timeout(tmp_path: Path) -> None:
    code = (
        "import signal\n"
        "for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
        "    signal.signal(sig, signal.SIG_IGN)\n"
        "while True:\n"
        "    pass\n"
    )
    limits = replace(LIMITS, notebook_timeout_s=5, cell_timeout_s=120)
    run = attack(tmp_path, code, limits=limits)
    assert_status(run, "timeout")
    assert "the notebook ran past 5 s" in run.record["message"]
    assert run.record["wall_s"] < 30


# -- processes ----------------------------------------------------------------------------------

KILL_PARENT = """\
import os, signal, time
parent = os.getppid()
print("PARENT", parent, open(f"/proc/{parent}/comm").read().strip())
os.kill(parent, signal.SIGKILL)
time.sleep(1)
print("STILL-HERE")
"""


def test_killing_the_parent_cannot_reach_the_runner(tmp_path: Path) -> None:
    """The kernel's parent is the sandbox's init (pid 1 of its own namespace), which ignores
    SIGKILL from inside; the runner is not visible at all. The run finishes normally."""
    run = attack(tmp_path, KILL_PARENT)
    assert_status(run, "ok")
    text = run.text("attack")
    assert "PARENT 1 bwrap" in text and "STILL-HERE" in text


@pytest.mark.parametrize(
    "code",
    [
        "import os, signal\nos.killpg(0, signal.SIGKILL)\n",
        "import os, signal\nos.kill(1, signal.SIGKILL)\nos.kill(os.getpid(), signal.SIGKILL)\n",
    ],
    ids=["process-group", "self"],
)
def test_killing_the_kernel_ends_the_run_clearly(tmp_path: Path, code: str) -> None:
    run = attack(tmp_path, code, setup=True, restore=True, limits=LESSON_LIMITS)
    assert_status(run, "killed")
    assert run.record["message"].startswith("the kernel died")
    assert "cnn_build" in run.record["message"]
    assert run.record["failed_cell"]["grade_id"] == "cnn_build"


def test_background_processes_do_not_survive_the_run(tmp_path: Path) -> None:
    marker = f"AG-LEFTOVER-{uuid.uuid4().hex}"
    code = f"""\
import os, subprocess, sys, time
import psutil
MARK = {marker!r}
daemon = (
    "import os, signal, time\\n"
    "for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):\\n"
    "    signal.signal(sig, signal.SIG_IGN)\\n"
    "if os.fork():\\n"
    "    os._exit(0)\\n"
    "os.setsid()\\n"
    "time.sleep(3600)  # " + MARK
)
subprocess.run([sys.executable, "-c", daemon], check=True)  # double fork, new session
subprocess.Popen(["sh", "-c", "sleep 3600; echo " + MARK], start_new_session=True)
os.system("nohup sh -c 'sleep 3601; echo " + MARK + "' >/dev/null 2>&1 &")
time.sleep(1)
alive = [p.pid for p in psutil.process_iter() if MARK in " ".join(p.cmdline())]
print("RUNNING", len(alive))
"""
    run = attack(tmp_path, code, setup=True, restore=True, limits=LESSON_LIMITS)
    # the lesson's own cells fail (their solutions are missing) but the attack ran
    assert run.record["status"] == "cell-error"
    assert run.error("attack") is None
    assert "RUNNING 3" in run.text("attack")
    assert run.record["leftover_processes"] == 0
    assert processes_with(marker) == []


# -- writing outside the work dir ---------------------------------------------------------------


def _write(path: str) -> str:
    return f"with open({path!r}, 'ab') as handle:\n    handle.write(b'PWNED')\nprint('WROTE')\n"


@pytest.fixture(scope="module")
def write_run(tmp_path_factory: pytest.TempPathFactory, course: Course) -> tuple[Run, str]:
    tag = uuid.uuid4().hex[:12]
    targets = write_targets(course.root, tag)
    attacks = {name: _write(path) for name, (path, _) in targets.items()}
    attacks["overwrite-mnist"] = (
        f"with open({str(MNIST)!r}, 'r+b') as handle:\n    handle.write(b'PWNED')\n"
    )
    notebook = attack_notebook(tmp_path_factory.mktemp("write") / "lesson25.ipynb", attacks)
    out = tmp_path_factory.mktemp("write-out")
    return run_notebook(notebook, out), tag


def write_targets(course_root: Path, tag: str) -> dict[str, tuple[str, str | None]]:
    """name -> (path the kernel writes, the exception expected; None: the write succeeds
    inside the sandbox's own throw-away root and never reaches the host)."""
    return {
        "source": (f"{SOURCE.parent}/PWNED-{tag}", "FileNotFoundError"),
        "grading-tests": (f"{HIDDEN_TEST.parent}/PWNED-{tag}", "FileNotFoundError"),
        "gradebook": (f"{GRADEBOOK.parent}/PWNED-{tag}", "FileNotFoundError"),
        "course-source-rel": (f"../../../source/lesson25/PWNED-{tag}", "FileNotFoundError"),
        "course-source-abs": (f"{course_root}/source/lesson25/PWNED-{tag}", "FileNotFoundError"),
        "package": (f"{ROOT}/autograder/PWNED-{tag}.py", "OSError"),
        "venv": (f"{ROOT}/.venv/lib/PWNED-{tag}", "OSError"),
        "datasets": (f"{MNIST.parent}/PWNED-{tag}", "OSError"),
        "etc": (f"/etc/PWNED-{tag}", "OSError"),
        "usr": (f"/usr/lib/PWNED-{tag}", "OSError"),
        "home": (f"/root/PWNED-{tag}", None),
        "tmp": (f"/tmp/PWNED-{tag}", None),
        "root": (f"/PWNED-{tag}", None),
        "project": (f"{ROOT.parent}/PWNED-{tag}", None),
    }


@pytest.mark.parametrize("target", list(write_targets(Path("/x"), "x")))
def test_writing_outside_the_work_dir_never_reaches_the_host(
    write_run: tuple[Run, str], course: Course, target: str
) -> None:
    run, tag = write_run
    path, expected = write_targets(course.root, tag)[target]
    error = run.error(target)
    if expected is None:
        assert error is None and "WROTE" in run.text(target)
    else:
        assert error is not None and error["ename"] == expected, run.text(target)
        if expected == "OSError":
            assert "Read-only file system" in error["evalue"]
    host = Path(path) if path.startswith("/") else course.submission.parent / path
    assert not host.exists(), f"{host} was written on the host"


def test_the_dataset_mirror_cannot_be_overwritten(write_run: tuple[Run, str]) -> None:
    run, _ = write_run
    assert run.record["status"] == "cell-error"
    error = run.error("overwrite-mnist")
    assert error is not None and "Read-only file system" in error["evalue"]
    assert b"PWNED" not in MNIST.read_bytes()[:16]


# -- poisoning the harvest ----------------------------------------------------------------------

TINY_MODELS = """\
good = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="good")
good.compile(optimizer="sgd", loss="mse")
history = good.fit(np.zeros((8, 3)), np.zeros((8, 2)), epochs=1, verbose=0)
"""
POISON_SAVE = (
    TINY_MODELS
    + """\
poisoned = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="poisoned")
_save = keras.Model.save
def save(self, path, *args, **kwargs):
    if self.name == "poisoned":
        with open(path, "wb") as handle:  # not a .keras archive at all
            handle.write(b"#!/bin/sh\\nrm -rf /\\n")
        return None
    return _save(self, path, *args, **kwargs)
keras.Model.save = save
"""
)
POISON_RECORDER_JSON = (
    TINY_MODELS
    + """\
import types
import autograder.kernel.recorder as recorder
recorder.json = types.SimpleNamespace(
    dumps=lambda *args, **kwargs: '{"models": "all of them", "histories": 1}')
"""
)
POISON_JSON = (
    TINY_MODELS
    + """\
import json
json.dumps = lambda *args, **kwargs: '{"models": "all of them", "histories": 1}'
print("poisoned")
"""
)
LAMBDA_MODEL = """\
from keras import layers
evil = keras.Sequential([
    keras.Input((2,)),
    layers.Lambda(lambda x: (open("/tmp/AG-PWNED-{marker}", "w"), x)[1]),
])
"""


def test_poisoned_model_save_spoils_only_its_own_harvest(tmp_path: Path) -> None:
    """model.save replaced in the kernel: the poisoned model is refused, the run says so, and
    a clean submission run alongside it keeps all of its artifacts."""
    poisoned = attack_notebook(
        tmp_path / "p" / "lesson25.ipynb", {"attack": POISON_SAVE}, setup=True
    )
    clean = attack_notebook(tmp_path / "c" / "lesson25.ipynb", {"attack": TINY_MODELS}, setup=True)
    requests = [
        RunRequest(
            assignment="lesson25",
            notebook=nb,
            out=tmp_path / f"out-{i}",
            limits=LESSON_LIMITS,
            mnist_npz=MNIST,
        )
        for i, nb in enumerate((poisoned, clean))
    ]
    records = asyncio.run(run_many(requests, workers=2))
    assert records[0] is not None and records[1] is not None
    bad = finished(records[0], tmp_path / "out-0")
    good = finished(records[1], tmp_path / "out-1")
    assert_status(bad, "harvest-failed")
    assert "model poisoned" in bad.record["message"]
    assert "not a .keras archive" in bad.record["message"]
    assert not (bad.out / "artifacts" / "models" / "poisoned.keras").exists()
    assert good.record["status"] == "ok"
    assert [m["key"] for m in good.record["artifacts"]["models"]] == ["good"]
    assert [h["key"] for h in good.record["artifacts"]["histories"]] == ["history"]


def test_poisoned_recorder_json_fails_the_harvest(tmp_path: Path) -> None:
    run = attack(tmp_path, POISON_RECORDER_JSON, setup=True)
    assert_status(run, "harvest-failed")
    assert "harvest manifest does not validate" in run.record["message"]
    assert run.record["artifacts"]["models"] == []


def test_poisoned_json_dumps_breaks_only_its_own_kernel(tmp_path: Path) -> None:
    """Replacing ``json.dumps`` everywhere also garbles the kernel's own messages (it signs
    them itself, so they pass the HMAC check): the runner ends the run instead of crashing."""
    run = attack(tmp_path, POISON_JSON, setup=True)
    assert_status(run, "killed")
    assert "malformed message" in run.record["message"]
    assert "cnn_build" in run.record["message"]


def test_lambda_model_is_harvested_as_data_and_never_run(tmp_path: Path) -> None:
    """A model carrying Python code (a Lambda layer) is copied as a file; the grader's
    ``safe_mode=True`` loading refuses it, so its code never runs on the host."""
    marker = uuid.uuid4().hex
    run = attack(tmp_path, LAMBDA_MODEL.replace("{marker}", marker), setup=True)
    assert_status(run, "ok")
    model_file = run.out / "artifacts" / "models" / "evil.keras"
    assert model_file.is_file()
    import keras

    with pytest.raises(ValueError, match=r"(?i)lambda|unsafe|safe_mode"):
        keras.saving.load_model(model_file, safe_mode=True)
    assert not Path(f"/tmp/AG-PWNED-{marker}").exists()


HARVEST_LINK = """\
import json, os, shutil
import autograder.kernel.recorder as recorder
H = os.environ["AUTOGRADER_HARVEST_DIR"]
def harvest(self, out):
    for sub in ("models", "figures"):
        os.makedirs(f"{H}/{sub}", exist_ok=True)
    shutil.rmtree(f"{H}/histories", ignore_errors=True)
    os.symlink({target!r}, f"{H}/histories")  # resolved by the host when it collects
    manifest = {"models": [], "figures": [], "errors": [], "gpus": [], "histories": [
        {"key": "calibration", "names": ["h"], "cell": 1, "file": "histories/calibration.json"}]}
    with open(f"{H}/manifest.json", "w") as handle:
        json.dump(manifest, handle)
recorder._Recorder.harvest = harvest
"""
HARVEST_OUTSIDE = """\
import json, os
import autograder.kernel.recorder as recorder
H = os.environ["AUTOGRADER_HARVEST_DIR"]
def harvest(self, out):
    manifest = {"models": [{"key": "m", "names": ["m"], "cell": 1, "summary": "",
                "file": "../../../../" + {target!r}}],
                "histories": [], "figures": [], "errors": [], "gpus": []}
    with open(f"{H}/manifest.json", "w") as handle:
        json.dump(manifest, handle)
recorder._Recorder.harvest = harvest
"""


def test_harvest_links_to_host_folders_are_refused(tmp_path: Path) -> None:
    """The kernel swaps ``histories/`` for a link to the grading tests and names a file
    there: the host must not read through it (nor quote it in run.json)."""
    run = attack(tmp_path, HARVEST_LINK.replace("{target!r}", repr(str(CALIBRATION.parent))))
    assert_status(run, "harvest-failed")
    assert "symbolic link" in run.record["message"]
    assert not run.leaked("thresholds")
    assert not run.leaked("cnn_model_accuracy_min")


def test_harvest_paths_outside_the_harvest_dir_are_refused(tmp_path: Path) -> None:
    run = attack(tmp_path, HARVEST_OUTSIDE.replace("{target!r}", repr(str(GRADEBOOK))))
    assert_status(run, "harvest-failed")
    assert "points outside models/" in run.record["message"]
    assert not run.leaked(b"SQLite format 3")


def test_harvest_that_hangs_hits_the_notebook_timeout(tmp_path: Path) -> None:
    code = (
        "import time\nimport autograder.kernel.recorder as recorder\n"
        "recorder.harvest = lambda: time.sleep(3600)\n"
    )
    run = attack(tmp_path, code, limits=replace(LIMITS, notebook_timeout_s=6))
    assert run.record["status"] == "timeout"
    assert "the notebook ran past 6 s" in run.record["message"]
    assert run.record["wall_s"] < 40


def test_kernel_exiting_in_the_harvest_ends_the_run_at_once(tmp_path: Path) -> None:
    code = (
        "import os\nimport autograder.kernel.recorder as recorder\n"
        "recorder.harvest = lambda: os._exit(0)\n"
    )
    run = attack(tmp_path, code)
    assert run.record["status"] == "killed"
    assert "during the harvest" in run.record["message"]
    assert run.record["failed_cell"] is None  # the attack cell itself ran fine
    assert run.record["wall_s"] < 40  # not the harvest's 300 s timeout


# -- instructor cells: an attack hidden in a locked cell never runs -----------------------------


def test_attack_in_locked_cells_is_restored_away(tmp_path: Path) -> None:
    marker = f"AG-LOCKED-{uuid.uuid4().hex}"
    release = nbformat.read(RELEASE, as_version=4)
    payload = f"open({marker + '.txt'!r}, 'w').write('x'); print({marker!r})\n"
    for cell in release.cells:
        gid = cell.metadata.nbgrader.grade_id
        if gid in ("setup", "test_cnn_architecture", "cnn_plot"):
            cell.source = payload + cell.source
        elif gid == "test_cnn_training":
            cell.source = "pass  # the student deleted the check"
    release.cells = [c for c in release.cells if c.metadata.nbgrader.grade_id != "test_lstm"]
    notebook = tmp_path / "nb" / "lesson25.ipynb"
    notebook.parent.mkdir()
    nbformat.write(release, notebook)
    run = run_notebook(notebook, tmp_path / "out", restore=True, limits=LESSON_LIMITS)
    restore = run.record["restore"]
    assert set(restore["restored"]) == {
        "setup",
        "test_cnn_architecture",
        "cnn_plot",
        "test_cnn_training",
    }
    assert restore["reinserted"] == ["test_lstm"]
    assert marker not in run.all_text()
    assert not run.record["artifacts"]["files"]
    ids = [e["grade_id"] for e in run.record["errors"]]
    assert "test_cnn_training" in ids and "test_lstm" in ids  # the checks ran again


# -- the host is untouched ----------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


COURSE_FILES = (SOURCE, HIDDEN_TEST, CALIBRATION, GRADEBOOK, MNIST)
DIGESTS_BEFORE = {path: _digest(path) for path in COURSE_FILES}


def test_course_files_unchanged_by_the_attacks() -> None:
    """No attack of this module wrote into the real course (whenever this test runs)."""
    assert {path: _digest(path) for path in COURSE_FILES} == DIGESTS_BEFORE
    for folder in ("source", "grading_tests", "gradebook", "autograder", ".cache"):
        assert not list((ROOT / folder).glob("**/PWNED*"))
