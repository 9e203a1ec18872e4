"""Kernels ready before they are needed: one process with the kernel's imports done forks every kernel.

A kernel's start is mostly imports, the same for every submission: the interpreter, ipykernel (~0.5 s) and
torch (~1.4 s). The zygote (``Zygote``: one process per grading run, owned and closed by whoever runs the
batch) imports them once, in the kernel's environment, and forks a kernel for each worker that asks
(``request_kernel``, over a Unix socket in a folder only the grader's user may enter). It never runs student
code: each request is served by a forked monitor, which builds that submission's sandbox and forks the kernel;
the kernel enters the sandbox's restrictions before ipykernel starts, then nothing of the zygote's runs in it.

- namespaces tier (root, or a user with user namespaces): the monitor starts bubblewrap exactly as an exec'd
  kernel's (the same mounts, namespaces, uid, seccomp filter, cgroup and rlimits), with a placeholder command
  where the kernel was (``sleep``, once it has said it runs: bubblewrap has then made every namespace). The
  kernel is forked into the sandbox's PID namespace and joins its other namespaces (as a user, from the
  sandbox's user namespaces), takes the sandbox's root, sets its rlimits, empties every capability set (as
  root, becomes the sandbox's uid: grader.uids), sets no_new_privs and the same seccomp filter. It and
  whatever it starts die with bubblewrap's PID namespace, when the kernel ends, the worker closes its line
  to the monitor, or the monitor dies.
- uid tier (a container: grader.container): the kernel joins the cgroup, sets its rlimits and drops to its uid
  (``DropPrivileges``), as an exec'd one does.
- none: not forked (``serves``): the sweep finds that tier's kernel processes by a tag in the environment
  they were exec'd with, which a fork cannot change.

Fork safety: the zygote is single-threaded (the kernel's one-thread settings keep OpenBLAS from starting its
pool; torch's pools start lazily) and refuses to fork otherwise; ZeroMQ contexts are made in the kernel, after
the fork; each kernel reseeds random, NumPy and torch from the operating system, and leaves no module of the
grader's in ``sys.modules``. Python's string-hash seed is fixed at the zygote's start: kernels of one run share it.

A worker whose zygote is gone starts its kernel the exec way (grader.kernel_sandbox); the owner's ``address``
starts a new zygote for the next workers.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .model import SandboxTier
from .config import LAZY_AFTER
from .sandbox import (CONNECTION_FILE, SANDBOX_HOME, SANDBOX_RUNTIME, apply_rlimits, die_with_parent,
                      kernel_environment, unsandboxed_environment)

KERNEL_MODULES = ("ipykernel_launcher", "ipykernel.kernelapp", "numpy", "torch")  # what every kernel imports, done once
SOCKET_NAME = "zygote.sock"
# Parts of a preloaded module that it imports only when first used, at a cost worth paying once in the zygote
# rather than in every kernel: torch's optimizers import torch._dynamo when the first one is built (0.8 s of CPU
# here, in every kernel whose notebook or probe calls build one: the book's training loops, a width fitted by
# gradient descent).
LAZY_PARTS = {"torch": ("torch._dynamo",)}
MAX_REQUEST_BYTES = 2**20
# The sandbox's command, where an exec'd kernel would be: says it runs (bubblewrap has then made every namespace and
# become every uid it will), then holds the sandbox open.
PLACEHOLDER = "echo >&{fd}; exec {sleep} infinity"
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace that owns a namespace
JOINED = (("cgroup", CLONE_NEWCGROUP), ("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("net", CLONE_NEWNET),
          ("mnt", CLONE_NEWNS))  # joined in this order, the mount namespace last (it moves the root)
if TYPE_CHECKING:
    from .sandbox import KernelLaunch

# argv: the listening socket's descriptor, lazy_after, the modules.
ENTRY = "import sys; from grader.zygote import serve; serve(int(sys.argv[1]), sys.argv[3:], int(sys.argv[2]))"


def serves(tier: SandboxTier) -> bool:
    return tier in (SandboxTier.NAMESPACES, SandboxTier.UID)


# --------------------------------------------------------------------------- the owner's side

class Zygote:
    """The zygote process of one grading run: started at once (its imports take a second or two), closed by its
    owner. ``address()`` is its socket for the workers' settings, a new zygote's if the last one died."""

    def __init__(self, scratch_root: Path | None = None, modules: tuple[str, ...] = (), lazy_after: int = LAZY_AFTER):
        self.modules = tuple(dict.fromkeys((*KERNEL_MODULES, *modules)))
        self.lazy_after = lazy_after  # kernels forked before the zygote imports LAZY_PARTS (grader.zygote.serve)
        self.folder = Path(tempfile.mkdtemp(prefix="zygote-", dir=scratch_root))  # 0700: the grader's user's alone
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        path = self.folder / SOCKET_NAME
        path.unlink(missing_ok=True)
        # Bound here, listened on there: a worker that asks while the zygote still imports waits in the backlog;
        # once the zygote is gone, asking is refused (this process keeps no copy) and the worker starts its own.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            listener.listen(64)
            with open(self.folder / "zygote.log", "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-c", ENTRY, str(listener.fileno()), str(self.lazy_after), *self.modules],
                    stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=kernel_environment(), cwd="/",
                    start_new_session=True, pass_fds=[listener.fileno()], preexec_fn=die_with_parent)
        finally:
            listener.close()
        self.starts += 1

    def address(self) -> str:
        if self.process is None or self.process.poll() is not None:
            self.start()
        return str(self.folder / SOCKET_NAME)

    def close(self) -> None:
        """Stop the zygote (its kernels' monitors go on until their workers close them)."""
        if self.process is not None:
            try:
                self.process.stdin.close()  # the end of its stdin: it stops
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --------------------------------------------------------------------------- the worker's side

class ForkedKernel:
    """A forked kernel as the provisioner sees it (Popen's poll, wait, send_signal, kill, terminate): messages to
    and from its monitor. Closing the line ends the kernel and its sandbox."""

    stdin = stdout = stderr = None

    def __init__(self, line: socket.socket, pid: int):
        self.line, self.pid, self.returncode = line, pid, None
        self.pending = b""

    def poll(self) -> int | None:
        while self.returncode is None:
            # What came already first: the kernel's exit status may have come with the monitor's first answer.
            messages, self.pending = line_messages(self.pending)
            for code in (message.get("exit") for message in messages):
                if isinstance(code, int):
                    self.returncode = code
            if self.returncode is not None or not select.select([self.line], [], [], 0)[0]:
                break
            try:
                chunk = self.line.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:  # the monitor is gone without a word: so is the kernel
                self.returncode = -signal.SIGKILL
                break
            self.pending += chunk
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forked kernel", timeout)
            select.select([self.line], [], [], 0.1)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            try:
                self.line.sendall(json.dumps({"signal": int(signum)}).encode() + b"\n")
            except OSError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def close(self) -> None:
        self.line.close()


def line_messages(pending: bytes) -> tuple[list[dict], bytes]:
    """The whole JSON messages (one per line) at the front of ``pending``, and the part of a message after them:
    what a worker and its kernel's monitor say to each other."""
    *whole, rest = pending.split(b"\n")
    return [json.loads(message) for message in whole], rest


def request_kernel(launch: KernelLaunch, timeout: float = 120.0) -> tuple[ForkedKernel, int | None]:
    """A kernel forked by ``launch.zygote`` for ``launch``, and (namespaces tier) the sandbox's socket folder as an
    O_PATH descriptor. OSError: no zygote answered (the caller starts the kernel itself)."""
    line = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        line.settimeout(timeout)  # a zygote still importing answers once it is done
        line.connect(launch.zygote)
        line.sendall(json.dumps(launch.to_json()).encode() + b"\n")
        data, fds, _, _ = socket.recv_fds(line, 65536, 2)
        first, newline, rest = data.partition(b"\n")
        answer = json.loads(first) if newline else {"error": "no answer"}
        if "pid" not in answer:
            for fd in fds:
                os.close(fd)
            raise OSError(f"the zygote could not start the kernel: {answer.get('error')}")
        line.settimeout(None)
        kernel = ForkedKernel(line, int(answer["pid"]))
        kernel.pending = rest  # the exit status, if the kernel died at once
        return kernel, (fds[0] if fds else None)
    except BaseException:
        line.close()
        raise


# --------------------------------------------------------------------------- the zygote

def single_threaded() -> bool:
    return len(os.listdir("/proc/self/task")) == 1


def serve(listener_fd: int, modules: list[str], lazy_after: int = LAZY_AFTER) -> None:
    """The zygote's body: import, then fork a monitor per request until stdin ends.

    After ``lazy_after`` requests (two by default: a run that grades a class, not one notebook), the zygote imports its
    modules' LAZY_PARTS: the later kernels start with them. Not before: the first kernels would wait for it, and a run
    of one notebook would pay for what it may never use. 0: with the modules, before any request (a Dask worker's
    zygote, made ready before the worker joins the cluster, grades many)."""
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the terminal ends the grader; it closes this
    listener = socket.socket(fileno=listener_fd)
    imported, served = set(), 0
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:  # not installed here (a student's machine without torch): the kernel imports it or fails
            continue
        imported.add(name)
    if lazy_after == 0:
        import_lazy_parts(imported)
    while True:
        ready = select.select([listener, sys.stdin], [], [], 1.0)[0]
        while True:  # the monitors that ended
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            # Ended without finalising the interpreter: with torch imported that took 0.3 s of every run's end,
            # spent while the grader waited, and there is nothing here to finalise but the log.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        if listener not in ready:
            continue
        line, _ = listener.accept()
        line.settimeout(10)  # a worker that connects says what it wants at once
        try:
            _, uid, _ = struct.unpack("3i", line.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if uid != os.geteuid():  # only the grader's own processes (its folder is 0700 too)
                raise PermissionError(f"a request from uid {uid}")
            request = read_request(line)
            for name in request.preload:  # the assignment's, once: every later kernel has them
                if name not in imported:
                    importlib.import_module(name)
                    imported.add(name)
            if not single_threaded():
                raise RuntimeError("the zygote has threads: it cannot fork safely")
            if os.fork() == 0:
                listener.close()
                monitor(line, request)  # never returns
            served += 1
        except Exception as exc:  # one request's failure is that worker's (it starts its own kernel)
            try:
                line.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}).encode() + b"\n")
            except OSError:
                pass
        line.close()
        if lazy_after and served == lazy_after:  # once (0: done before the first request)
            import_lazy_parts(imported)


