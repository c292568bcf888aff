"""Grading on a Dask cluster: one task per submission, the gradebook written only here.

:func:`dask_executor` is an :data:`autograder.grade.Executor`. It connects to the scheduler
before anything is recorded, then submits one task per pending submission. A task carries
plain data only (:class:`TaskPayload`): the notebook's bytes, the released notebook's bytes,
the assignment's checks as ``{file name: bytes}`` read by this process from
``grading_tests/<assignment>/`` (never from a place a student can write), the limits, the
device and the points. The worker (:func:`grade_task`, running this same package) writes them
into a private temporary folder, runs the notebook in the same sandboxed runner as a local
grade, runs the checks on what it left, and sends back the run folder as a
size-limited ``.tar.gz`` plus the verdicts as plain dicts (:class:`TaskResult`).

Here, each result is unpacked with every member checked (no absolute paths, ``..``, links or
devices; a size limit) into ``autograded/<student>/<assignment>/run/`` next to the verdicts
(``remote.json``), and the run is marked done. Faults:

- a worker that dies mid-task: the scheduler reruns its tasks on other workers; a result is
  applied once per submission folder whatever Dask does;
- an unreachable scheduler: one :class:`~autograder.errors.AutograderError` naming the
  address, raised before anything is recorded;
- a coordinator killed mid-batch: the runs that had come back are kept with their verdicts;
  the re-run submits only the others (see :mod:`autograder.grade` for the exactly-once write).

Worker-side data: the MNIST mirror is the worker's own ``$AUTOGRADER_DATA_DIR`` (default
``~/.cache/autograder/datasets``), provisioned there with ``autograder datasets``.
"""

from __future__ import annotations

import fnmatch
import io
import itertools
import json
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from autograder import __version__
from autograder.checks.run import CheckRun
from autograder.checks.scoring import CheckResult, score_cells
from autograder.config import DATA_ENV, CourseConfig, Limits
from autograder.datasets import mnist_path
from autograder.errors import AutograderError
from autograder.notebook import GradeCell, autograded_points
from autograder.runner.device import DEVICE_MODES

if TYPE_CHECKING:
    from distributed import Client

    from autograder.grade import Executor, Log, Pending

MAX_NOTEBOOK_BYTES = 20 * 2**20
"""Largest submission (and released notebook) sent to a worker."""
MAX_CHECKS_BYTES = 8 * 2**20
"""Largest total size of an assignment's check files."""
MAX_RESULT_BYTES = 300 * 2**20
"""Largest compressed run folder a worker sends back (``.keras`` models dropped first)."""
MAX_UNPACKED_BYTES = 2 * 2**30
"""Largest run folder unpacked here."""
MAX_MEMBERS = 20_000
CHECK_PATTERNS = ("test_*.py", "conftest.py", "*.json")
"""The files of ``grading_tests/<assignment>/`` that travel to workers."""
RUN_MEMBERS = ("run.json", "executed.ipynb", "artifacts")
"""The top-level entries of a run folder; nothing else is unpacked."""
REMOTE_FILE = "remote.json"
"""Verdicts and provenance of a run graded on the cluster, beside its ``run.json``."""
GPU_ENV = "AUTOGRADER_WORKER_GPU"
"""On a worker: the GPU (``/dev/nvidiaN`` number) its runs use (default: round-robin)."""


class DistributedError(AutograderError):
    """Grading on the cluster failed: the scheduler, a worker, or what came back."""


@dataclass(frozen=True)
class TaskPayload:
    """Everything one remote grading task needs, as plain data."""

    version: str
    assignment: str
    student: str
    notebook_name: str
    notebook: bytes
    release_name: str
    release: bytes
    checks: dict[str, bytes]
    points: dict[str, float]
    limits: dict[str, int]
    device: str = "auto"
    needs_mnist: bool = False
    max_result_bytes: int = MAX_RESULT_BYTES


@dataclass(frozen=True)
class TaskResult:
    """What a worker sends back: the run folder as ``.tar.gz`` bytes and the verdicts."""

    student: str
    status: str
    run_tar: bytes
    checks: list[dict[str, Any]]
    worker: str
    run_s: float
    check_s: float
    total_s: float
    dropped: list[str] = field(default_factory=list)


