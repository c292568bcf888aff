"""The kernel manager that starts the project kernel inside the sandbox.

The kernel talks to the runner over Unix sockets (ZeroMQ ``ipc`` transport) in a private
folder bound into the sandbox: TCP on loopback would not cross the network namespace.
"""

from __future__ import annotations

from typing import Any

from autograder.kernel.manager import ProjectKernelManager
from autograder.runner.limits import Enforcer
from autograder.runner.sandbox import SandboxSpec, bwrap_command


class SandboxedKernelManager(ProjectKernelManager):
    """Runs ``python -m autograder.kernel`` under bubblewrap, inside the run's limits.

    With ``spec`` left ``None`` the kernel runs unsandboxed (the explicit opt-out for a
    student checking their own notebook) but still under the enforcer's limits.
    """

    def __init__(self, *, spec: SandboxSpec | None, enforcer: Enforcer, **kw: Any) -> None:
        super().__init__(**kw)
        self.sandbox_spec = spec
        self.enforcer = enforcer

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        if self.sandbox_spec is not None:
            command = bwrap_command(self.sandbox_spec, command)
        return self.enforcer.wrap(command)

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt with an ``interrupt_request`` on the control channel: a signal to the
        launcher's process group does not reach a kernel in the sandbox's own session."""
        if self.has_kernel:
            message = self.session.msg("interrupt_request", content={})
            self._connect_control_socket()
            self.session.send(self._control_socket, message)

    interrupt_kernel = _async_interrupt_kernel  # type: ignore[assignment]

    def host_pid(self) -> int | None:
        """The pid of the outermost process of the kernel on the host."""
        process = getattr(self.provisioner, "process", None)
        return getattr(process, "pid", None)