def import_lazy_parts(imported: set[str]) -> None:
    import importlib

    for name in (part for module in sorted(imported) for part in LAZY_PARTS.get(module, ())):
        try:
            importlib.import_module(name)
        except Exception:  # a part this version lacks, or that fails here: each kernel imports it, or not
            pass


def read_request(line: socket.socket) -> KernelLaunch:
    from .sandbox import KernelLaunch

    data = b""
    while not data.endswith(b"\n"):
        chunk = line.recv(65536)
        if not chunk or len(data) + len(chunk) > MAX_REQUEST_BYTES:
            raise ValueError("incomplete request")
        data += chunk
    return KernelLaunch.from_json(json.loads(data))


def monitor(line: socket.socket, launch: KernelLaunch) -> None:
    """A forked monitor: builds the sandbox, forks the kernel into it, tells the worker, then relays signals until
    the kernel ends or the worker closes the line; either way, the kernel and its sandbox end with it."""
    from .kernel_sandbox import bubblewrap_command, container_home, entering_limits, sandbox_steps

    code = 1
    sandbox = kernel = None
    try:
        os.setsid()
        line.settimeout(None)
        # Never created here (the grader makes it with the job's folder): a monitor whose worker has already gone,
        # its folder removed or being removed, finds no log and stops, leaving nothing in that folder.
        log = os.open(launch.log_path, os.O_WRONLY | os.O_APPEND)
        fds, folder = {}, None
        if launch.plan:
            running, says = os.pipe()
            placeholder = PLACEHOLDER.format(fd=says, sleep=shutil.which("sleep") or "/bin/sleep")
            argv, passed, info_read = bubblewrap_command(launch, [shutil.which("sh") or "/bin/sh", "-c", placeholder])
            try:
                sandbox = subprocess.Popen(argv, env=kernel_environment(), cwd=launch.runtime_dir,
                                           stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                           pass_fds=[*passed, says], preexec_fn=entering_limits(launch))
            finally:
                for fd in [*passed, says]:
                    os.close(fd)
            steps = sandbox_steps(sandbox, info_read, launch.runtime_dir / CONNECTION_FILE)
            try:
                while True:
                    time.sleep(next(steps))
            except StopIteration as built:
                folder, child = built.value
            fds = namespaces_of(child, placeholder_of(child, running, sandbox))
            if launch.plan.uid is None:  # a user's sandbox: joining its namespaces takes its user namespace first
                fds["owner"] = os_ioctl(fds["mnt"], NS_GET_USERNS)  # the one that owns them (bubblewrap nests one)
                setns(fds["owner"], CLONE_NEWUSER)
            setns(fds["pid"], CLONE_NEWPID)  # the kernel, forked next, is born in the sandbox's PID namespace
        elif launch.kernel_uid is not None:
            container_home(launch)
        kernel = os.fork()
        if kernel == 0:
            line.close()
            become_kernel(launch, fds, log)  # never returns
        for fd in fds.values():
            os.close(fd)
        os.close(log)
        socket.send_fds(line, [json.dumps({"pid": kernel}).encode() + b"\n"], [folder] if folder is not None else [])
        code = relay(line, kernel, sandbox)
    except BaseException as exc:
        try:
            line.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}).encode() + b"\n")
        except OSError:
            pass
    finally:
        for process in (kernel, sandbox.pid if sandbox else None):
            if process:
                try:
                    os.kill(process, signal.SIGKILL)
                    os.waitpid(process, 0)
                except OSError:
                    pass
        os._exit(code)


