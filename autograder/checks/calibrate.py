"""Calibration: run the solution notebook K times with different seeds, measure each
threshold's metric the way the hidden checks do, and propose thresholds with a stated margin.

Threshold keys name the model and the metric: ``<model>_accuracy_min`` (accuracy on the MNIST
test set) and ``<model>_mse_max`` (MSE on fresh sequences). The proposal and the measured
distribution are written to ``grading_tests/<assignment>/calibration.json``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autograder.checks.artifacts import Submission
from autograder.checks.data import accuracy, fresh_sequences, mean_baseline, mnist_test_set, mse
from autograder.config import CourseConfig
from autograder.datasets import provision_mnist
from autograder.errors import AutograderError
from autograder.release import source_notebooks
from autograder.runner.run import RunRequest, run_submission
from autograder.runner.sandbox import sandbox_problem

ACCURACY_MARGIN = 0.01  # threshold = worst calibrated accuracy minus one point, rounded down
MSE_FACTOR = 10.0  # threshold = ten times the worst calibrated MSE, rounded up
MSE_CEILING_SHARE = 0.1  # ... and never above a tenth of the predict-the-mean baseline
FIRST_SEED = 101


def calibration_file(config: CourseConfig, assignment: str) -> Path:
    return config.grading_tests_dir / assignment / "calibration.json"


def measure(run_dir: Path, keys: list[str], data_dir: Path) -> dict[str, float]:
    """Every threshold key's metric on one run folder, measured by the grader."""
    submission = Submission(run_dir)
    values: dict[str, float] = {}
    for key in keys:
        if key.endswith("_accuracy_min"):
            values[key] = accuracy(
                submission.model(key[: -len("_accuracy_min")]), mnist_test_set(data_dir)
            )
        elif key.endswith("_mse_max"):
            values[key] = mse(submission.model(key[: -len("_mse_max")]), fresh_sequences())
        else:
            raise AutograderError(f"threshold {key!r}: expected <model>_accuracy_min or _mse_max")
    return values


def propose(key: str, values: list[float]) -> float:
    """The threshold proposed for ``key`` from its calibrated values (rule above)."""
    if key.endswith("_accuracy_min"):
        return math.floor((min(values) - ACCURACY_MARGIN) * 1000) / 1000
    ceiling = mean_baseline(fresh_sequences()) * MSE_CEILING_SHARE
    raw = min(max(values) * MSE_FACTOR, ceiling)
    exponent = math.floor(math.log10(raw))
    return float(math.ceil(raw / 10**exponent) * 10**exponent)


def calibrate(
    config: CourseConfig, assignment: str, runs: int, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run, measure, propose and write; returns what was written."""
    if runs < 1:
        raise AutograderError("--runs must be at least 1")
    target = calibration_file(config, assignment)
    try:
        keys = sorted(json.loads(target.read_text("utf-8"))["thresholds"])
    except (OSError, ValueError, KeyError) as err:
        raise AutograderError(f"{target}: cannot read the threshold names: {err}") from err
    notebook = source_notebooks(config, assignment)[0]
    mnist_npz = provision_mnist(config.data_dir)
    measured: list[dict[str, Any]] = []
    for number in range(runs):
        seed = FIRST_SEED * (number + 1)
        out = config.state_dir / "calibrate" / assignment / f"seed-{seed}"
        record = run_submission(
            RunRequest(
                assignment=assignment,
                notebook=notebook,
                out=out,
                limits=config.limits,
                mnist_npz=mnist_npz,
                sandbox=sandbox_problem() is None,
                device_mode="cpu",
                seed=seed,
            )
        )
        if record["status"] != "ok":
            raise AutograderError(
                f"{notebook}: calibration run with seed {seed} ended with "
                f"{record['status']}: {record['message']}"
            )
        values = measure(out, keys, config.data_dir)
        measured.append({"seed": seed, "wall_s": record["wall_s"], **values})
        log(
            f"run {number + 1}/{runs} (seed {seed}, {record['wall_s']:.0f} s): "
            + ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        )
    distribution = {
        key: {
            "min": min(vs),
            "max": max(vs),
            "mean": statistics.fmean(vs),
            "stdev": statistics.stdev(vs) if len(vs) > 1 else 0.0,
        }
        for key in keys
        for vs in [[float(m[key]) for m in measured]]
    }
    thresholds = {key: propose(key, [float(m[key]) for m in measured]) for key in keys}
    result = {
        "thresholds": thresholds,
        "rule": {
            "accuracy": f"worst calibrated accuracy minus {ACCURACY_MARGIN}, rounded down",
            "mse": f"{MSE_FACTOR:g}x the worst calibrated MSE, rounded up, at most "
            f"{MSE_CEILING_SHARE:g} of the predict-the-mean MSE "
            f"({mean_baseline(fresh_sequences()):.2e})",
        },
        "runs": measured,
        "distribution": distribution,
        "calibrated": time.strftime("%Y-%m-%d"),
    }
    target.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return result
