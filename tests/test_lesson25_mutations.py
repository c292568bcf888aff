"""End to end on the real lesson: the solution and mutated notebooks run in the sandbox, the
lesson's checks score them, and each mutation loses exactly the points of the checks it breaks.

Minutes on a 2-core CPU (eight notebooks, most training two CNNs on MNIST): marked slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from tiny_course import ROOT

from autograder.checks.run import run_checks
from autograder.config import load_config
from autograder.grade import assignment_cells
from autograder.notebook import autograded_points
from autograder.runner.pool import run_many
from autograder.runner.run import RunRequest

pytestmark = pytest.mark.slow

Edit = Callable[[str], str]


def _replace(old: str, new: str) -> Edit:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)

    return edit


# mutation -> (cell id, edit, {check: expected outcome "failed"}, flags expected)
MUTATIONS: dict[str, tuple[str, Edit, set[str], bool]] = {
    "wrong_layer": (
        "cnn128_build",
        _replace(
            'Dense(64, activation="relu"),\n    Dense(10',
            'Dense(32, activation="relu"),\n    Dense(10',
        ),
        {"test_hidden::test_cnn128_layer_stack"},
        False,
    ),
    "missing_pooling": (
        "cnn128_build",
        _replace(
            '    Conv2D(128, (3, 3), activation="relu"),\n    MaxPooling2D((2, 2)),\n',
            '    Conv2D(128, (3, 3), activation="relu"),\n',
        ),
        {"test_hidden::test_cnn128_layer_stack"},
        False,
    ),
    "lstm_left_in_task2": (
        "gru_train",
        _replace("    GRU(64),", "    LSTM(64),"),
        {"test_visible::test_gru_replaces_lstm", "test_hidden::test_gru_mse_on_fresh_sequences"},
        False,
    ),
    "zero_epochs": (
        "cnn128_train",
        _replace("epochs=CNN_EPOCHS,", "epochs=0,"),
        {
            "test_visible::test_cnn128_trained_for_cnn_epochs",
            "test_hidden::test_cnn128_accuracy_measured",
            "test_visible::test_cnn128_plot_saved",  # plotting an empty history fails
            "test_hidden::test_cnn128_plot_shows_training",
        },
        False,
    ),
    "plot_not_saved": (
        "gru_plot",
        _replace('plt.savefig("gru_loss.png", dpi=100)\n', ""),
        {"test_visible::test_gru_plot_saved", "test_hidden::test_gru_plot_shows_training"},
        False,
    ),
    "blank_plot": (
        "gru_plot",
        _replace(
            'plt.savefig("gru_loss.png", dpi=100)\nplt.show()\n',
            'plt.show()\nplt.savefig("gru_loss.png", dpi=100)\n',
        ),
        {"test_hidden::test_gru_plot_shows_training"},
        False,
    ),
    "fabricated_history": (
        "cnn128_train",
        _replace(
            "    X_train, y_train,\n    epochs=CNN_EPOCHS,",
            "    X_train[:64], y_train[:64],\n    epochs=CNN_EPOCHS,",
        ),
        {"test_hidden::test_cnn128_accuracy_measured"},
        True,
    ),
}
FABRICATION = (
    '\ncnn128_history.history["accuracy"] = [0.97, 0.99]\n'
    'cnn128_history.history["val_accuracy"] = [0.98, 0.99]\n'
)


def _notebook(target: Path, cell_id: str | None, edit: Edit | None, extra: str = "") -> Path:
    nb = nbformat.read(ROOT / "source/lesson25/lesson25.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.id == cell_id and edit is not None:
            cell.source = edit(cell.source) + extra
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def test_solution_and_mutations(tmp_path: Path, mnist_mirror: Path) -> None:
    config = load_config(ROOT)
    _, cells = assignment_cells(config, "lesson25")
    points = autograded_points(cells)
    notebooks = {"solution": _notebook(tmp_path / "nb/solution/lesson25.ipynb", None, None)}
    for name, (cell_id, edit, _, _) in MUTATIONS.items():
        extra = FABRICATION if name == "fabricated_history" else ""
        notebooks[name] = _notebook(tmp_path / f"nb/{name}/lesson25.ipynb", cell_id, edit, extra)
    requests = [
        RunRequest(
            assignment="lesson25",
            notebook=path,
            out=tmp_path / "runs" / name,
            limits=config.limits,
            mnist_npz=mnist_mirror,
            release_notebook=ROOT / "release/lesson25/lesson25.ipynb",
            device_mode="cpu",
        )
        for name, path in notebooks.items()
    ]
    records = asyncio.run(run_many(requests, workers=2))
    for request, record in zip(requests, records, strict=True):
        assert record is not None, request.out
        # a test cell of the notebook may fail (cell-error); the run itself must complete
        assert record["status"] in ("ok", "cell-error"), (request.out, record["message"])
    checked = run_checks(
        ROOT / "grading_tests/lesson25",
        [r.out for r in requests],
        points,
        data_dir=mnist_mirror.parent,
    )
    full = sum(points.values())
    solution = checked[tmp_path / "runs/solution"]
    assert [r.check for r in solution.results if r.outcome != "passed"] == []
    assert sum(s.score for s in solution.scores.values()) == pytest.approx(full)

    weights = {(r.check, r.cell): r.weight for r in solution.results}
    cell_weight = {cell: sum(w for (_, c), w in weights.items() if c == cell) for cell in points}
    for name, (_, _, broken, flagged) in MUTATIONS.items():
        run = checked[tmp_path / "runs" / name]
        failed = {r.check for r in run.results if r.outcome == "failed"}
        assert failed == broken, name
        assert not run.grader_errors, (name, run.grader_errors)
        lost = sum(
            points[cell] * w / cell_weight[cell]
            for (check, cell), w in weights.items()
            if check in broken
        )
        score = sum(s.score for s in run.scores.values())
        assert score == pytest.approx(full - lost, abs=1e-3), name
        assert bool(run.flags) == flagged, (name, run.flags)