def relay(line: socket.socket, kernel: int, sandbox: subprocess.Popen | None) -> int:
    """Until the kernel ends (its exit status to the worker, as Popen says it) or the line closes."""
    ended = os.pidfd_open(kernel)
    pending = b""
    while True:
        ready = select.select([line, ended], [], [])[0]
        if ended in ready:
            status = os.waitpid(kernel, 0)[1]
            try:
                line.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
            except OSError:
                pass
            return 0
        chunk = line.recv(4096)
        if not chunk:
            return 0
        messages, pending = line_messages(pending + chunk)
        for signum in (message.get("signal") for message in messages):
            if isinstance(signum, int):
                try:
                    os.kill(kernel, signum)
                except OSError:
                    pass
                if signum == signal.SIGKILL and sandbox is not None:
                    sandbox.kill()  # everything it started, in the sandbox's PID namespace, with it


def placeholder_of(child: int, running: int, sandbox: subprocess.Popen) -> int:
    """The placeholder's process id, once it runs: bubblewrap's first process (``child``) has then made the last
    of its namespaces (a user's bubblewrap nests a user namespace after the mounts are built)."""
    from .kernel_sandbox import SANDBOX_SETUP_SECONDS

    try:
        ready = select.select([running], [], [], SANDBOX_SETUP_SECONDS)[0] and os.read(running, 16)
    finally:
        os.close(running)
    if not ready:
        raise OSError(f"the sandbox's command did not start (bubblewrap's exit code {sandbox.poll()})")
    return int(Path(f"/proc/{child}/task/{child}/children").read_text().split()[0])


