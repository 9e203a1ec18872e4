"""The kernel inside the sandbox: a jupyter_client kernel provisioner and the manager that names it.

The worker (trusted, outside) drives nbclient as usual; only the kernel process is launched
inside bubblewrap, by ``SandboxProvisioner.launch_kernel``. The two talk over ZeroMQ IPC
sockets (the sandbox has no network, so TCP on its loopback would reach nothing). The kernel
makes them in its own size-capped tmpfs (``grader.sandbox.SANDBOX_RUNTIME``), where it also finds
its connection file, bound read-only; nothing of the host is writable to it. The worker reaches
that folder through ``/proc/<the sandbox's first process>/root``, opened once bubblewrap has built
the sandbox (the connection file seen there is the worker's own) and held as a file descriptor, so
the path stays the sandbox's even if that process id is reused. Every inbound message is
size-capped (``zmq.MAXMSGSIZE``), so a kernel cannot make the worker hold more than that.

Registered as the ``grader-sandbox`` entry point of ``jupyter_client.kernel_provisioners``
(pyproject.toml), which is how jupyter_client finds provisioners.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from . import seccomp
from .sandbox import (CONNECTION_FILE, SANDBOX_RUNTIME, SWEEP_VARIABLE, KernelLaunch, apply_rlimits, bwrap_arguments,
                      die_with_parent, kernel_environment, unsandboxed_environment)

PROVISIONER_NAME = "grader-sandbox"
MAX_MESSAGE_BYTES = 256 * 2**20  # one message from the kernel; probe results are the largest
SANDBOX_SETUP_SECONDS = 60  # for bubblewrap to build the sandbox (milliseconds, unless the machine is swamped)


class SandboxedKernelManager(AsyncKernelManager):
    """A python3 kernel over IPC, started by the sandbox provisioner."""

    launch: KernelLaunch | None = None

    def __init__(self, launch: KernelLaunch, **kwargs: Any):
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # applies to every socket made from it
        # The connection file says where the kernel makes its sockets, as the kernel sees it; the worker's own
        # path to them is known once the sandbox is built (SandboxProvisioner.launch_kernel).
        sockets = (SANDBOX_RUNTIME if launch.plan else launch.runtime_dir) / "kernel"
        super().__init__(kernel_name="python3", transport="ipc", ip=str(sockets),
                         connection_file=str(launch.runtime_dir / CONNECTION_FILE), context=context, **kwargs)
        self.launch = launch

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                          display_name="Python 3", language="python", interrupt_mode="message",
                          metadata={"kernel_provisioner": {"provisioner_name": PROVISIONER_NAME}})


class SandboxProvisioner(LocalProvisioner):
    """Launches the kernel command wrapped in bubblewrap, in the submission's cgroup, with rlimits."""

    sockets_fd: int | None = None  # the sandbox's socket folder, held open (an O_PATH descriptor)
    forked = None  # a kernel forked by the zygote (grader.zygote.ForkedKernel): its line to its monitor

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        launch: KernelLaunch = self.parent.launch
        if not launch.plan:  # a restarted kernel finds nothing a previous one left (only the connection file is kept)
            for entry in launch.runtime_dir.iterdir():
                if entry.name != CONNECTION_FILE:
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        kwargs = await super().pre_launch(**kwargs)
        if launch.plan and launch.plan.uid is not None:  # the kernel's uid must read the key (bound read-only)
            os.chown(launch.runtime_dir / CONNECTION_FILE, launch.plan.uid, launch.plan.uid)
        elif launch.kernel_uid is not None:  # the container tier: the kernel reads the key and makes its sockets
            os.chown(launch.runtime_dir, launch.kernel_uid, launch.kernel_uid)
            os.chown(launch.runtime_dir / CONNECTION_FILE, launch.kernel_uid, launch.kernel_uid)
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        launch: KernelLaunch = self.parent.launch
        if launch.zygote:  # forked by the run's zygote, its imports done; if it is gone, started as below
            from .zygote import request_kernel

            try:
                self.process, self.sockets_fd = request_kernel(launch)
            except OSError as exc:  # said in the kernel's log (tests see whether kernels were forked: test_zygote)
                self.process = None
                with open(launch.log_path, "a") as log:
                    log.write(f"grader: no forked kernel ({exc}); starting one\n")
            if self.process is not None:
                self.forked = self.process  # LocalProvisioner.wait forgets process; cleanup closes the line
                self.pid, self.pgid, self.cwd = self.process.pid, None, str(launch.runtime_dir)
                return self.connected(launch)
        fds: list[int] = []
        info_read = None
        drop = None
        if launch.plan:
            argv, fds, info_read = bubblewrap_command(launch, cmd)
            env = kernel_environment()
            cwd = launch.runtime_dir
        elif launch.kernel_uid is not None:  # the container tier: home and temporary files in its own folder
            from .container import DropPrivileges

            home = container_home(launch)
            argv, env, cwd = cmd, unsandboxed_environment(home), home
            drop = DropPrivileges(launch.kernel_uid)
        else:
            home = launch.runtime_dir.parent / "kernel-home"
            home.mkdir(exist_ok=True)
            argv, env, cwd = cmd, unsandboxed_environment(home), home
            env[SWEEP_VARIABLE] = launch.sweep_tag
        with open(launch.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True, pass_fds=fds,
                                                preexec_fn=entering_limits(launch, drop))
            finally:
                for fd in fds:
                    os.close(fd)
        self.pid = self.process.pid
        try:
            self.pgid = os.getpgid(self.pid)
        except OSError:
            self.pgid = None
        self.cwd = str(cwd)
        if info_read is not None:
            steps = sandbox_steps(self.process, info_read, launch.runtime_dir / CONNECTION_FILE)
            try:
                while True:
                    await asyncio.sleep(next(steps))
            except StopIteration as built:
                self.sockets_fd = built.value[0]
        return self.connected(launch)

    def connected(self, launch: KernelLaunch) -> dict[str, Any]:
        if self.sockets_fd is not None:
            # From now on the worker connects through the held folder. The manager rewrites its own connection file
            # with this path; the kernel's bound copy of the file it replaces keeps the path inside.
            self.connection_info = {**self.connection_info, "ip": f"/proc/{os.getpid()}/fd/{self.sockets_fd}/kernel"}
        return self.connection_info

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart)
        if self.forked is not None:  # its line to its monitor: closed, the kernel and its sandbox end
            self.forked.close()
            self.forked = None
        if self.sockets_fd is not None:
            os.close(self.sockets_fd)
            self.sockets_fd = None


