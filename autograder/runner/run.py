"""One sandboxed run: restore the instructor's cells, execute the notebook cell by cell in a
fresh project kernel inside the sandbox, harvest models, histories, figures and saved files,
and write ``run.json``, ``executed.ipynb`` and ``artifacts/`` into the output folder.

A limit breach ends the run with its status; nothing the kernel wrote is trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import platform
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from autograder import __version__
from autograder.config import Limits
from autograder.errors import AutograderError
from autograder.kernel.manager import kernel_env
from autograder.kernel.recorder import HARVEST_ENV
from autograder.notebook import cell_label, read_notebook
from autograder.runner.device import Device, select_device
from autograder.runner.harvest import HarvestError, collect_files, collect_harvest
from autograder.runner.kernel import SandboxedKernelManager
from autograder.runner.limits import POLL_S, Enforcer
from autograder.runner.record import write_record
from autograder.runner.restore import restore_cells
from autograder.runner.sandbox import HARVEST, SandboxSpec, python_mounts, require_sandbox

HARVEST_CODE = "__import__('autograder.kernel.recorder', fromlist=['harvest']).harvest()"
HARVEST_TIMEOUT_S = 300
INTERRUPT_GRACE_S = 30


@dataclass(frozen=True)
class RunRequest:
    """Everything one run needs; the batch grader builds one per submission."""

    assignment: str
    notebook: Path
    out: Path
    limits: Limits
    mnist_npz: Path | None
    release_notebook: Path | None = None
    device_mode: str = "auto"
    gpu_slot: int = 0
    sandbox: bool = True
    extra_files: tuple[Path, ...] = ()
    seed: int | None = None


class _Client(NotebookClient):
    """nbclient with a per-cell output budget: a cell that prints more trips the enforcer."""

    def __init__(self, *args: Any, enforcer: Enforcer, max_output_bytes: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.enforcer = enforcer
        self.max_output_bytes = max_output_bytes
        self.output_bytes: dict[int, int] = {}
        self.timed_out: list[int] = []
        self.current_cell = -1
        self.interrupted_at = 0.0

    async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> Any:
        """A cell ran past its limit: interrupt the kernel once, so that the notebook goes on
        with the next cell (later cells can still earn points); if the cell does not stop
        within :data:`INTERRUPT_GRACE_S`, end the run."""
        if self.current_cell not in self.timed_out:
            self.timed_out.append(self.current_cell)
            self.interrupted_at = time.monotonic()
            assert self.km is not None
            await ensure_async(self.km.interrupt_kernel())
        elif time.monotonic() - self.interrupted_at > INTERRUPT_GRACE_S:
            raise CellTimeoutError.error_from_timeout_and_cell(
                "Cell execution timed out", timeout, cell
            )
        await asyncio.sleep(0.2)
        return None

    def output(self, outs: Any, msg: Any, display_id: Any, cell_index: int) -> Any:
        content = msg.get("content", {})
        size = (
            len(content.get("text", ""))
            + sum(len(str(v)) for v in content.get("data", {}).values())
            + sum(len(line) for line in content.get("traceback", []))
        )
        used = self.output_bytes.get(cell_index, 0) + size
        self.output_bytes[cell_index] = used
        if used > self.max_output_bytes:
            if self.enforcer.breach is None:
                self.enforcer.trip(
                    "output-limit",
                    f"cell {cell_index} printed more than {self.max_output_bytes // 1024} KB",
                )
            return None
        return super().output(outs, msg, display_id, cell_index)


def run_submission(request: RunRequest) -> dict[str, Any]:
    """Run one submission (see the module docstring); returns the run record."""
    return asyncio.run(run_submission_async(request))


async def run_submission_async(request: RunRequest) -> dict[str, Any]:
    """Async core of :func:`run_submission`."""
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("run.json", "executed.ipynb", "artifacts"):
        target = out / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    started = time.perf_counter()
    record: dict[str, Any] = {
        "schema": "autograder.run/1",
        "assignment": request.assignment,
        "notebook": request.notebook.name,
        "notebook_sha256": _sha256(request.notebook),
        "status": "ok",
        "message": "",
        "failed_cell": None,
        "errors": [],
        "wall_s": 0.0,
        "peak_memory_mb": 0.0,
        "device": {"kind": "cpu", "name": "CPU", "gpus_seen_by_kernel": []},
        "sandbox": {"kind": "bwrap" if request.sandbox else "none", "limits": "watchdog"},
        "limits": request.limits.__dict__,
        "versions": _versions(),
        "seed": None,
        "restore": None,
        "cells": [],
        "artifacts": {
            "models": [],
            "histories": [],
            "figures": [],
            "files": [],
            "skipped_files": [],
            "harvest_errors": [],
        },
        "leftover_processes": 0,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished": "",
    }
    try:
        nb = read_notebook(request.notebook)
        _drop_bad_nbgrader(nb)
        if not any(c.cell_type == "code" and c.source.strip() for c in nb.cells):
            raise AutograderError(f"{request.notebook}: the notebook has no code to run")
        if request.release_notebook is not None:
            nb, report = restore_cells(nb, read_notebook(request.release_notebook))
            record["restore"] = report.as_dict()
    except AutograderError as err:
        return _finish(record, out, None, started, "invalid-notebook", str(err))
    if request.sandbox:
        require_sandbox()
    device = select_device(request.device_mode, slot=request.gpu_slot)
    record["device"] = {"kind": device.kind, "name": device.name, "gpus_seen_by_kernel": []}
    if request.seed is not None:
        _apply_seed(nb, request.seed)
    record["seed"] = _declared_seed(nb)

    with tempfile.TemporaryDirectory(prefix="autograder-run-") as tmp:
        scratch = Path(tmp)
        workdir, harvest_dir, conn = scratch / "work", scratch / "harvest", scratch / "conn"
        for folder in (workdir, harvest_dir, conn):
            folder.mkdir(mode=0o777)
            folder.chmod(0o777)
        for extra in request.extra_files:
            shutil.copyfile(extra, workdir / extra.name)
        nbformat.write(nb, workdir / request.notebook.name)
        status, message = await _execute(request, nb, device, record, workdir, harvest_dir, conn)
        interrupted = status == "timeout" and (harvest_dir / "manifest.json").is_file()
        if status in ("ok", "cell-error") or interrupted:
            try:
                index = collect_harvest(harvest_dir, out / "artifacts")
                record["device"]["gpus_seen_by_kernel"] = index.pop("gpus")
                record["artifacts"]["harvest_errors"] = index.pop("errors")
                record["artifacts"].update(index)
                if record["artifacts"]["harvest_errors"] and status == "ok":
                    status = "harvest-failed"
                    message = "; ".join(record["artifacts"]["harvest_errors"])[:500]
            except HarvestError as err:
                if status == "ok":
                    status, message = "harvest-failed", str(err)
                record["artifacts"]["harvest_errors"].append(str(err))
        files = collect_files(workdir, out / "artifacts" / "files", skip={request.notebook.name})
        record["artifacts"]["files"] = files["files"]
        record["artifacts"]["skipped_files"] = files["skipped"]
    return _finish(record, out, nb, started, status, message)


async def _execute(
    request: RunRequest,
    nb: Any,
    device: Device,
    record: dict[str, Any],
    workdir: Path,
    harvest_dir: Path,
    conn: Path,
) -> tuple[str, str]:
    limits = request.limits
    enforcer = Enforcer(limits, (workdir, harvest_dir))
    record["sandbox"]["limits"] = enforcer.mode
    kernel_vars = kernel_env(
        request.mnist_npz.resolve() if request.mnist_npz is not None else None,
        {HARVEST_ENV: HARVEST if request.sandbox else str(harvest_dir), **device.env},
    )
    spec = None
    if request.sandbox:
        readonly = list(python_mounts())
        if request.mnist_npz is not None:
            readonly.append(request.mnist_npz.parent.resolve())
        spec = SandboxSpec(
            workdir=workdir,
            harvest_dir=harvest_dir,
            connection_dir=conn,
            limits=limits,
            readonly=tuple(readonly),
            devices=device.nodes,
            env=kernel_vars,
        )
    km = SandboxedKernelManager(
        spec=spec,
        enforcer=enforcer,
        transport="ipc",
        ip=str(conn / "kernel"),
        connection_file=str(conn / "kernel.json"),
    )
    timings: dict[int, float] = {}

    def on_cell_start(cell: Any, cell_index: int) -> None:
        timings[cell_index] = time.perf_counter()

    def on_cell_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        duration = time.perf_counter() - timings.get(cell_index, time.perf_counter())
        content = (execute_reply or {}).get("content", {})
        entry = {
            "index": cell_index,
            "grade_id": _grade_id(cell),
            "status": content.get("status", "ok"),
            "duration_s": round(duration, 3),
        }
        record["cells"].append(entry)
        if content.get("status") == "error":
            record["errors"].append(
                {
                    "index": cell_index,
                    "grade_id": _grade_id(cell),
                    "test_cell": _is_test(cell),
                    "ename": str(content.get("ename", "")),
                    "evalue": str(content.get("evalue", ""))[:2000],
                    "traceback": _strip_ansi("\n".join(content.get("traceback", [])))[-8000:],
                }
            )

    client = _Client(
        nb,
        km=km,
        enforcer=enforcer,
        max_output_bytes=limits.output_kb_per_cell * 1024,
        timeout=limits.cell_timeout_s,
        allow_errors=True,
        record_timing=True,
        startup_timeout=120,
        shutdown_kernel="immediate",  # the harvest is in; nothing left to flush
        on_cell_start=on_cell_start,
        on_cell_executed=on_cell_executed,
        resources={"metadata": {"path": str(workdir)}},
    )
    env = dict(os.environ) if request.sandbox else {**os.environ, **kernel_vars}
    status, message, current = "ok", "", -1
    log = (harvest_dir / "kernel.log").open("wb")
    try:
        async with client.async_setup_kernel(env=env, cwd=str(workdir), stdout=log, stderr=log):
            enforcer.start(km.host_pid)
            for index, cell in enumerate(nb.cells):
                current = client.current_cell = index
                await client.async_execute_cell(cell, index, execution_count=index + 1)
                # measure once more as the cell ends, so that a breach the watchdog's next
                # tick would find later is put on the cell that caused it
                if enforcer.check_now():
                    break
            if not enforcer.breach:
                current = -1  # a failure from here on is the harvest's, not a cell's
                reply = await _harvest(client, km, enforcer)
                if reply["content"].get("status") != "ok":
                    content = reply["content"]
                    status = "harvest-failed"
                    message = f"harvest: {content.get('ename')}: {content.get('evalue')}"
    except CellTimeoutError:
        status = "timeout"
        message = f"{cell_label(nb.cells[current], current)} ran past {limits.cell_timeout_s} s"
    except (DeadKernelError, RuntimeError, TimeoutError, OSError) as err:
        status, message = "killed", f"the kernel died: {type(err).__name__}: {err}"
        if current >= 0:
            message += f" (in {cell_label(nb.cells[current], current)})"
    except Exception as err:  # the kernel broke the messaging protocol (it signs its own)
        status = "killed"
        message = f"the kernel sent a malformed message: {type(err).__name__}: {err}"
        if current >= 0:
            message += f" (in {cell_label(nb.cells[current], current)})"
    finally:
        log.close()
        breach = enforcer.check_now()
        enforcer.close()
        record["peak_memory_mb"] = round(enforcer.peak_memory_bytes / 2**20, 1)
        record["leftover_processes"] = len(enforcer.leftover_pids())
    if breach:
        status, message = breach, enforcer.breach_detail
        if current >= 0:
            message += f" (in {cell_label(nb.cells[current], current)})"
    if status in ("ok", "cell-error") and client.timed_out:
        first = client.timed_out[0]
        status = "timeout"
        message = (
            f"{cell_label(nb.cells[first], first)} ran past {limits.cell_timeout_s} s and was "
            "interrupted; the cells after it still ran"
        )
        record["failed_cell"] = {"index": first, "grade_id": _grade_id(nb.cells[first])}
        return status, message
    if status in ("ok", "cell-error") and record["errors"]:
        first = record["errors"][0]
        record["failed_cell"] = first
        status = "cell-error"
        message = (
            f"{cell_label(nb.cells[first['index']], first['index'])} failed: "
            f"{first['ename']}: {first['evalue']}"[:500]
        )
    if status not in ("ok", "cell-error", "harvest-failed") and current >= 0:
        record["failed_cell"] = {"index": current, "grade_id": _grade_id(nb.cells[current])}
    return status, message


async def _harvest(client: Any, km: SandboxedKernelManager, enforcer: Enforcer) -> Any:
    """Ask the kernel for its harvest; give up as soon as the kernel dies or the watchdog
    trips (``execute_interactive`` alone would wait ``HARVEST_TIMEOUT_S`` for a dead kernel)."""
    task = asyncio.ensure_future(
        client.kc.execute_interactive(
            HARVEST_CODE,
            silent=True,
            store_history=False,
            timeout=HARVEST_TIMEOUT_S,
            output_hook=lambda msg: None,
            allow_stdin=False,
        )
    )
    while True:
        done, _ = await asyncio.wait({task}, timeout=POLL_S)
        if done:
            return task.result()
        if enforcer.breach or not await km.is_alive():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise DeadKernelError("it stopped during the harvest")


def _finish(
    record: dict[str, Any], out: Path, nb: Any, started: float, status: str, message: str
) -> dict[str, Any]:
    record["status"] = status
    record["message"] = message.splitlines()[0][:500] if message else ""
    record["wall_s"] = round(time.perf_counter() - started, 2)
    record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    if nb is not None:
        nbformat.write(nb, out / "executed.ipynb")
    write_record(record, out / "run.json")
    return record


def _drop_bad_nbgrader(nb: Any) -> None:
    """nbgrader metadata that is not an object (hand-edited JSON) cannot mark a graded cell;
    drop it instead of crashing on it later (restore, cell labels)."""
    for cell in nb.cells:
        meta = cell.get("metadata")
        if isinstance(meta, dict) and not isinstance(meta.get("nbgrader", {}), dict):
            del meta["nbgrader"]


def _grade_id(cell: Any) -> str | None:
    gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
    return gid if isinstance(gid, str) else None


def _is_test(cell: Any) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader") or {}
    return bool(meta.get("grade")) and not meta.get("solution")


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _declared_seed(nb: Any) -> int | None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            found = re.search(r"^SEED\s*=\s*(\d+)", cell.source, re.MULTILINE)
            if found:
                return int(found.group(1))
    return None


def _apply_seed(nb: Any, seed: int) -> None:
    """Replace the notebook's declared ``SEED = N`` (its seed policy) by ``seed``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and re.search(r"^SEED\s*=\s*\d+", cell.source, re.MULTILINE):
            cell.source = re.sub(
                r"^SEED\s*=\s*\d+", f"SEED = {seed}", cell.source, count=1, flags=re.MULTILINE
            )
            return


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "autograder": __version__}
    for dist in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "ipykernel", "nbclient"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions
