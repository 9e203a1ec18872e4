"""The kernel inside the sandbox: a jupyter_client kernel provisioner and the manager that names it.

The worker (trusted, outside) drives nbclient as usual; only the kernel process is launched
inside bubblewrap, by ``SandboxProvisioner.launch_kernel``. The two talk over ZeroMQ IPC
sockets in a folder bound into the sandbox at the same path (the sandbox has no network, so
TCP on its loopback would reach nothing). Every inbound message is size-capped
(``zmq.MAXMSGSIZE``), so a kernel cannot make the worker hold more than that.

Registered as the ``grader-sandbox`` entry point of ``jupyter_client.kernel_provisioners``
(pyproject.toml), which is how jupyter_client finds provisioners.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from . import seccomp
from .cgroups import JobCgroup
from .sandbox import (SWEEP_VARIABLE, Limits, SandboxPlan, apply_rlimits, bwrap_arguments, die_with_parent,
                      kernel_environment, unsandboxed_environment)

PROVISIONER_NAME = "grader-sandbox"
MAX_MESSAGE_BYTES = 256 * 2**20  # one message from the kernel; probe results are the largest
CONNECTION_FILE = "kernel.json"


@dataclass
class KernelLaunch:
    """Everything the provisioner needs to start one kernel; the worker builds it from its settings."""

    limits: Limits
    runtime_dir: Path  # connection file and IPC sockets
    log_path: Path
    plan: SandboxPlan | None = None  # None: no bubblewrap, the kernel runs on the host
    cgroup: JobCgroup | None = None
    sweep_tag: str = ""  # without a sandbox: marks the kernel's processes, so that strays can be found
    kernel_uid: int | None = None  # the container tier (grader.container): the uid the kernel runs as, on the host

    @property
    def owner(self) -> int | None:
        """The uid that must own the kernel's folder (its connection file, sockets, home); None: the worker's."""
        return self.plan.uid if self.plan else self.kernel_uid


class SandboxedKernelManager(AsyncKernelManager):
    """A python3 kernel over IPC, started by the sandbox provisioner."""

    launch: KernelLaunch | None = None

    def __init__(self, launch: KernelLaunch, **kwargs: Any):
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # applies to every socket made from it
        super().__init__(kernel_name="python3", transport="ipc", ip=str(launch.runtime_dir / "kernel"),
                         connection_file=str(launch.runtime_dir / CONNECTION_FILE), context=context, **kwargs)
        self.launch = launch

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                          display_name="Python 3", language="python", interrupt_mode="message",
                          metadata={"kernel_provisioner": {"provisioner_name": PROVISIONER_NAME}})


class SandboxProvisioner(LocalProvisioner):
    """Launches the kernel command wrapped in bubblewrap, in the submission's cgroup, with rlimits."""

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        launch: KernelLaunch = self.parent.launch
        # A restarted kernel finds nothing a previous one left (only the connection file is kept).
        for entry in launch.runtime_dir.iterdir():
            if entry.name != CONNECTION_FILE:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        kwargs = await super().pre_launch(**kwargs)
        if launch.owner is not None:  # the kernel's uid must read the key and make its sockets
            os.chown(launch.runtime_dir, launch.owner, launch.owner)
            os.chown(launch.runtime_dir / CONNECTION_FILE, launch.owner, launch.owner)
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        launch: KernelLaunch = self.parent.launch
        fds: list[int] = []
        drop = None
        if launch.plan:
            filter_fd = seccomp.filter_fd() if launch.plan.seccomp else None
            fds = [filter_fd] if filter_fd is not None else []
            argv = [*bwrap_arguments(launch.plan, filter_fd), *cmd]
            env = kernel_environment()
            cwd = launch.runtime_dir
        elif launch.kernel_uid is not None:  # the container tier: home and temporary files in its own folder
            from .container import DropPrivileges

            home = launch.runtime_dir / "home"
            home.mkdir(mode=0o700, exist_ok=True)
            argv, env, cwd = cmd, unsandboxed_environment(home), home
            for folder in (home, home.parent / "tmp"):
                os.chown(folder, launch.kernel_uid, launch.kernel_uid)
                folder.chmod(0o700)
            drop = DropPrivileges(launch.kernel_uid)
        else:
            home = launch.runtime_dir.parent / "kernel-home"
            home.mkdir(exist_ok=True)
            argv, env, cwd = cmd, unsandboxed_environment(home), home
            env[SWEEP_VARIABLE] = launch.sweep_tag
        limits, cgroup = launch.limits, launch.cgroup

        def enter_limits() -> None:  # between fork and exec: plain writes, setrlimit, prctl and the uid change
            if cgroup is not None:
                cgroup.join()
            # RLIMIT_NPROC counts a uid's processes machine-wide: where no cgroup counts the tree, or where the
            # kernel has a uid of its own (it then counts exactly the kernel's tree).
            apply_rlimits(limits, nproc=cgroup is None or drop is not None)
            if drop is not None:
                drop()  # sets the parent-death signal itself, after the uid change that would clear it
            elif not launch.plan:
                die_with_parent()  # bubblewrap has --die-with-parent; a bare kernel ends with its worker too

        with open(launch.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True, pass_fds=fds,
                                                preexec_fn=enter_limits)
            finally:
                for fd in fds:
                    os.close(fd)
        self.pid = self.process.pid
        try:
            self.pgid = os.getpgid(self.pid)
        except OSError:
            self.pgid = None
        self.cwd = str(cwd)
        return self.connection_info
