"""Throughput of `autograder grade` against `nbgrader autograde` on the same 20 small
submissions (a benchmark that prints ratios, not a test).

    .venv/bin/python benchmarks/bench_grade.py [--submissions 20] [--workers 2]

Both grade a copy of the tiny test course: ours runs each notebook in the bubblewrap sandbox
(a pool of workers), checks the batch in one pytest session and records into nbgrader's
gradebook; nbgrader autograde executes them one after another, unsandboxed, with its own
preprocessors and gradebook writes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from tiny_course import make_course, submit  # noqa: E402

from autograder.config import load_config  # noqa: E402
from autograder.datasets import provision_mnist  # noqa: E402
from autograder.grade import grade  # noqa: E402
from autograder.release import release  # noqa: E402


def _course(base: Path, submissions: int) -> Path:
    data_dir = load_config(ROOT).data_dir
    provision_mnist(data_dir)
    course = make_course(base, data_dir)
    release(load_config(course), "tiny", log=lambda _: None)
    for i in range(submissions):
        submit(course, f"s{i:02d}", "42" if i % 3 else "41")
    return course


def _nbgrader(course: Path) -> float:
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    command = [
        str(bindir / "nbgrader"),
        "autograde",
        "tiny",
        "--force",
        f"--CourseDirectory.root={course}",
        "--CourseDirectory.course_id=tiny-course",
        f"--CourseDirectory.db_url=sqlite:///{course}/gradebook/gradebook.db",
        "--Autograde.create_student=True",
        "--log-level=ERROR",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=course)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"nbgrader autograde failed:\n{done.stdout}\n{done.stderr}")
    graded = list(course.glob("autograded/*/tiny/tiny.ipynb"))
    assert len(graded) == len(list(course.glob("submitted/*/tiny"))), graded
    return elapsed


def _ours(course: Path, workers: int) -> float:
    config = load_config(course)
    started = time.perf_counter()
    summary = grade(config, "tiny", workers=workers, log=lambda _: None)
    elapsed = time.perf_counter() - started
    assert len(summary.graded) == len(list((course / "submitted").glob("*/tiny"))), summary
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    args = parser.parse_args()
    rounds = []
    for number in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
            base = _course(Path(tmp) / "ours", args.submissions)
            theirs = Path(tmp) / "nbgrader"
            shutil.copytree(base, theirs)
            ours, nbgrader = _ours(base, args.workers), _nbgrader(theirs)
        rounds.append((nbgrader / ours, ours, nbgrader))
        print(
            f"round {number + 1}: autograder {ours:.1f} s, nbgrader {nbgrader:.1f} s, "
            f"ratio {nbgrader / ours:.2f}x"
        )
    _, ours_s, nbgrader_s = sorted(rounds)[len(rounds) // 2]
    n = args.submissions
    print(f"{'grader':<28}{'wall s':>9}{'per submission s':>18}{'submissions/min':>17}")
    for name, seconds in (
        ("nbgrader autograde", nbgrader_s),
        (f"autograder grade ({args.workers} workers)", ours_s),
    ):
        print(f"{name:<28}{seconds:>9.1f}{seconds / n:>18.2f}{60 * n / seconds:>17.1f}")
    print(
        f"median throughput ratio (autograder / nbgrader): {nbgrader_s / ours_s:.2f}x (goal >= 3x)"
    )


if __name__ == "__main__":
    main()