def container_home(launch: KernelLaunch) -> Path:
    """The container tier's kernel home, with its temporary files beside it: the kernel's uid's alone."""
    home = launch.runtime_dir / "home"
    for folder in (home, home.parent / "tmp"):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chown(folder, launch.kernel_uid, launch.kernel_uid)
        folder.chmod(0o700)
    return home


def bubblewrap_command(launch: KernelLaunch, command: list[str]) -> tuple[list[str], list[int], int]:
    """bubblewrap's command line running ``command`` in ``launch``'s sandbox, the descriptors to pass it (closed by
    the caller once it started) and the pipe its info (the sandbox's first process) comes back on."""
    filter_fd = seccomp.filter_fd() if launch.plan.seccomp else None
    info_read, info_write = os.pipe()
    fds = [info_write] + ([filter_fd] if filter_fd is not None else [])
    own_file = str(launch.runtime_dir / CONNECTION_FILE)
    inside = [str(SANDBOX_RUNTIME / CONNECTION_FILE) if arg == own_file else arg for arg in command]
    return [*bwrap_arguments(launch.plan, filter_fd, info_write), *inside], fds, info_read


def entering_limits(launch: KernelLaunch, drop=None):
    """What bubblewrap's or the kernel's process does between fork and exec: its cgroup, its rlimits, and (the
    container tier) ``drop``: plain writes, setrlimit, prctl and the uid change."""
    # RLIMIT_NPROC counts a uid's processes, here or in a user namespace (grader.sandbox): on root's start the
    # kernel's uid is its own (bubblewrap's or the container tier's); a user's bubblewrap sets it inside its
    # namespace (set here, it would bound every sandbox's processes together); without a sandbox only where no
    # cgroup counts the tree.
    nproc = launch.plan.uid is not None if launch.plan else (drop is not None or launch.cgroup is None)
    limits, cgroup = launch.limits, launch.cgroup

    def enter() -> None:
        if cgroup is not None:
            cgroup.join()
        apply_rlimits(limits, nproc=nproc)
        if drop is not None:
            drop()  # sets the parent-death signal itself, after the uid change that would clear it
        elif not launch.plan:
            die_with_parent()  # bubblewrap has --die-with-parent; a bare kernel ends with its worker too

    return enter


def sandbox_steps(process: subprocess.Popen, info_read: int, own_file: Path):
    """Waits for bubblewrap to build the sandbox: yields the seconds to wait before looking again, and returns
    (the sandbox's socket folder as an O_PATH descriptor, the sandbox's first process id) once it is built.

    bubblewrap writes its first process's id to ``info_read`` before that process has built the sandbox; the
    folder is taken only once the connection file seen in it through /proc is the worker's own (same inode):
    before that the path may name the host's folders. Raises OSError if bubblewrap ends or stalls first.
    A generator, so that the provisioner waits in its event loop and the zygote's monitor in plain sleeps.
    """
    deadline = time.monotonic() + SANDBOX_SETUP_SECONDS
    data, child = b"", None
    try:
        while child is None and time.monotonic() < deadline:  # bubblewrap writes it at once (one JSON object)
            if select.select([info_read], [], [], 0)[0]:
                chunk = os.read(info_read, 4096)
                if not chunk:
                    break
                data += chunk
                try:
                    child = int(json.loads(data)["child-pid"])
                except (ValueError, KeyError, TypeError):
                    continue  # not all of it yet
            elif process.poll() is not None:
                break
            else:
                yield 0.005
    finally:
        os.close(info_read)
    if child is None:
        raise OSError(f"bubblewrap did not start the sandbox (exit code {process.poll()})")
    own = os.stat(own_file)
    while time.monotonic() < deadline:
        try:
            folder = os.open(f"/proc/{child}/root{SANDBOX_RUNTIME}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            folder = None
        if folder is not None:
            try:
                seen = os.stat(CONNECTION_FILE, dir_fd=folder, follow_symlinks=False)
                if (seen.st_dev, seen.st_ino) == (own.st_dev, own.st_ino):
                    return folder, child
            except OSError:
                pass
            os.close(folder)
        if process.poll() is not None:
            raise OSError(f"bubblewrap ended before the kernel started (exit code {process.returncode})")
        yield 0.005
    raise OSError(f"bubblewrap did not build the sandbox within {SANDBOX_SETUP_SECONDS} s")
