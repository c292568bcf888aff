"""Executing a notebook in a fresh project kernel with nbclient.

This is the trusted path (the instructor's own solution notebook, before release). The
sandboxed runner for student code builds on the same client with a sandboxing kernel manager.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError as NbCellExecutionError
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from autograder.errors import CellExecutionError
from autograder.kernel.manager import ProjectKernelManager, kernel_env
from autograder.notebook import cell_label


@dataclass(frozen=True)
class Execution:
    """What one execution produced: the executed notebook and its wall time."""

    notebook: Any
    wall_s: float


def execute_notebook(
    nb: Any,
    *,
    label: Path,
    workdir: Path,
    mnist_npz: Path | None,
    cell_timeout_s: int,
    kernel_manager_class: type[ProjectKernelManager] = ProjectKernelManager,
) -> Execution:
    """Run every code cell of ``nb`` top to bottom in ``workdir``; stop at the first failure.

    Raises :class:`CellExecutionError` naming ``label`` (the notebook's file), the failing cell
    and the error's last line. ``nb`` is modified in place (outputs, timings).
    """
    current: dict[str, int] = {"index": -1}

    def on_cell_start(cell: Any, cell_index: int) -> None:
        current["index"] = cell_index

    client = NotebookClient(
        nb,
        timeout=cell_timeout_s,
        kernel_manager_class=kernel_manager_class,
        resources={"metadata": {"path": str(workdir)}},
        record_timing=True,
        on_cell_start=on_cell_start,
    )
    env = {**os.environ, **kernel_env(mnist_npz)}
    started = time.perf_counter()
    try:
        client.execute(env=env, cwd=str(workdir), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    except NbCellExecutionError as err:
        index = current["index"]
        where = cell_label(nb.cells[index], index) if index >= 0 else "a cell"
        message = f"{err.ename}: {err.evalue}".strip()
        raise CellExecutionError(f"{label}: {where} failed: {message}") from err
    except CellTimeoutError as err:
        index = current["index"]
        raise CellExecutionError(
            f"{label}: {cell_label(nb.cells[index], index)} ran past {cell_timeout_s} s"
        ) from err
    except DeadKernelError as err:
        index = current["index"]
        raise CellExecutionError(
            f"{label}: the kernel died in {cell_label(nb.cells[index], index)}: {err}"
        ) from err
    return Execution(notebook=nb, wall_s=time.perf_counter() - started)