# -- the coordinator ----------------------------------------------------------------------
def dask_executor(
    scheduler: str,
    *,
    device: str = "auto",
    gpu_fraction: float | None = None,
    connect_timeout: float = 10,
    retries: int = 1,
) -> Executor:
    """An executor that grades on the Dask cluster whose scheduler is at ``scheduler``
    (``tcp://HOST:PORT``).

    ``device`` is the runner's device mode on the workers. Tasks carry the Dask resource
    ``GPU=gpu_fraction`` (so only workers started with ``--resources GPU=N`` take them) when
    ``device`` is ``gpu`` (default fraction 1) or when ``device`` is ``auto`` and a fraction
    is given; ``0.5`` lets two runs share one GPU. ``retries`` reruns a task whose worker
    raised; tasks of a worker that died are rerun by the scheduler anyway.
    """
    if device not in DEVICE_MODES:
        raise AutograderError(f"--device {device!r}: expected one of {', '.join(DEVICE_MODES)}")
    if gpu_fraction is not None and not gpu_fraction > 0:
        raise AutograderError(f"GPU fraction {gpu_fraction!r}: expected a positive number")
    resources: dict[str, float] | None = None
    if device == "gpu" or (device == "auto" and gpu_fraction is not None):
        resources = {"GPU": gpu_fraction if gpu_fraction is not None else 1.0}

    def execute(
        config: CourseConfig,
        assignment: str,
        pending: list[Pending],
        release: Path,
        cells: dict[str, GradeCell],
        log: Log,
    ) -> dict[Path, CheckRun]:
        points = autograded_points(cells)
        checked = {}
        todo = []
        for item in pending:
            reused = reused_run(item, points)
            if reused is None:
                todo.append(item)
            else:
                checked[item.out] = reused
        if checked:
            log(f"reusing {len(checked)} run(s) that came back from the cluster before")
        if not todo:
            return checked
        shared = shared_payload(config, assignment, release, points, device)
        client = connect(scheduler, connect_timeout)
        try:
            checked.update(
                _grade_on_cluster(client, scheduler, shared, todo, points, resources, retries, log)
            )
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return checked

    return execute


def connect(scheduler: str, timeout: float) -> Client:
    """A client of the scheduler at ``scheduler``; one clear error when it is unreachable."""
    try:
        from distributed import Client
    except ImportError as err:
        raise DistributedError(
            "grading on a cluster needs Dask: pip install 'nn-autograder[dask]'"
        ) from err
    _probe(scheduler, timeout)
    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)  # type: ignore[no-untyped-call]
    except Exception as err:
        raise DistributedError(
            f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s "
            f"({_one_line(err)}); nothing was graded or recorded"
        ) from err


def _probe(scheduler: str, timeout: float) -> None:
    """Fail fast, before a client exists, when a ``tcp://``/``tls://`` address is malformed
    or nothing listens there."""
    parts = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
    if parts.scheme not in ("tcp", "tls"):
        return  # other transports: the client reports
    try:
        host, port = parts.hostname, parts.port or 8786
    except ValueError as err:
        raise DistributedError(f"{scheduler}: not a scheduler address ({err})") from err
    if not host:
        raise DistributedError(f"{scheduler}: not a scheduler address (tcp://HOST:PORT)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise DistributedError(
            f"cannot reach the Dask scheduler at {scheduler} ({_one_line(err)}); nothing was "
            "graded or recorded"
        ) from err


def shared_payload(
    config: CourseConfig, assignment: str, release: Path, points: dict[str, float], device: str
) -> TaskPayload:
    """The part of every task's payload that is the same for the whole batch."""
    return TaskPayload(
        version=__version__,
        assignment=assignment,
        student="",
        notebook_name="",
        notebook=b"",
        release_name=release.name,
        release=read_limited(release, MAX_NOTEBOOK_BYTES, "released notebook"),
        checks=read_checks(config.grading_tests_dir / assignment),
        points=dict(points),
        limits=asdict(config.limits),
        device=device,
        needs_mnist=mnist_path(config.data_dir).is_file(),
    )


def read_checks(folder: Path) -> dict[str, bytes]:
    """The check files of ``folder`` (:data:`CHECK_PATTERNS`, regular files, no links)."""
    checks: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not any(fnmatch.fnmatch(path.name, p) for p in CHECK_PATTERNS):
            continue
        if path.is_symlink() or not path.is_file():
            raise DistributedError(f"{path}: a check file must be a regular file, not a link")
        data = path.read_bytes()
        total += len(data)
        if total > MAX_CHECKS_BYTES:
            raise DistributedError(
                f"{folder}: the check files exceed {MAX_CHECKS_BYTES // 2**20} MB together"
            )
        checks[path.name] = data
    if not any(fnmatch.fnmatch(name, "test_*.py") for name in checks):
        raise DistributedError(f"{folder}: no checks (test_*.py) to send to the workers")
    return checks


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``; an error naming it when it is larger than ``limit``."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise DistributedError(
                f"{path}: the {what} is {size / 2**20:.1f} MB, over the {limit // 2**20} MB "
                "that may travel to a worker"
            )
        return path.read_bytes()
    except OSError as err:
        raise DistributedError(f"{path}: cannot read the {what}: {err}") from err


