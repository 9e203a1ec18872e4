"""Where the student's kernel runs: a bubblewrap sandbox with nothing in it, else bare with rlimits.

The kernel is the only untrusted process. It sees an allow-list of the system, read-only:
``/usr`` (and the merged-/usr links), the few files of ``/etc`` a Python process reads, the
interpreter's prefixes minus anything of the grader's (this package, the reference, the
assignments) that sits inside them; plus its own empty, size-capped ``/tmp``, ``/dev/shm`` and
home, and the folder of its IPC sockets (``SANDBOX_RUNTIME``, a small tmpfs of its own; the worker
reaches the sockets through ``/proc``, see ``grader.kernel_sandbox``). Nothing else is writable: the
sandbox's root and ``/dev`` are remounted read-only once built. No network, its own PID, IPC and UTS
namespaces, a new session (no TIOCSTI), a seccomp filter (``grader.seccomp``), no_new_privs, and no
capabilities: started by root, bubblewrap keeps only what ``setpriv`` needs to become a uid of the
kernel's own (``grader.uids``) and then drops that too; started by a user, it runs in a user namespace
with every capability dropped and further user namespaces disabled.

Whole-tree limits (memory including tmpfs, processes, CPU share) come from a cgroup
(``grader.cgroups``) when one can be made; the per-process rlimits are always set too. The process
limit (RLIMIT_NPROC) counts a uid's processes, so it is set where that count is the submission's
alone: for root's start, on the kernel's own uid; in a user namespace, inside it (Linux >= 5.14 counts
per namespace and uid, and checks the parent's count against the limit its creator had, which is left
as the grader's own). Only the kernel sharing the grader's uid (a user's start, or no sandbox) shares
the kernel's other per-user counts (signals queued, inotify and epoll watches, pipe buffers): the
result says so (``user`` in grader.model.UNENFORCED).
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .cgroups import JobCgroup

GIB, MIB, PAGE = 2**30, 2**20, 4096

SANDBOX_USER = "student"
SANDBOX_HOME = Path("/home") / SANDBOX_USER
SANDBOX_HOSTNAME = "notebook"
NOBODY = 65534  # the unprivileged uid of bubblewrap's probe (a graded kernel gets a uid of its own: grader.uids)
SANDBOX_RUNTIME = Path("/run/jupyter")  # inside: the kernel's connection file (read-only) and its IPC sockets
RUNTIME_BYTES = 4 * MIB  # its tmpfs: sockets take no space, so anything written there is the notebook's, capped
CONNECTION_FILE = "kernel.json"
# Sets the process limit inside the sandbox's user namespace, then becomes the kernel: -I -S, nothing imported
# from the environment or site-packages.
NPROC_LAUNCHER = ("import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_NPROC, (n, n)); "
                  "os.execv(sys.argv[2], sys.argv[2:])")
# What a Python kernel needs of /etc; everything else there (shadow, ssh keys, the grader's config) stays out.
ETC_ALLOWED = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts", "mime.types",
               "nsswitch.conf", "host.conf", "gai.conf", "timezone", "matplotlibrc")
SYSTEM_TOPS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")  # shown as they are: merged-/usr links, or bound
GRADER_PACKAGES = ("grader", "reference", "assignments")  # never visible inside, wherever they are installed
SWEEP_VARIABLE = "JPY_SESSION_NAME"  # marks an unsandboxed kernel's processes; looks like any Jupyter kernel's


@dataclass(frozen=True)
class Limits:
    """Every limit of a submission's run, with its default; the CLI and assignments override fields."""

    memory_bytes: int = 4 * GIB  # whole tree with a cgroup (tmpfs included), else address space per process
    cpu_seconds: int = 1800  # CPU time per process
    file_bytes: int = 512 * MIB  # largest file the student's code may write
    processes: int = 256  # whole tree with a cgroup, and RLIMIT_NPROC on the kernel's own uid or user namespace
    tmpfs_bytes: int = 1 * GIB  # each of /tmp, /dev/shm and the home folder inside the sandbox
    cell_timeout: float = 120.0
    call_timeout: float = 20.0
    budget: float = 600.0  # wall clock for one submission, kernel restarts included
    output_cap: int = 1_000_000  # stream, display and error bytes kept per cell
    max_restarts: int = 3

    def describe_memory(self) -> str:
        return f"{self.memory_bytes / GIB:g} GiB"


