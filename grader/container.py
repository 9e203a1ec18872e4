"""The container tier: the kernel under a uid of its own where no namespace can be made.

Container runtimes' default seccomp profile and capability set (no CAP_SYS_ADMIN) refuse
the namespaces bubblewrap needs, and many grading platforms run their jobs in such
containers, as root. Root can still change uid there, so the kernel runs as a uid nobody
else uses (grader.uids: drawn per worker from a range no account uses, within the uids this
namespace maps), with:

- no supplementary group, no capability (bounding, permitted, effective, inheritable and
  ambient sets all empty), no_new_privs;
- the seccomp filter of the namespaces tier (``grader.seccomp``) plus socket() refused for
  every address family but AF_UNIX: the kernel keeps its ZeroMQ IPC sockets, reaches no network;
- the rlimits, RLIMIT_NPROC included (it counts the kernel's own uid, so it binds the whole
  tree), and the submission's cgroup where one can be made;
- the parent-death signal: it dies with its worker, which dies with the grader; a reaper
  (``python -m grader.container reap uid:N``, root, holding a pipe from the grader) kills every
  process of the uid when the worker stops or the grader dies, however it dies (without a
  sandbox, ``reap tag:T`` does the same for the processes carrying the kernel's sweep tag);
- none of the grader's files within its reach: there is no allow-list view without a mount
  namespace, so ``protect`` takes the other users' access away from every path the kernel must
  not see (the grader's packages and its checkout but the virtual environment, the assignment,
  the secret file, the cache, the class's folders, the home), and the tier refuses to start a
  kernel if one of them stays reachable. The worker's job folder (settings, notebook, calls,
  result) is the grader's, mode 0700; the kernel's own folder (its connection file, sockets,
  home and temporary files) is the only one it owns.

What it does not give (docs/security.md says so too): the kernel sees the
machine's process list and command lines (/proc is shared: a secret on the grader's command
line would be visible, so ``grade --secret`` is refused in this tier), every world-readable
file (a second copy of the reference elsewhere on disk, for example), and can write to the
world-writable folders (/tmp, /var/tmp, /dev/shm) within its file-size limit (nothing the
grader reads back is there), open pseudo-terminals (/dev/ptmx is every user's, and seccomp cannot
tell a path), and connect to world-writable or abstract Unix sockets.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from . import seccomp, uids

PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 24, 38, 22, 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522
REAP_COMMAND = "reap"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class DropPrivileges:
    """The kernel's side of the tier, between fork and exec: built in the parent (ctypes, the filter), called in
    the child after it joined its cgroup and set its rlimits. Any failure raises: Popen then fails, no kernel runs.

    A kernel forked by the zygote (grader.zygote) calls it too, on its way into its sandbox: ``uid`` None keeps the
    uid (a user namespace's, where every capability is dropped all the same), ``network`` takes the namespaces
    tier's filter, and ``parent`` is the parent's process id as the caller sees it (0 from inside a PID namespace
    whose parent is outside it): any other, and the parent died before the parent-death signal was set.
    """

    def __init__(self, uid: int | None, network: bool = False, parent: int | None = None):
        self.uid = uid
        self.parent = os.getpid() if parent is None else parent
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        self.header, self.caps = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
        arch = seccomp.architecture()
        self.program = None
        if arch is not None:
            data = seccomp.compiled(arch, network=network)
            self._filter = ctypes.create_string_buffer(data, len(data))
            self.program = _SockFprog(len(data) // 8, ctypes.cast(self._filter, ctypes.c_void_p))

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"{what}: {os.strerror(code)}")

    def __call__(self) -> None:
        libc, uid = self.libc, self.uid
        for cap in range(self.last_cap + 1):  # while CAP_SETPCAP is still held
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EPERM:
                self._check(-1, "PR_CAPBSET_DROP")
            # EPERM: a runtime that dropped CAP_SETPCAP leaves its own bounding set; no_new_privs below keeps any
            # exec from gaining what is left in it.
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # clears the permitted, effective and ambient sets
        self._check(libc.capset(ctypes.byref(self.header), self.caps), "capset")  # and the inheritable one (all, uid kept)
        self._check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
        # After the uid change, which clears it; the worker may have died in between: then die now.
        self._check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
        if os.getppid() != self.parent:
            os._exit(1)
        if self.program is not None:
            self._check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self.program), 0, 0),
                        "PR_SET_SECCOMP")


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether this tier works here: root, able to become another uid with nothing, and the kernel's interpreter
    (with its site-packages) reachable by that uid. Checked once, by doing it."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux") or seccomp.architecture() is None:
        return False  # without the filter the kernel would keep the network: no tier rather than a weaker one
    try:
        uid = uids.allocate()
    except OSError:
        return False
    try:
        drop = DropPrivileges(uid)
        probe = subprocess.run([sys.executable, "-c", "import zmq"], preexec_fn=drop, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=60, cwd="/")
    except (OSError, subprocess.SubprocessError, ValueError):
        return False
    finally:
        uids.release(uid)
    return probe.returncode == 0


# --------------------------------------------------------------------------- what the kernel must not reach

def reachable_by_others(path: Path) -> bool:
    """Whether a process of another uid with no group could open ``path``: every folder above it searchable by
    others and the path itself open to them (ACLs aside: this grader sets none)."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    if not mode & 0o007:
        return False
    return all(os.stat(folder).st_mode & 0o001 for folder in path.parents)


def _keep_traversable(path: Path, keep: list[Path]) -> bool:
    return any(path == k or path in k.parents for k in keep)


def protect(paths: list[Path], keep: list[Path]) -> list[Path]:
    """Take others' access away from ``paths`` (resolved), except the way to each folder of ``keep`` (the Python
    prefixes the kernel runs from): a folder on that way keeps only its search bit, and everything else in it is
    protected in turn. Returns what is still reachable by others afterwards (the caller refuses to go on)."""
    keep = [k.resolve() for k in keep]
    left: list[Path] = []
    todo = [Path(os.path.realpath(p)) for p in paths if os.path.lexists(p)]
    while todo:
        path = todo.pop()
        if path in keep:
            continue  # the interpreter and its site-packages: the kernel needs them (a path listed inside is hidden)
        try:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            if stat.S_ISDIR(mode) and _keep_traversable(path, keep):
                if mode & 0o006:
                    os.chmod(path, stat.S_IMODE(mode) & ~0o006)
                todo.extend(path.iterdir())
            elif mode & 0o007:
                os.chmod(path, stat.S_IMODE(mode) & ~0o007)
        except OSError:
            pass
        if reachable_by_others(path) and not _keep_traversable(path, keep):
            left.append(path)
    return left


def checkout_of(packages: list[Path]) -> list[Path]:
    """The source checkouts the grader's packages come from (a folder with pyproject.toml above them): their tests,
    solutions and the rest must be out of reach too, not only the packages."""
    return sorted({p.parent for p in packages if (p.parent / "pyproject.toml").is_file() and p.parent != Path("/")})


# --------------------------------------------------------------------------- ending every process of a uid

def processes_of(uid: int) -> list[int]:
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    if uid in (int(word) for word in line.split()[1:]):
                        pids.append(int(status.parent.name))
                    break
        except (OSError, ValueError):
            continue
    return pids


def tagged_processes(tag: str) -> list[int]:
    """The processes whose environment holds the sweep tag (grader.sandbox.SWEEP_VARIABLE) of a kernel without a
    sandbox: it and whatever it started, unless they cleared their environment (that tier promises nothing more)."""
    from .sandbox import SWEEP_VARIABLE

    marker, pids = f"{SWEEP_VARIABLE}={tag}".encode(), []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0") and int(environ.parent.name) != os.getpid():
                pids.append(int(environ.parent.name))
        except (OSError, ValueError):
            continue
    return pids


def sweep_tagged(tag: str, wait: float = 5.0) -> None:
    from .cgroups import kill_until_gone

    kill_until_gone(lambda: tagged_processes(tag), wait)


def sweep(uid: int, wait: float = 5.0) -> None:
    """SIGKILL every process of ``uid``: a child becomes that uid and signals -1 (all it may signal: its own uid's
    processes), until none is left (a fork bomb forks on for a moment). Single-threaded callers only (os.fork)."""
    deadline = time.monotonic() + wait
    while processes_of(uid) and time.monotonic() < deadline:
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.02)


def start_reaper(uid: int | None = None, tag: str | None = None) -> subprocess.Popen:
    """The process that ends a kernel's processes (every process of ``uid``; without a sandbox, the ones tagged
    ``tag``) when its stdin closes: when the grader stops the worker, or dies (kill -9 included: the kernel holds
    no pipe of the grader's). Its own session: a signal to the grader's process group does not reach it."""
    which = f"uid:{uid}" if uid is not None else f"tag:{tag}"
    return subprocess.Popen([sys.executable, "-m", "grader.container", REAP_COMMAND, which], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")


def stop_reaper(reaper: subprocess.Popen, timeout: float = 30.0) -> None:
    """Close the reaper's pipe and wait for its sweep."""
    try:
        reaper.stdin.close()
    except OSError:
        pass
    try:
        reaper.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()


def reap(which: str) -> None:
    """The reaper's body: wait for the end of stdin, then sweep ``uid:N`` or ``tag:T``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the terminal's group ends the grader, not this
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    kind, _, value = which.partition(":")
    sweep(int(value)) if kind == "uid" else sweep_tagged(value)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == REAP_COMMAND:
    reap(sys.argv[2])
