"""Entry point of the project kernel: install the dataset shim, then run ipykernel."""

from __future__ import annotations

from autograder.kernel import shim


def main() -> None:
    shim.install()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
