"""Grading on a local Dask cluster: throughput with 1, 2 and 4 workers and the scheduling
overhead per task (a benchmark that prints a table with ratios, not a test).

    .venv/bin/python benchmarks/bench_dask.py [--submissions 40] [--workers 1 2 4]

Each row grades the same submissions of the tiny test course (with its hidden check) from a
fresh copy: a ``dask scheduler`` and N ``dask worker --nthreads 1`` subprocesses on 127.0.0.1,
``grade(..., executor=dask_executor(...))``, every gradebook write in this process. The
columns:

- ``subs/min``: submissions graded per minute, whole ``grade`` call (run, check, record);
- ``task s``: mean time a task spent on its worker (sandboxed run + checks + packing);
- ``overhead/task``: ``(cluster wall time x workers - sum of task times) / submissions``: what
  a task costs beyond its own work (payload, scheduling, transfer, unpacking here, idle slots);
- ``no-op rtt``: submit-to-result latency of an empty task (median of 100, one at a time).

A ``local`` row grades the same batch with the local pool (``--workers 2``) for comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_distributed import (  # noqa: E402
    TINY,
    Cluster,
    cluster_env,
    copy_course,
    release_tiny,
    remote,
    submit_batch,
)

from autograder.config import CourseConfig, load_config  # noqa: E402
from autograder.datasets import provision_mnist  # noqa: E402
from autograder.distributed import dask_executor  # noqa: E402
from autograder.grade import grade  # noqa: E402


@dataclass
class Row:
    label: str
    workers: int
    wall_s: float
    cluster_s: float
    task_s: list[float]
    noop_ms: float | None

    @property
    def per_minute(self) -> float:
        return 60.0 * len(self.task_s) / self.wall_s

    @property
    def overhead_s(self) -> float | None:
        if not self.task_s or self.noop_ms is None:
            return None
        return (self.cluster_s * self.workers - sum(self.task_s)) / len(self.task_s)


def _noop_latency(address: str, count: int = 100) -> float:
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        client.submit(len, b"warm", pure=False).result()
        times = []
        for _ in range(count):
            started = time.perf_counter()
            client.submit(len, b"x", pure=False).result()
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def _timed(executor: Any, spent: list[float]) -> Any:
    def execute(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return executor(*args)
        finally:
            spent.append(time.perf_counter() - started)

    return execute


def _graded(config: CourseConfig, expected: dict[str, float]) -> None:
    results = list(config.autograded_dir.glob(f"*/{TINY}/result.json"))
    assert len(results) == len(expected), f"{len(results)} of {len(expected)} graded"


def run_cluster(base: Path, course: Path, submissions: int, workers: int) -> Row:
    data_dir = load_config(course).data_dir
    folder = base / f"cluster-{workers}"
    folder.mkdir()
    cluster = Cluster(folder, cluster_env(data_dir))
    try:
        cluster.start({f"w{i}": [] for i in range(workers)})
        config = copy_course(course, base / f"course-{workers}")
        expected = submit_batch(config, submissions)
        spent: list[float] = []
        started = time.perf_counter()
        grade(
            config, TINY, executor=_timed(dask_executor(cluster.address), spent), log=lambda _: None
        )
        wall = time.perf_counter() - started
        _graded(config, expected)
        tasks = [float(remote(config, s)["total_s"]) for s in expected]
        noop = _noop_latency(cluster.address)
    finally:
        cluster.close()
    return Row(f"dask x{workers}", workers, wall, spent[0], tasks, noop)


def run_local(base: Path, course: Path, submissions: int, workers: int) -> Row:
    config = copy_course(course, base / "course-local")
    expected = submit_batch(config, submissions)
    started = time.perf_counter()
    grade(config, TINY, workers=workers, log=lambda _: None)
    wall = time.perf_counter() - started
    _graded(config, expected)
    return Row(f"local pool x{workers}", workers, wall, wall, [0.0] * len(expected), None)


def table(rows: list[Row], submissions: int) -> str:
    base = next(r for r in rows if r.label.startswith("dask"))
    lines = [
        f"{submissions} tiny submissions, {os.cpu_count()} CPU core(s), load average at end "
        f"{os.getloadavg()[0]:.1f}",
        f"{'setup':<16}{'wall s':>9}{'subs/min':>10}{'vs x1':>8}{'task s':>9}"
        f"{'overhead/task s':>17}{'no-op rtt ms':>14}",
    ]
    for row in rows:
        task = f"{statistics.mean(row.task_s):.2f}" if row.noop_ms is not None else "-"
        overhead = f"{row.overhead_s:.2f}" if row.overhead_s is not None else "-"
        noop = f"{row.noop_ms:.1f}" if row.noop_ms is not None else "-"
        lines.append(
            f"{row.label:<16}{row.wall_s:>9.1f}{row.per_minute:>10.1f}"
            f"{row.per_minute / base.per_minute:>8.2f}{task:>9}{overhead:>17}{noop:>14}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--no-local", action="store_true", help="Skip the local-pool row.")
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    data_dir = load_config(ROOT).data_dir
    provision_mnist(data_dir)
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        base = Path(tmp)
        course = release_tiny(base / "released", data_dir).root
        rows = []
        for workers in args.workers:
            rows.append(run_cluster(base, course, args.submissions, workers))
            print(f"done: dask x{workers} in {rows[-1].wall_s:.1f} s", file=sys.stderr)
        if not args.no_local:
            rows.append(run_local(base, course, args.submissions, 2))
        shutil.rmtree(base / "released", ignore_errors=True)
    print(table(rows, args.submissions))


if __name__ == "__main__":
    main()
