"""The bubblewrap sandbox around a student's kernel.

Inside: its own network, PID, IPC and UTS namespaces, an unprivileged uid, no capabilities,
the system and the Python environment read-only, a private size-limited ``/tmp`` (also the
home), the work dir and the harvest dir read-write, the dataset mirror read-only. Nothing of
the course (``source/``, ``grading_tests/``, ``gradebook/``, other submissions, the home
directory) is mounted, so it does not exist for the student's code.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import autograder
from autograder.config import Limits
from autograder.errors import AutograderError

WORK = "/sandbox/work"
HARVEST = "/sandbox/harvest"
SANDBOX_UID = 65534
SYSTEM_DIRS = ("/usr", "/etc", "/opt")
LINKED_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
MASKED_FILES = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/security/opasswd",
)
MASKED_DIRS = ("/etc/ssh", "/etc/ssl/private", "/etc/sudoers.d", "/etc/postgresql")


class SandboxUnavailable(AutograderError):
    """The sandbox cannot be set up on this machine."""


@dataclass(frozen=True)
class SandboxSpec:
    """Where things are on the host, and what the sandbox may see of them."""

    workdir: Path
    harvest_dir: Path
    connection_dir: Path
    limits: Limits
    readonly: tuple[Path, ...] = ()
    devices: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def python_mounts() -> tuple[Path, ...]:
    """The read-only paths the kernel's interpreter needs: the environment, the base
    interpreter and this package (which may be an editable install)."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(autograder.__file__).parent}
    return tuple(sorted(p.resolve() for p in paths))


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def sandbox_problem() -> str | None:
    """``None`` when an untrusted run can be sandboxed here, else why it cannot."""
    bwrap = bwrap_path()
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed; install the Debian package 'bubblewrap'"
    probe = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        *_system_args(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--cap-drop",
        "ALL",
        "--",
        "/bin/true",
    ]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bubblewrap cannot start: {err}"
    if done.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {done.stderr.strip()}"
    return None


def require_sandbox() -> None:
    """Refuse untrusted code where the sandbox cannot be set up."""
    problem = sandbox_problem()
    if problem:
        raise SandboxUnavailable(
            f"cannot sandbox untrusted code: {problem}. To run a notebook you trust (your own) "
            "without a sandbox, pass --no-sandbox"
        )


def _system_args() -> list[str]:
    args: list[str] = []
    for name in SYSTEM_DIRS:
        if Path(name).is_dir():
            args += ["--ro-bind", name, name]
    # Started as root, the sandbox's uid reads files as host root: hide the secrets of /etc.
    for name in MASKED_FILES:
        if Path(name).is_file():
            args += ["--ro-bind", "/dev/null", name]
    for name in MASKED_DIRS:
        if Path(name).is_dir():
            args += ["--tmpfs", name, "--remount-ro", name]
    for name in LINKED_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    return args


def bwrap_command(spec: SandboxSpec, command: list[str]) -> list[str]:
    """The full argv that runs ``command`` inside the sandbox described by ``spec``."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    args = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
        "--cap-drop",
        "ALL",
        *_system_args(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(spec.limits.disk_mb * 1024 * 1024),
        "--tmpfs",
        "/tmp",
    ]
    for path in spec.readonly:
        args += ["--ro-bind", str(path), str(path)]
    for device in spec.devices:
        args += ["--dev-bind", device, device]
    args += [
        "--bind",
        str(spec.workdir),
        WORK,
        "--bind",
        str(spec.harvest_dir),
        HARVEST,
        "--bind",
        str(spec.connection_dir),
        str(spec.connection_dir),
        "--chdir",
        WORK,
        "--clearenv",
    ]
    env = {
        "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "MPLCONFIGDIR": "/tmp/.matplotlib",
        "KERAS_HOME": "/tmp/.keras",
        **spec.env,
    }
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return [*args, "--", *command]