def namespaces_of(child: int, placeholder: int) -> dict[str, int]:
    """The sandbox's namespaces and root, held open, read through /proc: its first process's (bubblewrap's), and
    the user namespace its command runs in."""
    fds = {kind: os.open(f"/proc/{child}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
           for kind in ("pid", *(k for k, _ in JOINED))}
    fds["user"] = os.open(f"/proc/{placeholder}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    fds["root"] = os.open(f"/proc/{child}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return fds


def setns(fd: int, kind: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, kind) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns {kind:#x}: {os.strerror(code)}")


def same_namespace(a: int, b: int) -> bool:
    return (os.fstat(a).st_ino, os.fstat(a).st_dev) == (os.fstat(b).st_ino, os.fstat(b).st_dev)


def become_kernel(launch: KernelLaunch, fds: dict[str, int], log: int) -> None:
    """The forked kernel: into the sandbox, then ipykernel; it never returns into the zygote's code."""
    code = 1
    try:
        connection = enter_sandbox(launch, fds, log)
        del launch, fds
        code = start_kernel(connection)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def enter_sandbox(launch: KernelLaunch, fds: dict[str, int], log: int) -> str:
    """What bubblewrap, setpriv (or the container tier's launch) do for an exec'd kernel, in the forked one; the
    connection file's path as the kernel sees it."""
    from .container import DropPrivileges

    for signum in range(1, signal.NSIG):  # the zygote's dispositions are not the kernel's
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(signum, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    drop = DropPrivileges(launch.plan.uid if launch.plan else launch.kernel_uid, network=launch.plan is not None,
                          parent=os.getppid())
    if launch.cgroup is not None:
        launch.cgroup.join()
    if launch.plan:
        for kind, flag in JOINED:  # as a user, from the user namespace owning them (the monitor joined it)
            setns(fds[kind], flag)
        if "owner" in fds and not same_namespace(fds["owner"], fds["user"]):
            setns(fds["user"], CLONE_NEWUSER)  # the sandbox's innermost one, as the exec'd kernel's
        os.fchdir(fds["root"])
        os.chroot(".")
        os.chdir(SANDBOX_HOME)
        environment = kernel_environment()
        apply_rlimits(launch.limits, nproc=True)  # the kernel's own uid, or its user namespace's count
        connection = SANDBOX_RUNTIME / CONNECTION_FILE
    else:
        home = launch.runtime_dir / "home"
        os.chdir(home)
        environment = unsandboxed_environment(home)
        apply_rlimits(launch.limits, nproc=True)
        connection = launch.runtime_dir / CONNECTION_FILE
    drop()
    os.closerange(3, 1 << 20)
    os.environ.clear()
    os.environ.update(environment)
    return str(connection)


def os_ioctl(fd: int, request: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.ioctl(fd, request)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"ioctl {request:#x}: {os.strerror(code)}")
    return result


def start_kernel(connection: str) -> int:
    """ipykernel, as ``python -m ipykernel_launcher -f FILE`` would start it, with fresh random state."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()
    for name in [n for n in sys.modules if n == "grader" or n.startswith("grader.")]:
        del sys.modules[name]  # the grader's code stays out of the kernel's sight
    import ipykernel_launcher
    from ipykernel import kernelapp

    sys.orig_argv = [sys.executable, "-m", "ipykernel_launcher", "-f", connection]
    show_as(sys.orig_argv)
    sys.argv = [ipykernel_launcher.__file__, "-f", connection]
    sys.path[0] = os.getcwd()
    kernelapp.launch_new_instance(argv=["-f", connection])
    return 0


def show_as(argv: list[str]) -> None:
    """/proc/self/cmdline says what an exec'd kernel's would: the zygote's own command line names the grader."""
    fields = Path("/proc/self/stat").read_bytes().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start and arg_end, the stat file's fields 48 and 49
    text = b"\0".join(arg.encode() for arg in argv)[: end - start - 1]
    ctypes.memmove(start, text.ljust(end - start, b"\0"), end - start)


if __name__ == "__main__":
    sys.exit("grader.zygote is started by grader.zygote.Zygote")