def task_key(assignment: str, item: Pending) -> str:
    """The Dask key of ``item``'s task: one per submission and grading key."""
    return f"autograder-{assignment}-{item.student}-{item.key[:16]}"


def _grade_on_cluster(
    client: Client,
    scheduler: str,
    shared: TaskPayload,
    todo: list[Pending],
    points: dict[str, float],
    resources: dict[str, float] | None,
    retries: int,
    log: Log,
) -> dict[Path, CheckRun]:
    from distributed import as_completed

    _describe_cluster(client, scheduler, len(todo), resources, log)
    futures = {}
    failures: list[str] = []
    for item in todo:
        try:
            notebook = read_limited(item.notebook, MAX_NOTEBOOK_BYTES, "submission")
        except DistributedError as err:
            failures.append(str(err))
            continue
        payload = replace(
            shared, student=item.student, notebook_name=item.notebook.name, notebook=notebook
        )
        future = client.submit(
            grade_task,
            payload,
            key=task_key(shared.assignment, item),
            pure=False,
            retries=retries,
            resources=resources,
        )
        futures[future] = item
    checked: dict[Path, CheckRun] = {}
    with _Progress(len(futures)) as progress:
        for future in as_completed(list(futures), loop=client.loop):  # type: ignore[no-untyped-call]
            item = futures[future]
            if item.out in checked:  # applied once per submission folder
                continue
            try:
                checked[item.out] = apply_result(item, future.result(), points)
            except Exception as err:
                failures.append(f"{item.student}: {_one_line(err)}")
                progress.advance(failed=True)
                continue
            progress.advance()
    if failures:
        raise DistributedError(
            f"{len(failures)} of {len(todo)} submission(s) could not be graded on the cluster, "
            f"so nothing was recorded (the {len(checked)} that came back are kept for the "
            f"re-run): {'; '.join(failures[:3])}" + (" ..." if len(failures) > 3 else "")
        )
    log(f"{len(checked)} submission(s) ran and were checked on the cluster")
    return checked


def _describe_cluster(
    client: Client, scheduler: str, tasks: int, resources: dict[str, float] | None, log: Log
) -> None:
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    log(f"grading {tasks} submission(s) on {scheduler} ({len(workers)} worker(s) now)")
    if not workers:
        log("no worker is connected yet: the tasks wait until one joins")
    elif resources and not any(
        w.get("resources", {}).get("GPU", 0) >= resources["GPU"] for w in workers.values()
    ):
        log(
            f"no connected worker offers the resource GPU={resources['GPU']:g}: the tasks wait "
            "for a worker started with --resources GPU=1"
        )


