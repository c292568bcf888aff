"""Shared fixtures: the real MNIST mirror, provisioned once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_data_dir() -> Path:
    """The course's dataset folder with a provisioned MNIST mirror (downloads once)."""
    from autograder.config import load_config
    from autograder.datasets import provision_mnist

    data_dir = load_config(ROOT).data_dir
    provision_mnist(data_dir)
    return data_dir


@pytest.fixture(scope="session")
def mnist_mirror(mnist_data_dir: Path) -> Path:
    """The mirror's ``mnist.npz``."""
    return mnist_data_dir / "mnist.npz"


@pytest.fixture
def tiny_course(tmp_path: Path, mnist_data_dir: Path) -> Path:
    """A tiny course (assignment ``tiny``) in ``tmp_path``, not released yet."""
    from tiny_course import make_course

    return make_course(tmp_path / "course", mnist_data_dir)


@pytest.fixture
def released_tiny_course(tiny_course: Path) -> Path:
    """The tiny course after ``autograder release tiny``."""
    from autograder.config import load_config
    from autograder.release import release

    release(load_config(tiny_course), "tiny", log=lambda _: None)
    return tiny_course
