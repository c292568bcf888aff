"""A jupyter_client kernel manager that starts the project kernel.

The command is ``python -m autograder.kernel -f {connection_file}`` with the interpreter of
this environment; the environment tells the kernel where the dataset mirror is. Subclasses
(the sandbox) wrap that command.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from autograder.kernel.shim import MNIST_ENV

KERNEL_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONHASHSEED": "0",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


def kernel_command() -> list[str]:
    """The argv of the project kernel, with jupyter_client's connection-file placeholder."""
    return [
        sys.executable,
        "-Xfrozen_modules=off",
        "-m",
        "autograder.kernel",
        "-f",
        "{connection_file}",
    ]


def kernel_env(mnist_npz: Path | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment additions for the project kernel."""
    env = dict(KERNEL_ENV)
    if mnist_npz is not None:
        env[MNIST_ENV] = str(mnist_npz)
    env.update(extra or {})
    return env


class ProjectKernelManager(AsyncKernelManager):
    """Starts ``python -m autograder.kernel`` instead of the kernelspec's argv."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = [part.replace("{connection_file}", self.connection_file) for part in kernel_command()]
        return cmd + list(extra_arguments or [])
