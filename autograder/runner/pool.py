"""Running many submissions at once: a bounded pool of concurrent sandboxed runs in one
event loop, GPU slots shared out per card, and a live progress line.

Ctrl-C cancels the runs in flight: their kernels and sandboxes are torn down by the same
clean-up as a normal run, and every run that had finished keeps its results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from autograder.runner.device import visible_gpus
from autograder.runner.run import RunRequest, run_submission_async

OK_STATUSES = ("ok", "cell-error")


@dataclass
class PoolStats:
    """Counters shown on the progress line."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
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
            results[position] = record
            if on_done:
                on_done(request, record)
            stats.done += 1
            if record["status"] not in OK_STATUSES:
                stats.failed += 1
            if on_update:
                on_update(stats, record)

    await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    return results


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
