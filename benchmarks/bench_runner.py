"""Benchmark: what the sandboxed runner costs over plain notebook execution.

The same notebooks run (a) with ``jupyter nbconvert --to notebook --execute``, unsandboxed,
and (b) through the runner (bubblewrap sandbox, cgroup limits, watchdog, harvest). Both start
the project kernel (``python -m autograder.kernel``): for nbconvert through a kernelspec made
in a temporary ``JUPYTER_PATH`` whose environment names the MNIST mirror, exactly as the
runner's kernel gets it. Both are timed as fresh processes, wall clock, so interpreter start-up
counts on both sides.

- ``N`` tiny notebooks (default 5): per-notebook overhead of the runner, target <= 1.5 s. The
  runner side is one ``run_submission`` per process, without a release to restore from.
- ``--solution``: the lesson's solution notebook (``source/lesson25``), once each: the runner
  side is the real grading path, ``autograder run lesson25 NOTEBOOK``, which also restores the
  instructor's cells from the release. Target: runner wall time <= 1.10x plain execution.

A second row for the tiny notebooks isolates the runner's own cost from the two drivers'
start-up (nbconvert imports more than the runner does): inside the runner's process, the same
notebook is executed by plain ``nbclient`` with the project kernel, then by ``run_submission``.

Usage: ``python benchmarks/bench_runner.py [--solution] [-n N]``. Prints a table of times
and ratios; it asserts nothing (timings on a shared machine are noisy: see the load line).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "source" / "lesson25" / "lesson25.ipynb"
MNIST = ROOT / ".cache" / "datasets" / "mnist.npz"
KERNEL_NAME = "autograder-bench"
TINY_TARGET_S = 1.5
SOLUTION_TARGET = 1.10

TINY_CELLS = (
    "import math\nprint('hello from a tiny notebook')",
    "values = [math.sqrt(i) for i in range(10_000)]\nsum(values)",
    "import json\nprint(json.dumps({'cells': 3}))",
)


def make_kernelspec(jupyter_path: Path) -> None:
    """A kernelspec for the project kernel, as the runner starts it (minus the sandbox)."""
    from autograder.kernel.manager import kernel_command, kernel_env

    spec_dir = jupyter_path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": kernel_command(),
        "display_name": "autograder project kernel (benchmark)",
        "language": "python",
        "env": kernel_env(MNIST if MNIST.is_file() else None),
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))


def run_timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-2000:]}\n"
            f"{done.stderr[-4000:]}"
        )
    return elapsed


def plain(notebook: Path, work: Path, env: dict[str, str]) -> float:
    """(a) nbconvert on a copy of the notebook (it writes its files next to the notebook)."""
    folder = work / f"plain-{notebook.stem}-{time.monotonic_ns()}"
    folder.mkdir()
    copy = folder / notebook.name
    shutil.copyfile(notebook, copy)
    argv = [
        sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
        f"--ExecutePreprocessor.kernel_name={KERNEL_NAME}",
        "--ExecutePreprocessor.timeout=1800",
        "--output", f"{notebook.stem}.executed.ipynb", "--output-dir", str(folder), str(copy),
    ]  # fmt: skip
    return run_timed(argv, env, folder)


def runner_one(notebook: Path, work: Path, env: dict[str, str]) -> float:
    """(b) one ``run_submission`` in a fresh process, no restore (tiny notebooks)."""
    out = work / f"runner-{notebook.stem}-{time.monotonic_ns()}"
    return run_timed([sys.executable, __file__, "--run-one", str(notebook), str(out)], env, work)


def in_process(notebook: Path, work: Path, env: dict[str, str]) -> tuple[float, float]:
    """Plain nbclient and ``run_submission``, timed inside one fresh process."""
    out = work / f"inproc-{notebook.stem}-{time.monotonic_ns()}"
    argv = [sys.executable, __file__, "--run-one", str(notebook), str(out), "--also-nbclient"]
    done = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"runner failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    inside = json.loads(line[len("BENCH ") :])
    return inside["nbclient_s"], inside["runner_s"]


def runner_cli(notebook: Path, work: Path, env: dict[str, str]) -> float:
    """(b) the grading path: ``autograder run lesson25 NOTEBOOK`` (restores from release)."""
    out = work / f"runner-{notebook.stem}-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "autograder.cli", "run", "--course", str(ROOT), "lesson25",
            str(notebook), "--out", str(out)]  # fmt: skip
    elapsed = run_timed(argv, env, work)
    record = json.loads((out / "run.json").read_text())
    if record["status"] != "ok":
        print(f"  note: the runner's status was {record['status']}: {record['message']}")
    return elapsed


def run_one(notebook: Path, out: Path, *, also_nbclient: bool) -> None:
    """Body of ``--run-one``: run a tiny notebook through the runner (course limits); with
    ``also_nbclient`` first execute it with plain nbclient (project kernel, no sandbox) and
    print both times."""
    from nbclient import NotebookClient

    from autograder.config import load_config
    from autograder.kernel.manager import ProjectKernelManager
    from autograder.runner.run import RunRequest, run_submission

    nbclient_s = 0.0
    if also_nbclient:
        with tempfile.TemporaryDirectory(prefix="bench-nbclient-") as scratch:
            started = time.perf_counter()
            nb = nbformat.read(notebook, as_version=4)
            km = ProjectKernelManager()
            NotebookClient(
                nb, km=km, timeout=600, resources={"metadata": {"path": scratch}}
            ).execute()
            nbformat.write(nb, Path(scratch) / notebook.name)
            nbclient_s = time.perf_counter() - started

    started = time.perf_counter()
    record = run_submission(
        RunRequest(
            assignment="lesson25",
            notebook=notebook,
            out=out,
            limits=load_config(ROOT).limits,
            mnist_npz=MNIST if MNIST.is_file() else None,
        )
    )
    runner_s = time.perf_counter() - started
    if record["status"] != "ok":
        raise SystemExit(f"{notebook}: {record['status']}: {record['message']}")
    if also_nbclient:
        print("BENCH " + json.dumps({"nbclient_s": nbclient_s, "runner_s": runner_s}))


def tiny_notebooks(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nb.cells = [nbformat.v4.new_code_cell(src) for src in TINY_CELLS]
        path = folder / f"tiny{i}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def row(name: str, a: float, b: float, target: str, ok: bool) -> str:
    return (
        f"{name:<26} {a:>9.2f} {b:>10.2f} {b - a:>+12.2f} {b / a:>7.2f}x  "
        f"{target:<18} {'yes' if ok else 'NO'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solution", action="store_true", help="also time the solution")
    parser.add_argument("-n", type=int, default=5, help="tiny notebooks (default 5)")
    parser.add_argument("--run-one", nargs=2, metavar=("NOTEBOOK", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--also-nbclient", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(Path(args.run_one[0]), Path(args.run_one[1]), also_nbclient=args.also_nbclient)
        return

    from autograder.runner.sandbox import sandbox_problem

    problem = sandbox_problem()
    if problem:
        raise SystemExit(f"the runner cannot sandbox here: {problem}")
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        work = Path(tmp)
        jupyter_path = work / "jupyter"
        make_kernelspec(jupyter_path)
        env = {**os.environ, "JUPYTER_PATH": str(jupyter_path)}
        if MNIST.is_file():
            env["AUTOGRADER_MNIST_NPZ"] = str(MNIST)
        notebooks = tiny_notebooks(work, args.n)

        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        # warm-up (page cache, byte-code): one of each, not counted
        plain(notebooks[0], work, env)
        runner_one(notebooks[0], work, env)
        plains: list[float] = []
        runners: list[float] = []
        inside: list[tuple[float, float]] = []
        for i, notebook in enumerate(notebooks):
            # alternate which side goes first, so drift in machine load hits both
            if i % 2 == 0:
                plains.append(plain(notebook, work, env))
                runners.append(runner_one(notebook, work, env))
            else:
                runners.append(runner_one(notebook, work, env))
                plains.append(plain(notebook, work, env))
            inside.append(in_process(notebook, work, env))
            print(
                f"  {notebook.name}: nbconvert {plains[-1]:.2f} s, runner {runners[-1]:.2f} s; "
                f"in one process: nbclient {inside[-1][0]:.2f} s, "
                f"run_submission {inside[-1][1]:.2f} s"
            )
        overheads = [b - a for a, b in zip(plains, runners, strict=True)]
        inner = [b - a for a, b in inside]

        solution: tuple[float, float] | None = None
        if args.solution:
            print(f"  solution notebook {SOLUTION.relative_to(ROOT)} (once each) ...")
            a = plain(SOLUTION, work, env)
            print(f"  plain: {a:.1f} s")
            b = runner_cli(SOLUTION, work, env)
            print(f"  runner: {b:.1f} s")
            solution = (a, b)

        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print()
        print(
            f"{'':<26} {'plain (s)':>9} {'runner (s)':>10} {'overhead (s)':>12} {'ratio':>8}  "
            f"{'target':<18} met"
        )
        a_med, b_med = statistics.median(plains), statistics.median(runners)
        over = statistics.median(overheads)
        print(
            row(f"tiny x{len(notebooks)}: processes", a_med, b_med,
                f"<= {TINY_TARGET_S} s overhead", over <= TINY_TARGET_S)
        )  # fmt: skip
        a_in = statistics.median(a for a, _ in inside)
        b_in = statistics.median(b for _, b in inside)
        print(
            row(f"tiny x{len(notebooks)}: in-process", a_in, b_in,
                f"<= {TINY_TARGET_S} s overhead", statistics.median(inner) <= TINY_TARGET_S)
        )  # fmt: skip
        print(
            f"{'':<26} per-notebook overhead (median of each): processes {over:+.2f} s "
            f"(min {min(overheads):+.2f}, max {max(overheads):+.2f}); in-process "
            f"{statistics.median(inner):+.2f} s (min {min(inner):+.2f}, max {max(inner):+.2f})"
        )
        if solution is not None:
            a, b = solution
            print(
                row("solution notebook", a, b, f"<= {SOLUTION_TARGET:.2f}x",
                    b / a <= SOLUTION_TARGET)
            )  # fmt: skip


if __name__ == "__main__":
    main()
