"""Whole-tree limits for one submission's kernel and everything it starts: a cgroup.

cgroup v2 where this process's own cgroup is delegated to it (memory, pids and cpu
controllers available and the files writable); else cgroup v1 where the memory, pids and cpu
hierarchies are mounted and writable (root on hosts like this one); else nothing, and the
caller falls back to per-process rlimits and says which limits are not enforced.

Memory includes the tmpfs pages the kernel writes (/tmp, /dev/shm, its home): the kernel
charges them to its own cgroup. The CPU share is the same weight for every submission, so
a notebook that starts eight busy processes gets no more of the machine than one that starts
none. A cgroup is made by the grader, joined by the kernel's launcher between fork and exec,
read by the worker (OOM kills) and emptied and removed by the grader.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
# A run's parent cgroup (CgroupManager.name) and, in v2, the leaf its own processes moved to.
RUN_PARENT = re.compile(r"grader-(?P<pid>\d+)-[0-9a-f]{6}(-grader)?")
STALE_AFTER = 60.0  # seconds a dead run's parent is left alone: a run of another PID namespace may be starting
CPU_WEIGHT_V2, CPU_SHARES_V1 = 100, 1024  # the defaults: every submission weighs the same
MAX_WEIGHT = {2: 10000, 1: 262144}
PEAK_SLACK = 2**20  # bytes below the limit that still count as at the limit (v1's peak)


@dataclass(frozen=True)
class JobCgroup:
    """One submission's cgroup: the folders a process joins (one for v2, one per controller for v1)."""

    version: int
    folders: tuple[str, ...]

    def to_json(self) -> dict:
        return {"version": self.version, "folders": list(self.folders)}

    @classmethod
    def from_json(cls, data: dict | None) -> "JobCgroup | None":
        return cls(data["version"], tuple(data["folders"])) if data else None

    def join(self, pid: int = 0) -> None:
        """Put ``pid`` (0: the caller) in every folder. Safe between fork and exec: plain writes only."""
        text = str(pid or os.getpid()).encode()
        for folder in self.folders:
            write_existing(os.path.join(folder, "cgroup.procs"), text)

    def oom_kills(self) -> int:
        """How many processes the memory limit has killed so far."""
        return self.counter((("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")))

    def limit_hits(self) -> int:
        """How many times memory use has reached the limit so far: v2's memory.events "max"; 0 on v1 (its
        memory.failcnt is not counted by every kernel: 0 after an OOM kill on this project's 6.18 hosts), which
        restart_peak and peak_at_limit answer instead."""
        return self.counter((("memory.events", "max"),))

    def counter(self, places: tuple[tuple[str, str], ...]) -> int:
        """The first of ``places`` (file, field of its "field value" lines) found in a folder; 0 if none is."""
        for folder in self.folders:
            for name, key in places:
                try:
                    for line in Path(folder, name).read_text().splitlines():
                        field, _, value = line.partition(" ")
                        if field == key:
                            return int(value)
                except (OSError, ValueError):
                    continue
        return 0

    def restart_peak(self) -> None:
        """v1: the peak of memory use restarts from what is in use now (memory.max_usage_in_bytes takes 0)."""
        for folder in self.folders if self.version == 1 else ():
            try:  # only the memory controller's folder has the file
                write_existing(os.path.join(folder, "memory.max_usage_in_bytes"), b"0")
            except OSError:
                continue

    def peak_at_limit(self) -> bool:
        """v1: whether memory use has reached the limit since the peak restarted. A charge the limit refuses
        leaves use at most one charge batch (64 pages) below it; PEAK_SLACK covers that."""
        for folder in self.folders if self.version == 1 else ():
            try:
                peak = int(Path(folder, "memory.max_usage_in_bytes").read_text())
                limit = int(Path(folder, "memory.limit_in_bytes").read_text())
            except (OSError, ValueError):
                continue
            return peak >= limit - PEAK_SLACK
        return False

    def processes(self) -> list[int]:
        pids: set[int] = set()
        for folder in self.folders:
            try:
                pids.update(int(p) for p in Path(folder, "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return sorted(pids)

    def kill_all(self, wait: float = 5.0) -> None:
        """SIGKILL everything inside, until nothing is left (a fork bomb keeps forking for a moment)."""
        if self.version == 2:
            try:
                Path(self.folders[0], "cgroup.kill").write_text("1")
            except OSError:
                pass
        kill_until_gone(self.processes, wait)

    def remove(self) -> None:
        self.kill_all()
        for folder in self.folders:
            for _ in range(50):  # the last killed processes take a moment to leave
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
        weigh_parent(self)


def write_existing(path: str, data: bytes) -> None:
    """Write ``data`` to the existing file ``path`` (never created: a cgroup's files are the kernel's). Plain system
    calls only: safe between fork and exec."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def kill_until_gone(find, wait: float) -> None:
    """SIGKILL what ``find()`` lists until it lists nothing (a fork bomb keeps forking for a moment) or ``wait``
    seconds have passed."""
    deadline = time.monotonic() + wait
    while (pids := find()) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


def weigh_parent(job: JobCgroup) -> None:
    """The grader's parent cgroup weighs as much as the submissions inside it, together.

    Against the machine's other processes a cgroup counts as one process of its weight: with the
    default weight, two submissions graded at once would share one process's CPU on a busy host
    (measured: --jobs 2 no faster than --jobs 1 under load). Each submission weighs one process.
    """
    weight_file, per_job = ("cpu.weight", CPU_WEIGHT_V2) if job.version == 2 else ("cpu.shares", CPU_SHARES_V1)
    for parent in {Path(folder).parent for folder in job.folders}:
        if not (parent / weight_file).exists():
            continue  # v1: the memory and pids hierarchies have no weight
        jobs = sum(1 for entry in parent.iterdir() if entry.is_dir() and entry.name.startswith("job-"))
        try:
            _write(parent / weight_file, str(min(max(jobs, 1) * per_job, MAX_WEIGHT[job.version])))
        except OSError:
            pass  # a weight we may not set leaves the default: slower under load, never wrong


def sweep_stale(root: Path, now: float | None = None) -> list[str]:
    """Remove the empty cgroups that runs no longer alive left under ``root``: a grader killed with SIGKILL (or by
    the OOM killer) cannot remove its own, and each such run left three behind on a machine that grades all day.

    Only what the kernel lets go is removed: rmdir fails on a cgroup with a process or a child in it, so a group
    with anything still running stays. A parent whose process id is alive here, or that changed in the last
    STALE_AFTER seconds, stays too (a run in another PID namespace may share the hierarchy; its parent is
    recreated if it was removed between two submissions: CgroupManager.create). Returns the names removed."""
    removed = []
    now = time.time() if now is None else now
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = RUN_PARENT.fullmatch(entry.name)
        if not match or not entry.is_dir() or _alive(int(match["pid"])):
            continue
        try:
            if now - entry.stat().st_mtime < STALE_AFTER:
                continue
            for job in entry.iterdir():
                if job.is_dir() and job.name.startswith("job-"):
                    os.rmdir(job)
            os.rmdir(entry)
            removed.append(entry.name)
        except OSError:
            continue  # something still runs inside (or another grader removed it first): leave it
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, filesystem type, super options) of every cgroup mount."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
            found.append((fields[4], rest[0], rest[2].split(",")))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" for v2."""
    paths = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    except (OSError, ValueError):
        pass
    return paths


def _write(path: Path, value: str) -> None:
    path.write_text(value)


class CgroupManager:
    """Makes a cgroup per submission under one parent for this grader run; None where none can be made."""

    def __init__(self, root_v2: Path | None = None, roots_v1: dict[str, Path] | None = None):
        self.name = f"grader-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.root_v2, self.roots_v1 = root_v2, roots_v1
        self.parents: list[Path] = []

    @classmethod
    def detect(cls) -> "CgroupManager | None":
        """The first hierarchy under which this process may make cgroups with all three controllers."""
        own = _own_paths()
        for point, kind, options in _mounts():
            if kind == "cgroup2":
                base = Path(point) / own.get("", "/").lstrip("/")
                try:
                    available = (base / "cgroup.controllers").read_text().split()
                except OSError:
                    continue
                if all(c in available for c in CONTROLLERS) and os.access(base, os.W_OK):
                    return cls(root_v2=base)
        roots = {}
        for point, kind, options in _mounts():
            for controller in CONTROLLERS:
                if kind == "cgroup" and controller in options and controller not in roots:
                    base = Path(point) / own.get(controller, "/").lstrip("/")
                    if os.access(base, os.W_OK):
                        roots[controller] = base
        return cls(roots_v1=roots) if len(roots) == len(CONTROLLERS) else None

    def _parent_v2(self) -> Path:
        """v2 forbids processes in a cgroup that hands controllers down: move ours into a leaf first."""
        parent = self.root_v2 / self.name
        wanted = " ".join(f"+{c}" for c in CONTROLLERS)
        if not self.parents:
            sweep_stale(self.root_v2)
            parent.mkdir()
            self.parents.append(parent)
            try:
                _write(self.root_v2 / "cgroup.subtree_control", wanted)
            except OSError:
                leaf = self.root_v2 / f"{self.name}-grader"
                leaf.mkdir(exist_ok=True)
                for pid in (self.root_v2 / "cgroup.procs").read_text().split():
                    try:
                        _write(leaf / "cgroup.procs", pid)
                    except OSError:
                        pass
                _write(self.root_v2 / "cgroup.subtree_control", wanted)
            _write(parent / "cgroup.subtree_control", wanted)
        elif not parent.exists():  # removed between two submissions by another namespace's sweep (sweep_stale)
            parent.mkdir()
            _write(parent / "cgroup.subtree_control", wanted)
        return parent

    def create(self, memory_bytes: int, processes: int) -> JobCgroup:
        job = f"job-{uuid.uuid4().hex[:10]}"
        if self.root_v2 is not None:
            folder = self._parent_v2() / job
            folder.mkdir()
            _write(folder / "memory.max", str(memory_bytes))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
            _write(folder / "pids.max", str(processes))
            _write(folder / "cpu.weight", str(CPU_WEIGHT_V2))
            job = JobCgroup(2, (str(folder),))
            weigh_parent(job)
            return job
        folders = []
        for controller, root in self.roots_v1.items():
            parent = root / self.name
            if not parent.exists():
                if parent not in self.parents:
                    sweep_stale(root)
                    self.parents.append(parent)
                parent.mkdir()
            folder = parent / job
            folder.mkdir()
            folders.append(str(folder))
            if controller == "memory":
                _write(folder / "memory.limit_in_bytes", str(memory_bytes))
                if (folder / "memory.memsw.limit_in_bytes").exists():
                    _write(folder / "memory.memsw.limit_in_bytes", str(memory_bytes))
            elif controller == "pids":
                _write(folder / "pids.max", str(processes))
            elif controller == "cpu":
                _write(folder / "cpu.shares", str(CPU_SHARES_V1))
        job = JobCgroup(1, tuple(folders))
        weigh_parent(job)
        return job

    def close(self) -> None:
        for parent in reversed(self.parents):
            try:
                os.rmdir(parent)
            except OSError:
                pass
        self.parents.clear()