def apply_rlimits(limits: Limits, nproc: bool) -> None:
    """Per-process limits, set in the child between fork and exec (inherited by all it starts)."""
    pairs = [(resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_FSIZE, limits.file_bytes),
             (resource.RLIMIT_CORE, 0)]
    if nproc:
        pairs.append((resource.RLIMIT_NPROC, limits.processes))
    for rlimit, value in pairs:
        resource.setrlimit(rlimit, (value, value))
    # The soft CPU limit sends SIGXCPU, which the report can name; the hard one, SIGKILL, backs it.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))


@dataclass
class KernelLaunch:
    """Everything the provisioner needs to start one kernel: what the grader hands its worker (the worker's
    settings file) and the worker the zygote, as ``to_json``."""

    limits: Limits
    runtime_dir: Path  # connection file and IPC sockets
    log_path: Path
    plan: SandboxPlan | None = None  # None: no bubblewrap, the kernel runs on the host
    cgroup: JobCgroup | None = None
    sweep_tag: str = ""  # without a sandbox: marks the kernel's processes, so that strays can be found
    kernel_uid: int | None = None  # the container tier (grader.container): the uid the kernel runs as, on the host
    zygote: str | None = None  # the run's zygote (grader.zygote), which forks the kernel: its socket's path
    preload: tuple[str, ...] = ()  # modules the kernel imports first (a zygote has them imported before it forks)

    def to_json(self) -> dict:
        return {"limits": asdict(self.limits), "runtime_dir": str(self.runtime_dir), "log_path": str(self.log_path),
                "plan": self.plan.to_json() if self.plan else None,
                "cgroup": self.cgroup.to_json() if self.cgroup else None, "sweep_tag": self.sweep_tag,
                "kernel_uid": self.kernel_uid, "zygote": self.zygote, "preload": list(self.preload)}

    @classmethod
    def from_json(cls, data: dict) -> "KernelLaunch":
        return cls(Limits(**data["limits"]), Path(data["runtime_dir"]), Path(data["log_path"]),
                   SandboxPlan.from_json(data["plan"]) if data["plan"] else None, JobCgroup.from_json(data["cgroup"]),
                   data["sweep_tag"], data["kernel_uid"], data["zygote"], tuple(data["preload"]))


def die_with_parent() -> None:
    """Between fork and exec: SIGKILL when the parent dies. The worker ends with the grader (a lost Dask worker,
    kill -9), and the kernel with the worker (bubblewrap's --die-with-parent, or this); otherwise it would grade on
    for no one."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def started_by_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class SandboxPlan:
    """What one kernel's sandbox is made of; plain data, so the worker process can be handed it as JSON."""

    bwrap: str
    runtime_dir: str  # the worker's folder holding the connection file, bound read-only into SANDBOX_RUNTIME
    etc_dir: str  # passwd, group and hosts written for the sandbox
    read_only: tuple[str, ...]  # bound read-only at the same path
    hidden: tuple[str, ...]  # inside a read-only tree, yet never visible: covered by an empty tmpfs or /dev/null
    tmpfs_bytes: int
    uid: int | None  # root start: the kernel's own unprivileged uid to become; None: a user namespace as the caller
    processes: int = 0  # in a user namespace: RLIMIT_NPROC set inside it (0: none)
    seccomp: bool = True

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, data: dict) -> "SandboxPlan":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _directories_for(destinations: list[str]) -> list[str]:
    """Every ancestor folder of the bind destinations, shallow first (bwrap would make them mode 0700)."""
    folders: set[str] = set()
    for dest in destinations:
        folders.update(str(p) for p in Path(dest).parents if str(p) != "/")
    return sorted(folders, key=lambda p: (p.count("/"), p))


