"""Resource limits for one sandboxed run, and the watchdog that enforces them.

Memory and process count go into cgroup v1 ``memory`` and ``pids`` controllers where this
process may create groups (root on this machine kind); elsewhere a watchdog sums the
process tree's memory and counts its processes. The watchdog also enforces the notebook's
wall time and the disk used in the work and harvest dirs, and a single file's size is capped
with ``RLIMIT_FSIZE``. A breach kills the whole tree and is remembered as the run's status.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil

from autograder.config import Limits

CGROUP_ROOT = Path("/sys/fs/cgroup")
POLL_S = 0.2


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_key(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


MAX_FILES = 200_000


def dir_size(*folders: Path, cap: int | None = None) -> int | None:
    """Bytes used by the regular files under ``folders``; ``None`` when there are more than
    ``cap`` (default :data:`MAX_FILES`) entries: too many to measure, and a breach in itself
    (counting only the first ``cap`` would let a folder of empty files hide the big ones)."""
    cap = MAX_FILES if cap is None else cap
    total, seen = 0, 0
    stack = [str(f) for f in folders]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > cap:
                        return None
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:
            continue
    return total


_ACTIVE: set[Enforcer] = set()
_ACTIVE_LOCK = threading.Lock()


def stop_all(reason: str, detail: str) -> int:
    """Trip every run this process is watching (Ctrl-C on a batch): each one's processes
    are killed at once and its run records ``reason``. Returns how many were running."""
    with _ACTIVE_LOCK:
        active = list(_ACTIVE)
    for enforcer in active:
        enforcer.trip(reason, detail)
    return len(active)


class Enforcer:
    """Puts a run into its cgroups (when possible) and watches it until :meth:`close`."""

    def __init__(self, limits: Limits, watch_dirs: tuple[Path, ...]) -> None:
        self.limits = limits
        self.watch_dirs = watch_dirs
        self.breach: str | None = None
        self.breach_detail = ""
        self.peak_memory_bytes = 0
        self._root_pid: Callable[[], int | None] = lambda: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.cgroups = self._make_cgroups(f"autograder-{uuid.uuid4().hex[:12]}")

    # -- cgroups ----------------------------------------------------------------------
    def _make_cgroups(self, name: str) -> dict[str, Path]:
        made: dict[str, Path] = {}
        settings = {
            "memory": {
                "memory.limit_in_bytes": self.limits.memory_mb * 1024 * 1024,
                "memory.memsw.limit_in_bytes": self.limits.memory_mb * 1024 * 1024,
                "memory.swappiness": 0,
            },
            "pids": {"pids.max": self.limits.processes},
        }
        for controller, values in settings.items():
            group = CGROUP_ROOT / controller / name
            try:
                group.mkdir()
            except OSError:
                continue
            ok = True
            for key, value in values.items():
                target = group / key
                if not target.exists():
                    continue
                try:
                    target.write_text(str(value))
                except OSError:
                    ok = key != "memory.limit_in_bytes" and key != "pids.max"
            if ok:
                made[controller] = group
            else:
                with contextlib.suppress(OSError):
                    group.rmdir()
        return made

    @property
    def mode(self) -> str:
        """``cgroup`` when both controllers are in use, else ``watchdog``."""
        return "cgroup" if len(self.cgroups) == 2 else "watchdog"

    def wrap(self, command: list[str]) -> list[str]:
        """Prefix ``command`` so that it enters the run's cgroups and gets ``RLIMIT_FSIZE``."""
        fsize = self.limits.disk_mb * 1024 * 1024
        prefix = ["prlimit", f"--fsize={fsize}", "--core=0", "--"]
        if not self.cgroups:
            return prefix + command
        procs = " ".join(shlex.quote(str(g / "cgroup.procs")) for g in self.cgroups.values())
        script = f'for f in {procs}; do echo $$ > "$f" || exit 97; done; exec "$@"'
        return ["/bin/sh", "-c", script, "sandbox-enter", *prefix, *command]

    # -- watchdog ---------------------------------------------------------------------
    def start(self, root_pid: Callable[[], int | None]) -> None:
        """Start watching; ``root_pid`` gives the sandbox's outermost process on the host."""
        self._root_pid = root_pid
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="sandbox-watchdog", daemon=True)
        self._thread.start()
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)

    def _watch(self) -> None:
        tick = 0
        while not self._stop.wait(POLL_S):
            tick += 1
            reason = self._check(disk=tick % 3 == 0)
            if reason:
                self.breach, self.breach_detail = reason
                self.kill()
                return

    def _check(self, *, disk: bool) -> tuple[str, str] | None:
        limits = self.limits
        elapsed = time.monotonic() - self._started
        if elapsed > limits.notebook_timeout_s:
            return "timeout", f"the notebook ran past {limits.notebook_timeout_s} s"
        memory = self.cgroups.get("memory")
        pids = self.cgroups.get("pids")
        if memory is not None:
            used = _read_int(memory / "memory.max_usage_in_bytes")
            self.peak_memory_bytes = max(self.peak_memory_bytes, used)
            if _read_key(memory / "memory.oom_control", "oom_kill") > 0:
                return "memory-limit", f"the notebook used more than {limits.memory_mb} MB"
        else:
            used = sum(p.memory_info().rss for p in self._tree())
            self.peak_memory_bytes = max(self.peak_memory_bytes, used)
            if used > limits.memory_mb * 1024 * 1024:
                return "memory-limit", f"the notebook used more than {limits.memory_mb} MB"
        if pids is not None:
            if _read_key(pids / "pids.events", "max") > 0:
                return "process-limit", (
                    f"the notebook tried to run more than {limits.processes} processes"
                )
        elif len(self._tree()) > limits.processes:
            return "process-limit", f"the notebook ran more than {limits.processes} processes"
        if disk:
            written = dir_size(*self.watch_dirs)
            if written is None:
                return "disk-limit", f"the notebook created more than {MAX_FILES} files"
            if written > limits.disk_mb * 1024 * 1024:
                return "disk-limit", f"the notebook wrote more than {limits.disk_mb} MB"
        return None

    def _tree(self) -> list[psutil.Process]:
        pid = self._root_pid()
        if pid is None:
            return []
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def trip(self, reason: str, detail: str) -> None:
        """Record a breach found outside the watchdog (the output budget) and kill the run."""
        if self.breach is None:
            self.breach, self.breach_detail = reason, detail
        self.kill()

    def check_now(self) -> str | None:
        """Re-read the counters once (after the kernel died) and record any breach."""
        if self.breach is None:
            reason = self._check(disk=True)
            if reason:
                self.breach, self.breach_detail = reason
        return self.breach

    def kill(self) -> None:
        """SIGKILL every process of the run: the cgroup members and the host-side tree."""
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        for _ in range(50):
            pids = self._cgroup_pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def _cgroup_pids(self) -> list[int]:
        found: set[int] = set()
        for group in self.cgroups.values():
            with contextlib.suppress(OSError):
                found.update(int(x) for x in (group / "cgroup.procs").read_text().split())
        return sorted(found)

    def close(self) -> None:
        """Stop watching, kill whatever is left and remove the cgroups."""
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        memory = self.cgroups.get("memory")
        if memory is not None:
            self.peak_memory_bytes = max(
                self.peak_memory_bytes, _read_int(memory / "memory.max_usage_in_bytes")
            )
        self.kill()
        for group in self.cgroups.values():
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)

    def leftover_pids(self) -> list[int]:
        """Processes of the run still alive (should be none after :meth:`close`)."""
        return self._cgroup_pids()
