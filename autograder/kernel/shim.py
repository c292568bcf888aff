"""Serve ``keras.datasets.mnist.load_data()`` from the local mirror, inside project kernels.

``keras.src.datasets.mnist.load_data`` calls the module-global ``get_file`` (imported from
``keras.src.utils.file_utils``) with ``origin=".../tf-keras-datasets/mnist.npz"`` and then
loads the path it returns with ``np.load``. Every public route ends in that one module:
``keras.datasets.mnist`` and ``from keras.datasets import mnist`` re-export its
``load_data``, and with Keras 3 TensorFlow routes ``tf.keras`` (and the import path
``tensorflow.keras``) to ``keras._tf_keras.keras``, whose ``datasets.mnist`` re-exports the
same function.

:func:`install` puts a :data:`sys.meta_path` finder in front that, when
``keras.src.datasets.mnist`` is executed, replaces that module's ``get_file`` by a wrapper:
for the ``mnist.npz`` origin it returns the file named by ``$AUTOGRADER_MNIST_NPZ``; any other
call goes to the original. Nothing is imported eagerly (TensorFlow takes seconds to import),
and nothing is patched in processes that did not call :func:`install`.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

MNIST_ENV = "AUTOGRADER_MNIST_NPZ"
"""Environment variable with the path of the mirror's ``mnist.npz``."""

TARGET_MODULES = ("keras.src.datasets.mnist", "tf_keras.src.datasets.mnist")
"""The modules whose ``get_file`` is replaced (Keras 3, and legacy ``tf_keras`` when
``TF_USE_LEGACY_KERAS=1``, which has the same ``load_data``)."""

_MARK = "__autograder_mnist_shim__"


def mnist_origin(origin: object) -> bool:
    """Whether ``origin`` is the URL of Keras' ``mnist.npz``."""
    return isinstance(origin, str) and origin.rsplit("/", 1)[-1] == "mnist.npz"


def _not_provisioned(reason: str) -> str:
    return (
        f"MNIST cannot be loaded: the offline dataset mirror is not provisioned ({reason}); "
        "run `autograder datasets` and start the kernel through the autograder"
    )


def wrap_get_file(original: Callable[..., Any]) -> Callable[..., Any]:
    """A ``get_file`` that serves the MNIST origin from ``$AUTOGRADER_MNIST_NPZ``.

    Without a usable mirror the original runs (it may find Keras' own cache); if it fails,
    the error says how to provision the mirror.
    """

    @functools.wraps(original)
    def get_file(*args: Any, **kwargs: Any) -> Any:
        origin = kwargs["origin"] if "origin" in kwargs else (args[1] if len(args) > 1 else None)
        if not mnist_origin(origin):
            return original(*args, **kwargs)
        mirror = os.environ.get(MNIST_ENV)
        if mirror and Path(mirror).is_file():
            return str(Path(mirror))
        reason = f"{mirror} does not exist" if mirror else f"${MNIST_ENV} is not set"
        try:
            return original(*args, **kwargs)
        except Exception as err:
            raise RuntimeError(f"{_not_provisioned(reason)}; download failed: {err}") from err

    setattr(get_file, _MARK, True)
    return get_file


def patch_module(module: ModuleType) -> None:
    """Replace ``module.get_file`` by the wrapper, once."""
    original = module.__dict__.get("get_file")
    if original is None or getattr(original, _MARK, False):
        return
    setattr(module, "get_file", wrap_get_file(original))  # noqa: B010


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then patches the module it executed."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        patch_module(module)

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename, is_package, ... of the wrapped loader.
        return getattr(self._loader, name)


class MnistShimFinder(importlib.abc.MetaPathFinder):
    """Finds the :data:`TARGET_MODULES` with the other finders and wraps their loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in TARGET_MODULES:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, MnistShimFinder) or getattr(finder, _MARK, False):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            spec.loader = _PatchingLoader(loader)
        return spec


setattr(MnistShimFinder, _MARK, True)


def installed() -> bool:
    """Whether :func:`install` ran in this process."""
    return any(getattr(finder, _MARK, False) for finder in sys.meta_path)


def install() -> None:
    """Install the MNIST shim in this process (idempotent, imports nothing)."""
    if not installed():
        sys.meta_path.insert(0, MnistShimFinder())
    for name in TARGET_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            patch_module(module)
