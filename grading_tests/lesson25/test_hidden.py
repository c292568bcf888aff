"""Lesson 25, hidden checks: the grader's own measurements. Never released.

Accuracy is re-measured on the MNIST test set, recurrent models on fresh sequences drawn with
the grader's seed; thresholds come from calibration (``calibration.json`` beside this file,
written by ``autograder calibrate lesson25``). Claims in the student's history that disagree
with the measurement by more than 2 points are flagged for a human.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.checks.data import accuracy, mse
from autograder.checks.layers import LayerRow, compare_stacks, layer_table
from autograder.checks.plots import check_plot_image, find_curves

CALIBRATION = json.loads((Path(__file__).with_name("calibration.json")).read_text("utf-8"))
THRESHOLDS = CALIBRATION["thresholds"]
CLAIM_GAP = 0.02

CONV_BLOCKS = [
    LayerRow("Conv2D(32, 3x3, relu)", (None, 26, 26, 32), 320),
    LayerRow("MaxPooling2D(2x2)", (None, 13, 13, 32), 0),
    LayerRow("Conv2D(64, 3x3, relu)", (None, 11, 11, 64), 18496),
    LayerRow("MaxPooling2D(2x2)", (None, 5, 5, 64), 0),
]
CNN_STACK = [
    *CONV_BLOCKS,
    LayerRow("Flatten()", (None, 1600), 0),
    LayerRow("Dense(64, relu)", (None, 64), 102464),
    LayerRow("Dense(10, softmax)", (None, 10), 650),
]
CNN128_STACK = [
    *CONV_BLOCKS,
    LayerRow("Conv2D(128, 3x3, relu)", (None, 3, 3, 128), 73856),
    LayerRow("MaxPooling2D(2x2)", (None, 1, 1, 128), 0),
    LayerRow("Flatten()", (None, 128), 0),
    LayerRow("Dense(64, relu)", (None, 64), 8256),
    LayerRow("Dense(10, softmax)", (None, 10), 650),
]
LSTM_STACK = [LayerRow("LSTM(64)", (None, 64), 16896), LayerRow("Dense(1)", (None, 1), 65)]
GRU_STACK = [LayerRow("GRU(64)", (None, 64), 12864), LayerRow("Dense(1)", (None, 1), 65)]


def _measured_accuracy(name, history_name, model, history, mnist_test, flag, metric):
    measured = accuracy(model(name), mnist_test)
    claimed = history(history_name).get("val_accuracy", [])
    minimum = THRESHOLDS[f"{name}_accuracy_min"]
    metric(f"{name} test accuracy", measured, claimed[-1] if claimed else None, f">= {minimum:.3f}")
    if claimed and abs(claimed[-1] - measured) > CLAIM_GAP:
        flag(
            f"`{history_name}` claims val_accuracy {claimed[-1]:.4f}, the grader measured "
            f"{measured:.4f} on the MNIST test set"
        )
    assert measured >= minimum, (
        f"`{name}` reaches accuracy {measured:.4f} on the MNIST test set (measured by the "
        f"grader); at least {minimum:.3f} is required"
    )


def _recurrent(kind, stack, model, history, fresh_sequences, metric):
    """The recurrent model's layers, then its MSE on fresh sequences against the threshold."""
    name = f"{kind}_model"
    compare_stacks(layer_table(model(name)), stack, name=name)
    error = mse(model(name), fresh_sequences)
    limit = THRESHOLDS[f"{name}_mse_max"]
    claimed = history(f"{kind}_history").get("val_loss", [])
    metric(
        f"{name} MSE on new sequences", error, claimed[-1] if claimed else None, f"<= {limit:.1e}"
    )
    assert error <= limit, (
        f"`{name}` has MSE {error:.2e} on new sequences (measured by the grader); at most "
        f"{limit:.1e} is required (predicting the mean gives about 8.3e-03)"
    )


@pytest.mark.check(cell="test_cnn_architecture", weight=2)
def test_cnn_layer_stack(model):
    compare_stacks(layer_table(model("cnn_model")), CNN_STACK, name="cnn_model")


@pytest.mark.check(cell="test_cnn_training", weight=2)
def test_cnn_accuracy_measured(model, history, mnist_test, flag, metric):
    _measured_accuracy("cnn_model", "cnn_history", model, history, mnist_test, flag, metric)


@pytest.mark.check(cell="test_lstm", weight=2)
def test_lstm_mse_on_fresh_sequences(model, history, fresh_sequences, metric):
    _recurrent("lstm", LSTM_STACK, model, history, fresh_sequences, metric)


@pytest.mark.check(cell="test_cnn128_architecture", weight=2)
def test_cnn128_layer_stack(model):
    compare_stacks(layer_table(model("cnn128_model")), CNN128_STACK, name="cnn128_model")


@pytest.mark.check(cell="test_cnn128_training", weight=2)
def test_cnn128_accuracy_measured(model, history, mnist_test, flag, metric):
    _measured_accuracy("cnn128_model", "cnn128_history", model, history, mnist_test, flag, metric)


@pytest.mark.check(cell="test_cnn128_plot", weight=1)
def test_cnn128_plot_shows_training(saved_file, figures, history):
    check_plot_image(saved_file("cnn128_accuracy.png"))
    find_curves(
        figures,
        history("cnn128_history"),
        ("accuracy", "val_accuracy"),
        what="the accuracy plot of `cnn128_history`",
    )


@pytest.mark.check(cell="test_gru", weight=2)
def test_gru_mse_on_fresh_sequences(model, history, fresh_sequences, metric):
    _recurrent("gru", GRU_STACK, model, history, fresh_sequences, metric)


@pytest.mark.check(cell="test_gru_plot", weight=1)
def test_gru_plot_shows_training(saved_file, figures, history):
    check_plot_image(saved_file("gru_loss.png"))
    find_curves(
        figures, history("gru_history"), ("loss", "val_loss"), what="the loss plot of `gru_history`"
    )