def bwrap_arguments(plan: SandboxPlan, seccomp_fd: int | None, info_fd: int | None = None) -> list[str]:
    """bwrap's options for ``plan``, up to the command: after them comes the kernel's command line.

    ``info_fd``: where bubblewrap writes the sandbox's first process id (its mounts are reached through /proc).
    """
    args = [plan.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", SANDBOX_HOSTNAME, "--die-with-parent", "--new-session"]
    system = []
    for top in SYSTEM_TOPS:
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            system.append(str(path))
    etc = [str(Path("/etc") / name) for name in ETC_ALLOWED if (Path("/etc") / name).exists()]
    binds = ["/usr", *system, *etc, *plan.read_only]
    written = {f"/etc/{name}": str(Path(plan.etc_dir) / name) for name in ("passwd", "group", "hosts")}
    scratch = ("/tmp", "/dev/shm", str(SANDBOX_HOME))  # empty, size-capped, world-writable (the uid inside owns no mount)
    folders = _directories_for([*binds, *written, str(SANDBOX_RUNTIME), *scratch])
    inside_scratch = [f for f in folders if any(f == t or Path(t) in Path(f).parents for t in scratch)]
    # /dev/pts is covered: bubblewrap's devpts draws on the machine's pseudo-terminals (3072 of them here, shared by
    # everyone) and a notebook needs none; without it, /dev/ptmx leads nowhere.
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "0555", "--size", str(PAGE), "--tmpfs", "/dev/pts"]
    for folder in (f for f in folders if f not in inside_scratch):
        args += ["--perms", "0755", "--dir", folder]
    for path in scratch:  # before the binds: a prefix under /tmp (a checkout there) is bound on top, not hidden
        args += ["--perms", "1777", "--size", str(plan.tmpfs_bytes), "--tmpfs", path]
    for folder in (f for f in inside_scratch if f not in scratch):
        args += ["--perms", "0755", "--dir", folder]
    for path in binds:
        args += ["--ro-bind", path, path]
    for dest, source in written.items():
        args += ["--ro-bind", source, dest]
    for path in sorted(plan.hidden, key=lambda p: p.count("/")):
        args += ["--tmpfs", path] if Path(path).is_dir() else ["--ro-bind", "/dev/null", path]
    args += ["--perms", "1777", "--size", str(RUNTIME_BYTES), "--tmpfs", str(SANDBOX_RUNTIME),
             "--ro-bind", str(Path(plan.runtime_dir) / CONNECTION_FILE), str(SANDBOX_RUNTIME / CONNECTION_FILE)]
    # Built: the root (its mount points, folders bubblewrap made) and /dev become read-only; only the capped
    # tmpfs mounted on them stay writable (as a user's bubblewrap, the root's tmpfs is the user's and uncapped).
    args += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", str(SANDBOX_HOME)]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    if plan.uid is None:
        args += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--"]
        if plan.processes:
            args += [sys.executable, "-I", "-S", "-c", NPROC_LAUNCHER, str(plan.processes)]
    else:
        # Root's bubblewrap keeps only what setpriv needs; setpriv then becomes the unprivileged
        # uid, which clears the permitted set, and empties the bounding and inheritable sets.
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP",
                 "--", shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={plan.uid}", f"--regid={plan.uid}",
                 "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
    return args


def write_sandbox_etc(folder: Path, uid: int) -> None:
    """The sandbox's own passwd, group and hosts: one user, no host accounts."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                   f"{SANDBOX_USER}:x:{uid}:{uid}:{SANDBOX_USER}:{SANDBOX_HOME}:/bin/sh\n")
    (folder / "group").write_text(f"root:x:0:\n{SANDBOX_USER}:x:{uid}:\n")
    (folder / "hosts").write_text(f"127.0.0.1 localhost {SANDBOX_HOSTNAME}\n::1 localhost\n")
    for name in ("passwd", "group", "hosts"):
        (folder / name).chmod(0o644)


def shown_system() -> list[Path]:
    """What the sandbox shows of this machine besides the Python prefixes (bwrap_arguments binds the same): /usr,
    the top-level system folders that are folders of their own (not merged-/usr links), the allowed files of /etc.
    Whatever must stay hidden from the kernel (the reference cache) must lie outside these and the prefixes."""
    system = [Path("/") / top for top in SYSTEM_TOPS if (Path("/") / top).is_dir() and not (Path("/") / top).is_symlink()]
    return [Path("/usr"), *system, *(Path("/etc") / name for name in ETC_ALLOWED if (Path("/etc") / name).exists())]


def python_prefixes() -> list[Path]:
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    prefixes.add(Path(os.path.realpath(sys.executable)).parent.parent)
    return sorted(prefixes)


def grader_paths() -> list[Path]:
    """Where this grader's own packages live (a checkout or site-packages)."""
    import importlib.util

    found = []
    for name in GRADER_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            found.append(Path(location).resolve())
    return found