class _Progress:
    """A progress line on stderr: done, failed, throughput."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.started = time.monotonic()
        self.done = self.failed = 0
        self.progress = Progress(
            TextColumn("[bold]cluster[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} back"),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]:.1f}/min"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.task = self.progress.add_task("grade", total=total, failed=0, rate=0.0)

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, *, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        rate = 60.0 * self.done / max(time.monotonic() - self.started, 1e-6)
        self.progress.update(self.task, completed=self.done, failed=self.failed, rate=rate)


def apply_result(item: Pending, result: object, points: dict[str, float]) -> CheckRun:
    """Unpack ``result`` into ``item``'s run folder, mark the run done, and score it."""
    from autograder.grade import RUN_FOLDER, mark_run_done

    if not isinstance(result, TaskResult) or result.student != item.student:
        raise DistributedError(f"{item.out}: a worker sent back something else than its result")
    verdicts = tuple(check_result(d) for d in result.checks)
    run_dir = item.out / RUN_FOLDER
    item.out.mkdir(parents=True, exist_ok=True)
    for stale in item.out.glob(".run-*"):  # left by a coordinator killed while unpacking
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=".run-", dir=item.out))
    try:
        safe_extract(result.run_tar, staging)
        if not (staging / "run.json").is_file():
            raise DistributedError(f"{run_dir}: no run.json in the run from {result.worker}")
        remote = {
            "key": item.key,
            "worker": result.worker,
            "checks": result.checks,
            "dropped": result.dropped,
            "run_s": result.run_s,
            "check_s": result.check_s,
            "total_s": result.total_s,
        }
        (staging / REMOTE_FILE).write_text(
            json.dumps(remote, ensure_ascii=False, indent=1), "utf-8"
        )
        if run_dir.is_dir() and not run_dir.is_symlink():
            shutil.rmtree(run_dir)
        elif run_dir.exists() or run_dir.is_symlink():
            run_dir.unlink()
        staging.rename(run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    mark_run_done(item)
    return CheckRun(run_dir, verdicts, score_cells(verdicts, points))


def reused_run(item: Pending, points: dict[str, float]) -> CheckRun | None:
    """The verdicts of a run that came back for ``item``'s grading key before (``None``
    when there is none, e.g. after an interruption before it came back)."""
    from autograder.grade import RUN_FOLDER, run_is_current

    run_dir = item.out / RUN_FOLDER
    if not run_is_current(item):
        return None
    try:
        data = json.loads((run_dir / REMOTE_FILE).read_text("utf-8"))
        if data.get("key") != item.key:
            return None
        verdicts = tuple(check_result(d) for d in data["checks"])
    except (OSError, ValueError, TypeError, KeyError, AutograderError):
        return None
    return CheckRun(run_dir, verdicts, score_cells(verdicts, points))


def check_result(data: Any) -> CheckResult:
    """A :class:`CheckResult` from its plain-dict form, each field type-checked."""
    try:
        outcome = str(data["outcome"])
        if outcome not in ("passed", "failed", "error"):
            raise ValueError(f"outcome {outcome!r}")
        details = data.get("details") or {}
        if not isinstance(details, dict):
            raise ValueError("details is not an object")
        return CheckResult(
            check=str(data["check"]),
            cell=str(data["cell"]),
            weight=float(data["weight"]),
            visible=bool(data["visible"]),
            outcome=outcome,
            message=str(data.get("message", "")),
            details=details,
            flags=tuple(str(f) for f in data.get("flags", ())),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DistributedError(f"a check verdict from a worker is malformed: {err}") from err


def safe_extract(data: bytes, target: Path, *, limit: int = MAX_UNPACKED_BYTES) -> None:
    """Unpack the ``.tar.gz`` ``data`` into ``target``: regular files and folders only, under
    :data:`RUN_MEMBERS`, no absolute paths or ``..``, at most ``limit`` bytes in all."""
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise DistributedError(f"{target}: more than {MAX_MEMBERS} files came back")
                name = _member_path(member)
                if member.isdir():
                    (target / name).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise DistributedError(f"{target}: {member.name!r} is not a regular file")
                total += member.size
                if total > limit:
                    raise DistributedError(
                        f"{target}: the run folder unpacks to more than {limit // 2**20} MB"
                    )
                source = tar.extractfile(member)
                if source is None:
                    raise DistributedError(f"{target}: {member.name!r} cannot be read")
                path = target / name
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("xb") as sink:
                    shutil.copyfileobj(source, sink)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DistributedError(
            f"{target}: the run folder that came back is damaged: {err}"
        ) from err


def _member_path(member: tarfile.TarInfo) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if (
        path.is_absolute()
        or ".." in path.parts
        or not path.parts
        or "\\" in member.name
        or path.parts[0] not in RUN_MEMBERS
    ):
        raise DistributedError(f"refusing {member.name!r} in a run folder from a worker")
    return path


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")[:300]


# -- the worker ---------------------------------------------------------------------------
_slots = itertools.count()
_slots_lock = threading.Lock()
_checks_lock = threading.Lock()


def worker_data_dir() -> Path:
    """The worker's dataset mirror: ``$AUTOGRADER_DATA_DIR``, else
    ``~/.cache/autograder/datasets``."""
    given = os.environ.get(DATA_ENV)
    return Path(given) if given else Path.home() / ".cache" / "autograder" / "datasets"


def _gpu_slot() -> int:
    """The runner's GPU slot for the next task: the position of ``$AUTOGRADER_WORKER_GPU``
    (a ``/dev/nvidiaN`` number) among the visible GPUs, else round-robin over them."""
    from autograder.runner.device import visible_gpus

    pinned = os.environ.get(GPU_ENV, "").strip()
    if pinned:
        indices = [gpu.index for gpu in visible_gpus()]
        if not indices:
            return 0
        try:
            return indices.index(int(pinned))
        except ValueError as err:
            raise DistributedError(
                f"{GPU_ENV}={pinned} on worker {_worker_name()}: no such GPU (visible: "
                f"{', '.join(map(str, indices))})"
            ) from err
    with _slots_lock:
        return next(_slots)


def grade_task(payload: TaskPayload) -> TaskResult:
    """Run and check one submission on this worker (the Dask task function)."""
    from autograder.runner.run import RunRequest, run_submission

    started = time.perf_counter()
    worker = _worker_name()
    if payload.version != __version__:
        raise DistributedError(
            f"worker {worker} runs autograder {__version__}, the coordinator {payload.version}: "
            "install the same version everywhere"
        )
    mirror = mnist_path(worker_data_dir())
    if payload.needs_mnist and not mirror.is_file():
        raise DistributedError(
            f"worker {worker} has no MNIST mirror at {mirror}: run `autograder datasets` there "
            f"(or set {DATA_ENV})"
        )
    with tempfile.TemporaryDirectory(prefix="autograder-task-") as tmp:
        private = Path(tmp)  # mode 0700, outside anything the sandbox mounts
        notebook = _write(private / "submission", payload.notebook_name, payload.notebook)
        release = _write(private / "release", payload.release_name, payload.release)
        checks_dir = private / "checks"
        for name, data in payload.checks.items():
            if not any(fnmatch.fnmatch(name, p) for p in CHECK_PATTERNS):
                raise DistributedError(f"refusing check file name {name!r}")
            _write(checks_dir, name, data)
        run_dir = private / "run"
        record = run_submission(
            RunRequest(
                assignment=payload.assignment,
                notebook=notebook,
                out=run_dir,
                limits=Limits(**payload.limits),
                mnist_npz=mirror if mirror.is_file() else None,
                release_notebook=release,
                device_mode=payload.device,
                gpu_slot=_gpu_slot(),
            )
        )
        ran = time.perf_counter()
        verdicts: list[dict[str, Any]] = []
        if record["status"] != "invalid-notebook":
            verdicts = _check_run(checks_dir, run_dir, payload.points)
        checked = time.perf_counter()
        tar, dropped = pack_run(run_dir, payload.max_result_bytes)
    return TaskResult(
        student=payload.student,
        status=str(record["status"]),
        run_tar=tar,
        checks=verdicts,
        worker=worker,
        run_s=round(ran - started, 3),
        check_s=round(checked - ran, 3),
        total_s=round(time.perf_counter() - started, 3),
        dropped=dropped,
    )


def _worker_name() -> str:
    """This worker's address (its host name outside a Dask worker)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return socket.gethostname()


def _write(folder: Path, name: str, data: bytes) -> Path:
    if not name or PurePosixPath(name).name != name or name in (".", ".."):
        raise DistributedError(f"refusing file name {name!r} from the coordinator")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _check_run(checks_dir: Path, run_dir: Path, points: dict[str, float]) -> list[dict[str, Any]]:
    """The verdicts of the checks on ``run_dir``, as plain dicts.

    One pytest session at a time per worker process (a session swaps ``sys.stdout`` and the
    process's file descriptors), as in the coordinator of a local grade: the sandbox is
    where untrusted code is contained, the checks only read its data."""
    from autograder.checks import plugin
    from autograder.checks.run import run_checks

    with _checks_lock:
        try:
            checked = run_checks(checks_dir, [run_dir], points, data_dir=worker_data_dir())
        finally:  # a long-lived worker keeps no loaded models of past submissions
            getattr(plugin, "_SUBMISSIONS", {}).pop(str(run_dir.resolve()), None)
    return [asdict(r) for r in checked[run_dir].results]


def pack_run(run_dir: Path, limit: int) -> tuple[bytes, list[str]]:
    """``run_dir`` as ``.tar.gz`` bytes (regular files only); ``.keras`` models are left out
    when the whole is over ``limit``. Returns the bytes and what was left out."""
    files = sorted(
        p
        for p in run_dir.rglob("*")
        if p.is_file() and not p.is_symlink() and p.relative_to(run_dir).parts[0] in RUN_MEMBERS
    )
    data = _tar(run_dir, files)
    if len(data) <= limit:
        return data, []
    dropped = [str(p.relative_to(run_dir)) for p in files if p.suffix == ".keras"]
    data = _tar(run_dir, [p for p in files if p.suffix != ".keras"])
    if len(data) > limit:
        raise DistributedError(
            f"the run folder is {len(data) / 2**20:.0f} MB compressed even without models, "
            f"over the {limit // 2**20} MB that may travel back"
        )
    return data, dropped


def _tar(root: Path, files: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in files:
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with path.open("rb") as source:
                tar.addfile(info, source)
    return buffer.getvalue()
