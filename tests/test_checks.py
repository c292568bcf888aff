"""The check plugin (with pytester), the scoring rule, layer tables and plot checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autograder.checks.artifacts import CheckFailed
from autograder.checks.layers import LayerRow, compare_stacks, layer_table
from autograder.checks.plots import check_plot_image, find_curves
from autograder.checks.scoring import CheckResult, score_cells
from autograder.runner.record import write_record

pytest_plugins = ["pytester"]


def _result(cell: str, weight: float, outcome: str) -> CheckResult:
    return CheckResult("m::t", cell, weight, True, outcome)


def test_score_is_points_times_weighted_share_of_passed_checks() -> None:
    results = [_result("a", 1, "passed"), _result("a", 3, "failed"), _result("b", 2, "passed")]
    scores = score_cells(results, {"a": 2.0, "b": 3.0, "c": 1.0})
    assert scores["a"].score == pytest.approx(0.5)
    assert scores["b"].score == pytest.approx(3.0)
    assert scores["c"].score == 0.0 and scores["c"].passed == 0


def test_grader_errors_never_count_against_the_student() -> None:
    results = [_result("a", 1, "passed"), _result("a", 5, "error")]
    score = score_cells(results, {"a": 2.0})["a"]
    assert score.score == pytest.approx(2.0)
    assert score.needs_human and score.errors == 1
    only_errors = score_cells([_result("a", 1, "error")], {"a": 2.0})["a"]
    assert only_errors.score == 0.0 and only_errors.needs_human


def _run_folder(root: Path, name: str, *, history: list[float] | None, saved: bool) -> Path:
    folder = root / name
    (folder / "artifacts/histories").mkdir(parents=True)
    (folder / "artifacts/files").mkdir(parents=True)
    record = {
        "schema": "autograder.run/1",
        "assignment": "a",
        "notebook": "a.ipynb",
        "notebook_sha256": "",
        "status": "ok",
        "message": "",
        "failed_cell": None,
        "errors": [],
        "wall_s": 1.0,
        "peak_memory_mb": 1.0,
        "device": {"kind": "cpu", "name": "CPU"},
        "sandbox": {"kind": "bwrap", "limits": "cgroup"},
        "limits": {},
        "versions": {},
        "seed": None,
        "restore": None,
        "cells": [],
        "artifacts": {"models": [], "histories": [], "figures": [], "files": []},
        "leftover_processes": 0,
        "started": "",
        "finished": "",
    }
    if history is not None:
        path = folder / "artifacts/histories/h.json"
        path.write_text(json.dumps({"history": {"loss": history}, "epoch": [], "params": {}}))
        record["artifacts"]["histories"].append(
            {"key": "h", "names": ["h"], "cell": 1, "file": "histories/h.json"}
        )
    if saved:
        (folder / "artifacts/files/plot.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
        record["artifacts"]["files"].append({"path": "plot.png", "bytes": 12, "png": True})
    write_record(record, folder / "run.json")
    return folder


CHECKS = """
import pytest

@pytest.mark.check(cell="fit", weight=2, visible=True)
def test_epochs(history):
    got = len(history("h")["loss"])
    assert got == 3, f"`h` holds {got} epochs, expected 3"

@pytest.mark.check(cell="fit", weight=1)
def test_loss_falls(history, flag):
    loss = history("h")["loss"]
    if loss[-1] > 0.5:
        flag("loss stays high")
    assert loss[-1] < loss[0]

@pytest.mark.check(cell="plot", weight=1, visible=True)
def test_plot_saved(saved_file):
    saved_file("plot.png")

@pytest.mark.check(cell="plot", weight=1)
def test_broken_check(run_record):
    return {}["missing"]