def shown_prefixes() -> list[Path]:
    """The Python prefixes the sandbox shows besides /usr (outermost ones only)."""
    read_only = [p for p in python_prefixes() if not any(str(p).startswith(pre) for pre in ("/usr/", "/bin", "/lib"))
                 and p != Path("/usr")]
    return [p for p in read_only if not any(q in p.parents for q in read_only)]


def covered_inside_shown(paths: list[Path]) -> set[str]:
    """Of ``paths``, the ones inside a tree the sandbox shows: these must be covered to stay hidden."""
    shown = [Path("/usr"), *shown_prefixes()]
    candidates = {p.resolve() for p in paths if p.exists()}
    return {str(p) for p in candidates if any(p == s or s in p.parents for s in shown) and p != Path("/usr")}


def make_plan(bwrap_path: str, runtime_dir: Path, etc_dir: Path, limits: Limits, hide: list[Path],
              uid: int | None = None) -> SandboxPlan:
    """The allow-list for this machine: the Python prefixes are the only trees outside /usr that are shown.

    ``uid``: for root's start, the unprivileged uid the kernel becomes (its own: grader.uids); a user's start
    ignores it and runs the kernel as itself in a user namespace.
    """
    read_only = shown_prefixes()
    hidden = sorted(covered_inside_shown([*hide, *grader_paths()]))
    uid = (NOBODY if uid is None else uid) if started_by_root() else None
    write_sandbox_etc(etc_dir, uid if uid is not None else os.getuid())
    return SandboxPlan(bwrap=bwrap_path, runtime_dir=str(runtime_dir), etc_dir=str(etc_dir),
                       read_only=tuple(map(str, read_only)), hidden=tuple(hidden), tmpfs_bytes=limits.tmpfs_bytes,
                       uid=uid, processes=limits.processes if uid is None else 0)


@functools.lru_cache(maxsize=1)
def bubblewrap() -> str | None:
    """The bwrap binary if it can really build our sandbox here (it cannot in some containers)."""
    path = shutil.which("bwrap")
    if not path:
        return None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="grader-probe-") as tmp:
        runtime, etc = Path(tmp, "run"), Path(tmp, "etc")
        runtime.mkdir()
        (runtime / CONNECTION_FILE).write_text("{}")
        plan = make_plan(path, runtime, etc, Limits(), [])
        try:
            probe = subprocess.run([*bwrap_arguments(plan, None), "/usr/bin/true"], capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return path if probe.returncode == 0 else None


def kernel_environment(plan_home: Path = SANDBOX_HOME) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's (no secret, no tokens, no sign of grading)."""
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(plan_home), "USER": SANDBOX_USER, "LOGNAME": SANDBOX_USER, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
        "MPLBACKEND": "agg", "PYTHONDONTWRITEBYTECODE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        # One thread each: on a 2-core machine grading two submissions at once, torch's default
        # threads fight each other (6.5 s vs 3.5 s for a small torch notebook).
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    }


def unsandboxed_environment(home: Path) -> dict[str, str]:
    """Without bubblewrap the kernel runs on the host: its home and temporary files go to its scratch."""
    for sub in ("home", "tmp"):
        (home.parent / sub).mkdir(exist_ok=True)
    env = kernel_environment(home)
    env["TMPDIR"] = str(home.parent / "tmp")
    return env

