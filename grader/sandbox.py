"""Where the worker runs: under bubblewrap when it works here, else bare with resource limits.

bubblewrap gives the worker (and the kernel it starts) a read-only view of the system,
an empty /tmp, tmpfs over everything the grader must keep hidden (reference solutions,
the instructor's folders, other submissions, the home directory), one writable scratch
folder, no network, and its own PID namespace, so nothing it starts outlives it.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIB = 2**30


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 4 * GIB  # address space per process (torch alone reserves ~0.9 GiB)
    cpu_seconds: int = 1800  # CPU time per process
    file_bytes: int = 512 * 2**20  # largest file the student's code may write
    processes: int = 4096  # RLIMIT_NPROC counts all of the user's processes, and root ignores it
    cell_timeout: float = 120.0
    call_timeout: float = 20.0
    budget: float = 600.0  # wall clock for one submission, kernel restarts included
    output_cap: int = 1_000_000  # stream and display bytes kept per cell
    max_restarts: int = 3

    def describe_memory(self) -> str:
        return f"{self.memory_bytes / GIB:g} GiB"


def apply_limits(limits: Limits) -> None:
    """Runs in the child between fork and exec (Popen's preexec_fn)."""
    for rlimit, value in ((resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_FSIZE, limits.file_bytes),
                          (resource.RLIMIT_NPROC, limits.processes), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(rlimit, (value, value))
    # The soft CPU limit sends SIGXCPU, which the report can name; the hard one, SIGKILL, backs it.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))


@functools.lru_cache(maxsize=1)
def bubblewrap() -> str | None:
    """The bwrap binary if it can really build our namespaces here (it cannot in some containers)."""
    path = shutil.which("bwrap")
    if not path:
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net",
                                "--unshare-pid", "--die-with-parent", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


def sandboxed_command(command: list[str], scratch: Path, hidden: list[Path]) -> list[str]:
    """``command`` wrapped in bubblewrap; ``scratch`` is the only writable place.

    Hidden: /tmp, the project's checkout (its tests and notebook builder hold solutions),
    and whatever the caller names. What the worker needs may sit inside a hidden folder (the
    venv inside the checkout, a Python under $HOME): it is bound back read-only. Mounts apply
    shallow to deep, so a deeper one wins over the folder around it; the scratch comes last.
    """
    args = [bubblewrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    scratch = scratch.resolve()
    hide = {p.resolve() for p in [*hidden, Path("/tmp"), Path("/dev/shm"), *project_checkout()] if p.exists()}
    hide.discard(scratch)
    needed = {p for p in needed_paths() if any(h in p.parents for h in hide)}
    for path in sorted(hide | needed, key=lambda p: len(p.parts)):
        if path in needed:
            args += ["--ro-bind", str(path), str(path)]
        else:
            args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    args += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch),
             "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "grader",
             "--die-with-parent", "--new-session", "--"]
    return args + command


GRADER_PACKAGE = Path(__file__).resolve().parent


def python_prefixes() -> set[Path]:
    import sys

    return {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, Path(os.path.realpath(sys.executable)).parent.parent)}


def project_checkout() -> list[Path]:
    """The source checkout the grader runs from, unless it is installed inside a Python prefix."""
    root = GRADER_PACKAGE.parent
    return [] if any(root == p or p in root.parents for p in python_prefixes()) else [root]


def needed_paths() -> set[Path]:
    """The interpreter, its standard library and site-packages, and the grader package itself."""
    return python_prefixes() | {GRADER_PACKAGE}


def worker_environment(scratch: Path, preload: list[str]) -> dict[str, str]:
    """A fresh environment: nothing of the grader's (no secret, no tokens) reaches the student."""
    import json
    import sys

    home = scratch / "home"
    for sub in ("home", "tmp", "runtime"):
        (scratch / sub).mkdir(exist_ok=True)
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home), "TMPDIR": str(scratch / "tmp"), "LANG": "C.UTF-8",
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(home / ".ipython"), "MPLCONFIGDIR": str(home / ".matplotlib"),
        "MPLBACKEND": "agg", "PYTHONDONTWRITEBYTECODE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        # One thread each: on a 2-core machine grading two submissions at once, torch's default
        # threads fight each other (6.5 s vs 3.5 s for a small torch notebook).
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "GRADER_PRELOAD": json.dumps(preload),
    }
