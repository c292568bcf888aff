"""Entry point of the project kernel: install the dataset shim, then run ipykernel.

When the runner asks for a harvest (``AUTOGRADER_HARVEST_DIR`` is set), the recorder is
loaded as an IPython extension so that it sees every cell the notebook runs.
"""

from __future__ import annotations

import os
import sys

from autograder.kernel import shim
from autograder.kernel.recorder import HARVEST_ENV


def main() -> None:
    shim.install()
    from ipykernel import kernelapp

    argv = sys.argv[1:]
    if os.environ.get(HARVEST_ENV):
        argv.append("--IPKernelApp.extra_extensions=autograder.kernel.recorder")
    kernelapp.IPKernelApp.launch_instance(argv=argv)


if __name__ == "__main__":
    main()
