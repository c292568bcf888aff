"""Ctrl-C on a batch: the sandboxes in flight are killed at once, no new run starts, and
the caller learns what was kept."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.config import Limits
from autograder.errors import Interrupted
from autograder.runner.pool import run_many
from autograder.runner.run import RunRequest


def _notebook(path: Path, code: str) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell(code)]), path)
    return path


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def test_ctrl_c_stops_the_batch_and_keeps_finished_runs(tmp_path: Path) -> None:
    quick = _notebook(tmp_path / "quick.ipynb", "x = 1")
    marker = "sleep-marker-7341"
    slow = _notebook(
        tmp_path / "slow.ipynb",
        f"import subprocess, time\nsubprocess.Popen(['sleep', '300', '{marker}'])\ntime.sleep(300)",
    )
    requests = [
        RunRequest(
            assignment="x", notebook=path, out=tmp_path / name, limits=Limits(), mnist_npz=None
        )
        for name, path in (("quick", quick), ("slow", slow), ("never", slow))
    ]
    timer = threading.Timer(8, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(Interrupted, match="1 finished run"):
        asyncio.run(run_many(requests, workers=1))
    assert time.monotonic() - started < 30
    assert (tmp_path / "quick" / "run.json").is_file()  # finished: kept
    assert not (tmp_path / "never").exists()  # never started
    assert _marked(marker) == []  # the sandbox and what it spawned are gone
