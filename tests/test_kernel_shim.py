"""The kernel-side MNIST shim: load_data() served from the mirror, with no network at all.

"No network" is real: the processes run in a fresh network namespace (``unshare --net``,
which needs root), where only a downed loopback exists. The project kernel talks to
nbclient over unix sockets (``transport="ipc"``), which cross network namespaces.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from traitlets import default
from traitlets.config import Config

from autograder.datasets import load_mnist
from autograder.kernel.manager import ProjectKernelManager, kernel_env
from autograder.kernel.shim import MNIST_ENV

NO_NETWORK = ["unshare", "--net", "--"]


def _can_unshare() -> bool:
    try:
        return (
            subprocess.run([*NO_NETWORK, "true"], capture_output=True, check=False).returncode == 0
        )
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _can_unshare(), reason="needs `unshare --net` (root) to cut the network"
)


class OfflineKernelManager(ProjectKernelManager):
    """The project kernel in its own network namespace, connected through unix sockets.

    Set ``ip`` to an absolute path: the ipc default, ``kernel-ipc``, is relative to the
    current directory, which differs between nbclient and a kernel started in another one.
    """

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [*NO_NETWORK, *super().format_kernel_cmd(extra_arguments)]


def _run_python(code: str, tmp_path: Path, env: dict[str, str], *, offline: bool) -> str:
    """Run ``code`` in a plain Python subprocess with no Keras cache; its stdout."""
    full_env = {**os.environ, "HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / "keras")}
    full_env.pop(MNIST_ENV, None)
    full_env.update(env)
    result = subprocess.run(
        [*(NO_NETWORK if offline else []), sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_plain_python_is_not_patched(tmp_path: Path, mnist_mirror: Path) -> None:
    out = _run_python(
        """
        import sys
        import keras.src.datasets.mnist as m
        import keras.src.utils.file_utils as f
        assert m.get_file is f.get_file, m.get_file
        assert not hasattr(m.get_file, "__wrapped__")
        assert not any("autograder" in type(x).__module__ for x in sys.meta_path)
        assert "autograder.kernel.shim" not in sys.modules
        print("UNPATCHED")
        """,
        tmp_path,
        # Even with the variable set, a process that did not install the shim is untouched.
        {MNIST_ENV: str(mnist_mirror)},
        offline=False,
    )
    assert out.strip() == "UNPATCHED"


def test_install_serves_mirror_and_delegates(tmp_path: Path, mnist_mirror: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("not mnist")
    out = _run_python(
        f"""
        import sys
        import keras.src.datasets.mnist as early  # imported before install: patched in place
        from autograder.kernel import shim
        shim.install()
        shim.install()
        assert sum(isinstance(x, shim.MnistShimFinder) for x in sys.meta_path) == 1
        assert early.get_file.__wrapped__ is early.get_file.__wrapped__
        import keras.src.utils.file_utils as f
        assert early.get_file.__wrapped__ is f.get_file

        # A fresh import goes through the finder.
        del sys.modules["keras.src.datasets.mnist"]
        import keras.src.datasets.mnist as m
        assert m is not early and m.get_file.__wrapped__ is f.get_file
        assert type(m.__loader__).__name__ == "_PatchingLoader"
        assert m.__loader__.get_filename(m.__name__).endswith("mnist.py")

        from keras.datasets import mnist
        (x, y), (xt, yt) = mnist.load_data()
        print("MNIST", x.shape, x.dtype, xt.shape, xt.dtype)
        assert m.get_file(origin="https://example.org/mnist.npz") == {str(mnist_mirror)!r}

        # Any other origin goes to Keras' own get_file (a file:// URL needs no network).
        got = m.get_file("other.txt", origin="file://{other}", cache_dir={str(tmp_path)!r})
        print("OTHER", open(got).read())
        """,
        tmp_path,
        {MNIST_ENV: str(mnist_mirror)},
        offline=True,
    )
    assert "MNIST (60000, 28, 28) uint8 (10000, 28, 28) uint8" in out
    assert "OTHER not mnist" in out


def test_unprovisioned_mirror_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "mnist.npz"
    out = _run_python(
        f"""
        import os
        from autograder.kernel import shim
        shim.install()
        import keras
        for value in (None, {str(missing)!r}):
            if value is not None:
                os.environ[shim.MNIST_ENV] = value
            try:
                keras.datasets.mnist.load_data()
            except RuntimeError as err:
                print(err)
            else:
                raise AssertionError("load_data() worked with no mirror and no network")
        """,
        tmp_path,
        {},
        offline=True,
    )
    # Keras' own "Downloading data from ..." lines come first: the download is still tried.
    unset, absent = [line for line in out.splitlines() if line.startswith("MNIST cannot")]
    for message in (unset, absent):
        assert "the offline dataset mirror is not provisioned" in message
        assert "run `autograder datasets`" in message
        assert "download failed" in message
    assert f"${MNIST_ENV} is not set" in unset
    assert f"{missing} does not exist" in absent


KERNEL_CELLS = [
    """
    import socket
    try:
        socket.create_connection(("1.1.1.1", 80), timeout=2)
    except OSError as err:
        print("NETWORK-DOWN", type(err).__name__)
    else:
        raise AssertionError("the network is reachable")
    """,
    """
    import hashlib
    def report(tag, data):
        (x, y), (xt, yt) = data
        digest = hashlib.sha256(x.tobytes() + y.tobytes() + xt.tobytes() + yt.tobytes())
        print(tag, x.shape, x.dtype, y.shape, xt.shape, xt.dtype, yt.shape, digest.hexdigest())
    """,
    """
    import keras
    report("KERAS", keras.datasets.mnist.load_data())
    """,
    """
    import tensorflow as tf
    report("TF", tf.keras.datasets.mnist.load_data())
    """,
    """
    from tensorflow.keras.datasets import mnist
    report("TF-IMPORT", mnist.load_data())
    """,
]


def test_project_kernel_loads_mnist_offline(tmp_path: Path, mnist_data_dir: Path) -> None:
    mirror = mnist_data_dir / "mnist.npz"
    (x, y), (xt, yt) = load_mnist(mnist_data_dir)
    digest = hashlib.sha256(x.tobytes() + y.tobytes() + xt.tobytes() + yt.tobytes()).hexdigest()

    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        cells=[nbformat.v4.new_code_cell(textwrap.dedent(src)) for src in KERNEL_CELLS],
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "KERAS_HOME": str(home / ".keras"),
        **kernel_env(mirror),
    }
    # The kernel runs in tmp_path; an absolute socket prefix keeps both ends on one path.
    config = Config()
    config.OfflineKernelManager.ip = str(tmp_path / "kernel-ipc")
    client = NotebookClient(
        nb,
        config=config,
        kernel_manager_class=OfflineKernelManager,
        timeout=180,
        startup_timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=env)

    outputs: list[str] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            output_any: Any = output
            if output_any.get("name") == "stdout":
                outputs.extend(output_any["text"].splitlines())
    assert outputs[0].startswith("NETWORK-DOWN "), outputs
    expected = f"(60000, 28, 28) uint8 (60000,) (10000, 28, 28) uint8 (10000,) {digest}"
    for tag in ("KERAS", "TF", "TF-IMPORT"):
        assert f"{tag} {expected}" in outputs, outputs
