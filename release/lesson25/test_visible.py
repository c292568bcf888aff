"""Lesson 25, visible checks: shown to students and shipped in the release for self-checking.

They only look at what the notebook left (names, layer types, epochs, saved files); the
grader's own measurements are in the hidden checks.
"""

from __future__ import annotations

import struct

import pytest

CNN_EPOCHS = 2
RNN_EPOCHS = 20


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def _epochs(history, name, metric, expected):
    got = len(history(name).get(metric, []))
    assert got == expected, f"`{name}` holds {got} epochs of '{metric}', expected {expected}"


def _png(saved_file, name):
    path = saved_file(name)
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"`{name}` is not a PNG image"
    width, height = struct.unpack(">II", head[16:24])
    assert width >= 200 and height >= 150, f"`{name}` is only {width}x{height} pixels"


@pytest.mark.check(cell="test_cnn_architecture", weight=1, visible=True)
def test_cnn_outputs_ten_classes(model):
    cnn = model("cnn_model")
    assert tuple(cnn.output_shape) == (None, 10), (
        f"`cnn_model` must output (None, 10), found {cnn.output_shape}"
    )


@pytest.mark.check(cell="test_cnn_training", weight=1, visible=True)
def test_cnn_trained_for_cnn_epochs(history):
    _epochs(history, "cnn_history", "val_accuracy", CNN_EPOCHS)


@pytest.mark.check(cell="test_lstm", weight=2, visible=True)
def test_lstm_is_lstm(model):
    kinds = _kinds(model("lstm_model"))
    assert "LSTM" in kinds, f"`lstm_model` needs an LSTM layer, found {kinds}"


@pytest.mark.check(cell="test_lstm", weight=1, visible=True)
def test_lstm_trained_for_rnn_epochs(history):
    _epochs(history, "lstm_history", "val_loss", RNN_EPOCHS)


@pytest.mark.check(cell="test_cnn128_architecture", weight=1, visible=True)
def test_cnn128_has_conv128(model):
    layers = model("cnn128_model").layers
    assert any(type(layer).__name__ == "Conv2D" and layer.filters == 128 for layer in layers), (
        "`cnn128_model` needs a Conv2D(128, (3, 3)) layer"
    )


@pytest.mark.check(cell="test_cnn128_training", weight=1, visible=True)
def test_cnn128_trained_for_cnn_epochs(history):
    _epochs(history, "cnn128_history", "val_accuracy", CNN_EPOCHS)


@pytest.mark.check(cell="test_cnn128_plot", weight=1, visible=True)
def test_cnn128_plot_saved(saved_file):
    _png(saved_file, "cnn128_accuracy.png")


@pytest.mark.check(cell="test_gru", weight=2, visible=True)
def test_gru_replaces_lstm(model):
    kinds = _kinds(model("gru_model"))
    assert "GRU" in kinds, f"`gru_model` needs a GRU layer, found {kinds}"
    assert "LSTM" not in kinds, "`gru_model` still has an LSTM layer: replace it with GRU"


@pytest.mark.check(cell="test_gru", weight=1, visible=True)
def test_gru_trained_for_rnn_epochs(history):
    _epochs(history, "gru_history", "val_loss", RNN_EPOCHS)


@pytest.mark.check(cell="test_gru_plot", weight=1, visible=True)
def test_gru_plot_saved(saved_file):
    _png(saved_file, "gru_loss.png")
