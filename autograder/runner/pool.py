"""Running many submissions at once: a bounded pool of concurrent sandboxed runs in one
event loop, GPU slots shared out per card, and a live progress line.

Ctrl-C (or SIGTERM) stops the batch: the sandboxes in flight are killed at once, no new run
starts, every run that had finished keeps its results, and :class:`Interrupted` says so.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from autograder.errors import Interrupted
from autograder.runner.device import visible_gpus
from autograder.runner.limits import stop_all
from autograder.runner.run import RunRequest, run_submission_async

OK_STATUSES = ("ok", "cell-error")


@dataclass
class PoolStats:
    """Counters shown on the progress line."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)

    @property
    def per_minute(self) -> float:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return 60.0 * self.done / elapsed


class GpuSlots:
    """``slots`` concurrent runs per visible GPU; ``acquire`` returns the GPU index to use."""

    def __init__(self, gpus: int, slots: int) -> None:
        self.free = dict.fromkeys(range(gpus), max(slots, 1))
        self.cond = asyncio.Condition()

    async def acquire(self) -> int:
        async with self.cond:
            await self.cond.wait_for(lambda: any(v > 0 for v in self.free.values()))
            index = max(self.free, key=lambda k: self.free[k])
            self.free[index] -= 1
            return index

    async def release(self, index: int) -> None:
        async with self.cond:
            self.free[index] += 1
            self.cond.notify()


async def run_many(
    requests: Sequence[RunRequest],
    *,
    workers: int,
    gpu_slots: int = 1,
    on_update: Callable[[PoolStats, dict[str, Any] | None], None] | None = None,
    on_done: Callable[[RunRequest, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any] | None]:
    """Run ``requests`` with at most ``workers`` at once; results in the same order
    (``None`` for a run that was cancelled before it finished). ``on_done`` is called as
    each run finishes, so that a caller can record it before the batch ends."""
    stats = PoolStats(total=len(requests))
    limit = asyncio.Semaphore(max(workers, 1))
    gpus = len(visible_gpus())
    slots = GpuSlots(gpus, gpu_slots) if gpus else None
    results: list[dict[str, Any] | None] = [None] * len(requests)

    async def one(position: int, request: RunRequest) -> None:
        async with limit:
            if stats.interrupted:
                return
            gpu: int | None = None
            if slots is not None and request.device_mode != "cpu":
                gpu = await slots.acquire()
                request = replace(request, gpu_slot=gpu)
            stats.running += 1
            if on_update:
                on_update(stats, None)
            try:
                record = await run_submission_async(request)
            finally:
                stats.running -= 1
                if slots is not None and gpu is not None:
                    await slots.release(gpu)
            if stats.interrupted:
                return  # stopped half-way: not a result, the run is due again
            results[position] = record
            if on_done:
                on_done(request, record)
            stats.done += 1
            if record["status"] not in OK_STATUSES:
                stats.failed += 1
            if on_update:
                on_update(stats, record)

    def interrupt() -> None:
        stats.interrupted = True
        stop_all("killed", "the batch was stopped (Ctrl-C)")

    loop = asyncio.get_running_loop()
    handled = []
    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, interrupt)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread (e.g. a Dask worker): no handler
    # nbclient installs (and on exit removes) its own SIGINT/SIGTERM handler for each kernel,
    # which would replace the batch's; while the batch runs, the batch's handler stays.
    patched: Any = loop
    if handled:
        patched.add_signal_handler = _keep_stop_signals(loop.add_signal_handler)
        patched.remove_signal_handler = _keep_stop_signals(loop.remove_signal_handler)
    try:
        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    finally:
        if handled:
            del patched.add_signal_handler, patched.remove_signal_handler  # the class's again
        for signum in handled:
            loop.remove_signal_handler(signum)
    if stats.interrupted:
        kept = sum(r is not None for r in results)
        raise Interrupted(
            f"stopped by the user: {kept} finished run(s) kept, "
            f"{len(requests) - kept} not run or stopped half-way (run again to finish them)"
        )
    return results


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _keep_stop_signals(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of the event loop, ignoring calls for :data:`STOP_SIGNALS`."""

    def guarded(signum: int, *args: Any) -> Any:
        if signum in STOP_SIGNALS:
            return False
        return method(signum, *args)

    return guarded


def run_with_progress(
    requests: Sequence[RunRequest],
    *,
    workers: int,
    gpu_slots: int = 1,
    on_done: Callable[[RunRequest, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any] | None]:
    """:func:`run_many` with a progress bar on stderr (done, running, failed, throughput)."""
    columns = (
        TextColumn("[bold]running[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} done"),
        TextColumn("{task.fields[running]} running, {task.fields[failed]} failed"),
        TextColumn("{task.fields[rate]:.1f}/min"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("runs", total=len(requests), running=0, failed=0, rate=0.0)

        def update(stats: PoolStats, record: dict[str, Any] | None) -> None:
            progress.update(
                task,
                completed=stats.done,
                running=stats.running,
                failed=stats.failed,
                rate=stats.per_minute,
            )

        return asyncio.run(
            run_many(
                requests, workers=workers, gpu_slots=gpu_slots, on_update=update, on_done=on_done
            )
        )
