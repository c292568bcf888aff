"""Grader-side data: the MNIST test set as the released notebook preprocesses it, and fresh
sequences for the recurrent models drawn with the grader's own seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GRADER_SEED = 20_251_225
TIMESTEPS = 10


def mnist_test_set(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Test images as float32 / 255 shaped (N, 28, 28, 1) and one-hot labels."""
    from autograder.datasets import load_mnist

    _, (x_test, y_test) = load_mnist(data_dir)
    x = x_test.reshape((-1, 28, 28, 1)).astype("float32") / 255.0
    return x, np.eye(10, dtype="float32")[y_test]


def fresh_sequences(seed: int = GRADER_SEED, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``count`` new sequences of the lesson's task: 10 steps in [0, 1), target = their mean."""
    x = np.random.default_rng(seed).random((count, TIMESTEPS, 1)).astype("float32")
    return x, x.mean(axis=(1, 2))


def accuracy(model: object, data: tuple[np.ndarray, np.ndarray]) -> float:
    """Share of test images whose predicted class is the true one."""
    x, y = data
    probabilities = model.predict(x, batch_size=1000, verbose=0)  # type: ignore[attr-defined]
    return float(np.mean(np.argmax(probabilities, axis=1) == np.argmax(y, axis=1)))


def mse(model: object, data: tuple[np.ndarray, np.ndarray]) -> float:
    """Mean squared error of the model's predictions."""
    x, y = data
    predicted = model.predict(x, batch_size=1000, verbose=0).reshape(-1)  # type: ignore[attr-defined]
    return float(np.mean((predicted - y) ** 2))


def mean_baseline(data: tuple[np.ndarray, np.ndarray]) -> float:
    """MSE of always predicting the targets' mean (the bar a model must clear by far)."""
    _, y = data
    return float(np.mean((y - y.mean()) ** 2))