"""


def _verdicts(pytester: pytest.Pytester, *extra: str) -> dict[str, dict[str, dict[str, str]]]:
    good = _run_folder(pytester.path, "good", history=[1.0, 0.6, 0.2], saved=True)
    bad = _run_folder(pytester.path, "bad", history=None, saved=False)
    pytester.makepyfile(test_checks_lesson=CHECKS)
    out = pytester.path / "results.json"
    pytester.runpytest(
        "--ag-run",
        str(good),
        "--ag-run",
        str(bad),
        "--ag-results",
        str(out),
        "-p",
        "no:randomly",
        *extra,
    )
    raw = json.loads(out.read_text())
    return {
        Path(run).name: {r["check"].split("::")[1]: r for r in results}
        for run, results in raw.items()
    }


def test_plugin_verdicts_per_submission(pytester: pytest.Pytester) -> None:
    verdicts = _verdicts(pytester)
    good, bad = verdicts["good"], verdicts["bad"]
    assert {k: v["outcome"] for k, v in good.items()} == {
        "test_epochs": "passed",
        "test_loss_falls": "passed",
        "test_plot_saved": "passed",
        "test_broken_check": "error",
    }
    assert good["test_broken_check"]["message"].startswith("grader error: KeyError")
    assert good["test_epochs"]["cell"] == "fit" and good["test_epochs"]["weight"] == 2.0
    assert bad["test_epochs"]["outcome"] == "failed"
    assert "no training history (the result of fit) named `h`" in bad["test_epochs"]["message"]
    assert bad["test_plot_saved"]["message"] == "the notebook did not save the file `plot.png`"


def test_plugin_flags_and_actionable_messages(pytester: pytest.Pytester) -> None:
    bad_history = _run_folder(pytester.path, "flat", history=[0.9, 0.9], saved=True)
    pytester.makepyfile(test_checks_lesson=CHECKS)
    out = pytester.path / "r.json"
    pytester.runpytest("--ag-run", str(bad_history), "--ag-results", str(out))
    results = {r["check"].split("::")[1]: r for r in json.loads(out.read_text())[str(bad_history)]}
    assert results["test_epochs"]["message"] == "`h` holds 2 epochs, expected 3"
    assert results["test_loss_falls"]["flags"] == ["loss stays high"]
    assert results["test_loss_falls"]["outcome"] == "failed"


def test_visible_only_hides_hidden_checks(pytester: pytest.Pytester) -> None:
    verdicts = _verdicts(pytester, "--ag-visible-only")
    assert set(verdicts["good"]) == {"test_epochs", "test_plot_saved"}


def test_check_without_cell_is_a_usage_error(pytester: pytest.Pytester) -> None:
    run = _run_folder(pytester.path, "r", history=[1.0], saved=False)
    pytester.makepyfile(
        test_x="import pytest\n@pytest.mark.check(weight=1)\ndef test_a(run_record):\n    pass\n"
    )
    result = pytester.runpytest("--ag-run", str(run))
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*@pytest.mark.check needs cell=*"])


def test_layer_stack_difference_is_marked() -> None:
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, (3, 3), activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
        ]
    )
    rows = layer_table(model)
    assert rows[0] == LayerRow("Conv2D(4, 3x3, relu)", (None, 26, 26, 4), 40)
    expected = [rows[0], LayerRow("MaxPooling2D(2x2)", (None, 13, 13, 4), 0), *rows[1:]]
    with pytest.raises(CheckFailed) as err:
        compare_stacks(rows, expected, name="m")
    assert err.value.message == (
        "`m`: layer 2: expected MaxPooling2D(2x2) with output (None, 13, 13, 4), "
        "found Flatten() with output (None, 2704)"
    )
    tables = err.value.details["layer_tables"]
    assert tables["first_difference"] == 1 and len(tables["found"]) == 3
    compare_stacks(rows, rows, name="m")  # identical stacks pass


def _png(path: Path, pixels: np.ndarray) -> Path:
    from matplotlib import image

    image.imsave(path, pixels)
    return path


def test_plot_image_checks(tmp_path: Path) -> None:
    blank = _png(tmp_path / "blank.png", np.ones((300, 400, 3)))
    with pytest.raises(CheckFailed, match="blank"):
        check_plot_image(blank)
    tiny = _png(tmp_path / "tiny.png", np.zeros((20, 20, 3)))
    with pytest.raises(CheckFailed, match="only 20x20 pixels"):
        check_plot_image(tiny)
    drawn = np.ones((300, 400, 3))
    drawn[100:110, 50:350] = 0.0
    check_plot_image(_png(tmp_path / "ok.png", drawn))
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(CheckFailed, match="cannot be read as a PNG"):
        check_plot_image(tmp_path / "junk.png")


def _figure(lines: list[list[float]], *, title: str = "t", legend: int = 2) -> dict:
    axes = {
        "title": title,
        "xlabel": "epoch",
        "ylabel": "loss",
        "legend": ["a", "b"][:legend],
        "lines": [{"label": str(i), "x": list(range(len(y))), "y": y} for i, y in enumerate(lines)],
    }
    return {"suptitle": "", "axes": [axes]}


def test_curves_must_match_the_history_point_by_point() -> None:
    history = {"loss": [0.5, 0.3], "val_loss": [0.6, 0.4]}
    find_curves([_figure([[0.5, 0.3], [0.6, 0.4]])], history, ("loss", "val_loss"), what="p")
    with pytest.raises(CheckFailed, match="lacks the val_loss curve"):
        find_curves([_figure([[0.5, 0.3], [0.1, 0.1]])], history, ("loss", "val_loss"), what="p")
    with pytest.raises(CheckFailed, match="needs a title"):
        find_curves(
            [_figure([[0.5, 0.3], [0.6, 0.4]], title="")], history, ("loss", "val_loss"), what="p"
        )
    with pytest.raises(CheckFailed, match="no figure plots"):
        find_curves([], history, ("loss", "val_loss"), what="p")
