"""Units of the sandbox, without a kernel: the seccomp program, file handling, the wire, cgroups, bwrap's arguments."""

import errno
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from grader import seccomp
from grader.cgroups import STALE_AFTER, CgroupManager, JobCgroup
from grader.files import (FileTooLarge, NotRegularFile, find_notebooks, read_regular_file, safe_name,
                          submission_names)
from grader.sandbox import (CONNECTION_FILE, NPROC_LAUNCHER, RUNTIME_BYTES, SANDBOX_RUNTIME, Limits, SandboxPlan,
                            bwrap_arguments)
from tests.conftest import NEEDS_CGROUPS, unavailable


# --------------------------------------------------------------------------- seccomp

def run_filter(program: bytes, nr: int, arch: int, args=(0, 0, 0, 0, 0, 0)) -> int:
    """A classic-BPF interpreter for the instructions the filter uses, over one struct seccomp_data."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == seccomp.BPF_LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == seccomp.BPF_RET_K:
            return k
        else:
            taken = {seccomp.BPF_JEQ_K: acc == k, seccomp.BPF_JGE_K: acc >= k, seccomp.BPF_JSET_K: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)


@pytest.mark.parametrize("arch", [seccomp.X86_64, seccomp.AARCH64], ids=["x86_64", "aarch64"])
def test_the_filter_refuses_escapes_and_allows_ordinary_calls(arch):
    program = seccomp.compiled(arch)
    eperm, allow = seccomp.RET_ERRNO | errno.EPERM, seccomp.RET_ALLOW
    for name in ("mount", "umount2", "unshare", "setns", "ptrace", "bpf", "keyctl", "pivot_root", "chroot"):
        assert run_filter(program, arch.numbers[name], arch.audit_arch) == eperm, name
    assert run_filter(program, arch.numbers["clone3"], arch.audit_arch) == seccomp.RET_ERRNO | errno.ENOSYS
    plain_fork = 0x01200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, as glibc's fork()
    assert run_filter(program, arch.numbers["clone"], arch.audit_arch, (plain_fork, 0, 0, 0, 0, 0)) == allow
    assert run_filter(program, arch.numbers["clone"], arch.audit_arch, (plain_fork | 0x10000000, 0, 0, 0, 0, 0)) == eperm
    assert run_filter(program, arch.numbers["ioctl"], arch.audit_arch, (0, seccomp.TIOCSTI, 0, 0, 0, 0)) == eperm
    assert run_filter(program, arch.numbers["ioctl"], arch.audit_arch, (0, 0x5401, 0, 0, 0, 0)) == allow  # TCGETS
    for ordinary in (0, 1, 2, 3, 9, 60, 231):  # read, write, open, close, mmap, exit, exit_group (x86 numbers)
        if ordinary not in arch.numbers.values():
            assert run_filter(program, ordinary, arch.audit_arch) == allow
    assert run_filter(program, 0, 0x40000003) == eperm  # another ABI (i386) is refused whole


@pytest.mark.parametrize("arch", [seccomp.X86_64, seccomp.AARCH64], ids=["x86_64", "aarch64"])
def test_io_uring_is_refused_and_sockets_are_an_allow_list_of_families(arch):
    program = seccomp.compiled(arch)
    eperm, allow = seccomp.RET_ERRNO | errno.EPERM, seccomp.RET_ALLOW
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert run_filter(program, arch.numbers[name], arch.audit_arch) == eperm, name
    for call in ("socket", "socketpair"):
        number = arch.numbers[call]
        for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):
            assert run_filter(program, number, arch.audit_arch, (family, socket.SOCK_STREAM, 0, 0, 0, 0)) == allow
        no_family = seccomp.RET_ERRNO | errno.EAFNOSUPPORT
        refused = [family for family in range(64) if family not in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6,
                                                                    socket.AF_NETLINK)]
        assert 40 in refused and socket.AF_PACKET in refused and 38 in refused  # 40: AF_VSOCK, 38: AF_ALG
        for family in refused:
            assert run_filter(program, number, arch.audit_arch, (family, 1, 0, 0, 0, 0)) == no_family, (call, family)
        # netlink only to list the sandbox's own interfaces (NETLINK_ROUTE, 0): not audit (9), uevents (15), ...
        assert run_filter(program, number, arch.audit_arch, (socket.AF_NETLINK, socket.SOCK_RAW, 0, 0, 0, 0)) == allow
        for protocol in range(1, 32):
            assert run_filter(program, number, arch.audit_arch, (socket.AF_NETLINK, socket.SOCK_RAW, protocol, 0, 0,
                                                                 0)) == no_family, protocol
        # the kernel reads the family as an int: high bits set above AF_UNIX are still AF_UNIX, and allowed
        assert run_filter(program, number, arch.audit_arch, ((1 << 32) | socket.AF_UNIX, 1, 0, 0, 0, 0)) == allow


def libseccomp():
    """The system's libseccomp (Debian's libseccomp2, installed by ./install.sh --test), or None."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("seccomp")
    if not name:
        return None
    resolve = ctypes.CDLL(name).seccomp_syscall_resolve_name_arch
    resolve.argtypes, resolve.restype = [ctypes.c_uint32, ctypes.c_char_p], ctypes.c_int
    return lambda arch, syscall: resolve(arch.audit_arch, syscall.encode())  # SCMP_ARCH_* are the AUDIT_ARCH_*


@pytest.mark.parametrize("arch", [seccomp.X86_64, seccomp.AARCH64], ids=["x86_64", "aarch64"])
def test_the_hand_typed_syscall_numbers_are_libseccomps(arch):
    resolve = libseccomp()
    if resolve is None:
        unavailable("libseccomp is not installed (./install.sh --test installs it)")
    for name, number in arch.numbers.items():
        assert resolve(arch, name) == number, name
    for name in seccomp.DENIED:  # a denied call left out of an architecture's table must not exist there
        if name not in arch.numbers:
            assert resolve(arch, name) < 0, f"{name} exists on this architecture but the filter does not refuse it"


def test_x32_numbers_are_refused_on_x86_64():
    assert run_filter(seccomp.compiled(seccomp.X86_64), 0x40000000 | 165, seccomp.X86_64.audit_arch) == \
        seccomp.RET_ERRNO | errno.EPERM


# --------------------------------------------------------------------------- files

def test_only_regular_files_are_read(tmp_path):
    real = tmp_path / "real.ipynb"
    real.write_text("{}")
    (tmp_path / "link.ipynb").symlink_to(real)
    os.mkfifo(tmp_path / "fifo.ipynb")
    assert read_regular_file(real, 100) == b"{}"
    with pytest.raises(NotRegularFile) as link:
        read_regular_file(tmp_path / "link.ipynb", 100)
    assert link.value.kind == "symbolic link"
    with pytest.raises(NotRegularFile) as fifo:  # returns at once: a FIFO with no writer does not block
        read_regular_file(tmp_path / "fifo.ipynb", 100)
    assert fifo.value.kind == "FIFO"
    with pytest.raises(NotRegularFile):
        read_regular_file(Path("/dev/zero"), 100)
    with pytest.raises(FileTooLarge):
        read_regular_file(real, 1)


def test_folders_are_walked_without_following_links(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.ipynb").write_text("{}")
    (tmp_path / "a" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "a" / ".ipynb_checkpoints" / "one-checkpoint.ipynb").write_text("{}")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret.ipynb").write_text("{}")
    (tmp_path / "a" / "linked").symlink_to(outside, target_is_directory=True)
    (tmp_path / "a" / "link.ipynb").symlink_to(outside / "secret.ipynb")
    found = find_notebooks([tmp_path])
    assert [p.name for p in found] == ["link.ipynb", "one.ipynb"]  # the link is listed (and refused when read)


@pytest.mark.parametrize("raw, check", [
    ("index.html", lambda n: n.lower() != "index.html"),
    ("gradebook.csv", lambda n: n.lower() != "gradebook.csv"),
    ("..", lambda n: n not in ("..", ".") and not n.startswith(".")),
    ("=HYPERLINK(\"x\")", lambda n: n[0] not in "=+-@"),
    ("\x1b[31mred\x07", lambda n: n == "31mred"),
    ("a/b\\c", lambda n: "/" not in n and "\\" not in n),
    ("学生 张三", lambda n: n == "学生_张三"),
    ("x" * 300, lambda n: len(n) <= 80),
])
def test_safe_names(raw, check):
    name = safe_name(raw)
    assert name and check(name), name
    assert all(ch.isprintable() for ch in name)


def test_colliding_names_stay_apart(tmp_path):
    paths = [tmp_path / "alice" / "x.ipynb", tmp_path / "mallory" / "alice__x.ipynb", tmp_path / "bob" / "x.ipynb",
             tmp_path / "Carol.ipynb", tmp_path / "sub" / "carol.ipynb", tmp_path / "unique.ipynb"]
    names = submission_names(paths)
    assert len({n.lower() for n in names.values()}) == len(paths)
    assert names[tmp_path / "unique.ipynb"] == "unique"
    assert names == submission_names(list(reversed(paths)))  # the same names whatever the order


# The wire's values and outcomes: tests/test_wire.py.


# --------------------------------------------------------------------------- cgroups

def fake_v1(root: Path) -> dict[str, Path]:
    roots = {}
    for controller in ("memory", "pids", "cpu"):
        roots[controller] = root / controller / "session"
        roots[controller].mkdir(parents=True)
    return roots


def test_v1_cgroup_gets_every_limit_and_is_removed(tmp_path):
    manager = CgroupManager(roots_v1=fake_v1(tmp_path))
    job = manager.create(memory_bytes=3 * 2**30, processes=256)
    folders = {Path(f).parents[2].name: Path(f) for f in job.folders}
    assert (folders["memory"] / "memory.limit_in_bytes").read_text() == str(3 * 2**30)
    assert (folders["pids"] / "pids.max").read_text() == "256"
    assert (folders["cpu"] / "cpu.shares").read_text() == "1024"
    for folder in folders.values():  # a real cgroupfs empties its files itself; the fake needs help to rmdir
        for f in folder.iterdir():
            f.unlink()
    job.remove()
    manager.close()
    assert not any(p.is_dir() and p.name.startswith("grader-") for c in ("memory", "pids", "cpu")
                   for p in (tmp_path / c / "session").iterdir())


def test_a_new_run_removes_what_dead_runs_left_and_nothing_else(tmp_path):
    """A grader killed with SIGKILL leaves its parent cgroup behind: the next run removes it, once it is empty, old
    enough, and its process is gone; a live run's, a just-made one and one with a process inside stay."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    roots = fake_v1(tmp_path)
    old = os.path.getmtime(tmp_path) - STALE_AFTER - 5

    def leftover(name: str, job_files: tuple[str, ...] = (), age: float | None = old) -> None:
        for root in roots.values():
            job = root / name / "job-0123456789"
            job.mkdir(parents=True)
            for file in job_files:  # a fake cgroup with a file in it cannot be removed: as one with a process
                (job / file).write_text("")
            if age is not None:
                os.utime(root / name, (age, age))

    leftover(f"grader-{dead.pid}-abc123")
    leftover(f"grader-{dead.pid}-def456", age=None)  # changed just now: maybe a run of another PID namespace
    leftover(f"grader-{dead.pid}-0a0b0c", job_files=("cgroup.procs",))
    leftover(f"grader-{os.getpid()}-fedcba")  # alive
    leftover("someone-else")
    manager = CgroupManager(roots_v1=roots)
    job = manager.create(memory_bytes=2**30, processes=64)
    for root in roots.values():
        assert sorted(p.name for p in root.iterdir()) == sorted(
            [f"grader-{dead.pid}-def456", f"grader-{dead.pid}-0a0b0c", f"grader-{os.getpid()}-fedcba",
             "someone-else", manager.name])
    assert all(Path(folder).is_dir() for folder in job.folders)
    for folder in job.folders:  # removed under a run that is still grading: its next submission makes it again
        for f in Path(folder).iterdir():
            f.unlink()
        os.rmdir(folder)
        os.rmdir(Path(folder).parent)
    assert all(Path(folder).parent.is_dir() for folder in manager.create(2**30, 64).folders)


def test_v2_cgroup_enables_controllers_and_sets_limits(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids")
    (tmp_path / "cgroup.procs").write_text("")
    (tmp_path / "cgroup.subtree_control").write_text("")
    manager = CgroupManager(root_v2=tmp_path)
    job = manager.create(memory_bytes=2**31, processes=100)
    folder = Path(job.folders[0])
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (folder / "memory.max").read_text() == str(2**31)
    assert (folder / "pids.max").read_text() == "100"
    assert (folder / "cpu.weight").read_text() == "100"
    assert JobCgroup.from_json(json.loads(json.dumps(job.to_json()))) == job


def test_oom_kills_are_read_from_either_version(tmp_path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert JobCgroup(2, (str(tmp_path),)).oom_kills() == 2
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert JobCgroup(1, (str(v1),)).oom_kills() == 1


# --------------------------------------------------------------------------- bwrap's arguments

def plan(uid, prefix="/opt/py", processes=0):
    return SandboxPlan(bwrap="/usr/bin/bwrap", runtime_dir="/tmp/job/k-1", etc_dir="/tmp/job/etc",
                       read_only=(prefix,), hidden=(f"{prefix}/lib/site-packages/reference",),
                       tmpfs_bytes=Limits().tmpfs_bytes, uid=uid, processes=processes)


def test_root_drops_to_an_unprivileged_uid_and_a_user_gets_a_user_namespace():
    as_root = bwrap_arguments(plan(65534), seccomp_fd=9)
    tail = as_root[as_root.index("--cap-drop"):]
    assert tail[:2] == ["--cap-drop", "ALL"] and "--reuid=65534" in tail and "--bounding-set=-all" in tail
    assert "--unshare-user" not in as_root  # a namespace made by root would keep root's uid outside
    as_user = bwrap_arguments(plan(None), seccomp_fd=None)
    assert as_user[-5:] == ["--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--"]
    assert "--seccomp" in as_root and as_root[as_root.index("--seccomp") + 1] == "9"


def test_the_view_is_an_allow_list_with_hidden_packages_covered_after_their_tree(tmp_path):
    prefix = tmp_path / "py"
    (prefix / "lib" / "site-packages" / "reference").mkdir(parents=True)
    args = bwrap_arguments(plan(65534, str(prefix)), seccomp_fd=None)
    assert ["--ro-bind", "/", "/"] != args[1:4] and "/" not in [args[i + 1] for i, a in enumerate(args) if a == "--ro-bind"]
    binds = [i for i, a in enumerate(args) if a == "--ro-bind"]
    tree = args.index(str(prefix))
    hidden = args.index(str(prefix / "lib" / "site-packages" / "reference"))
    assert args[hidden - 1] == "--tmpfs" and hidden > tree and min(binds) > max(
        i for i, a in enumerate(args) if a == "--dir")
    for path in ("/tmp", "/dev/shm", "/home/student"):
        i = next(i for i, a in enumerate(args) if a == path and args[i - 1] == "--tmpfs")
        assert args[i - 3] == "--size" and i < tree  # a prefix under /tmp (a checkout there) stays shown
    assert not any("shadow" in a for a in args)


def test_nothing_of_the_host_is_writable_and_the_socket_folder_is_a_capped_tmpfs():
    for args in (bwrap_arguments(plan(70001), None, info_fd=7), bwrap_arguments(plan(None, processes=256), None, 7)):
        assert "--bind" not in args and "--dev-bind" not in args  # only read-only binds of the host
        runtime = args.index(str(SANDBOX_RUNTIME))
        assert args[runtime - 1] == "--tmpfs" and args[runtime - 3:runtime - 1] == ["--size", str(RUNTIME_BYTES)]
        assert RUNTIME_BYTES <= 16 * 2**20
        connection = args.index(str(SANDBOX_RUNTIME / CONNECTION_FILE))
        assert args[connection - 2:connection] == ["--ro-bind", f"/tmp/job/k-1/{CONNECTION_FILE}"]
        # every mount is made before the root and /dev become read-only
        last_mount = max(i for i, a in enumerate(args) if a in ("--tmpfs", "--ro-bind", "--dir", "--symlink"))
        remounts = [i for i, a in enumerate(args) if a == "--remount-ro"]
        assert [args[i + 1] for i in remounts] == ["/", "/dev"] and min(remounts) > last_mount
        assert args[args.index("--info-fd") + 1] == "7"
        pts = args.index("/dev/pts")  # no pseudo-terminal: the machine's few are shared by everyone
        assert args[pts - 1] == "--tmpfs" and pts > args.index("--dev")


def test_a_user_namespace_sets_the_process_limit_inside_it_and_root_gives_the_kernel_its_uid():
    as_user = bwrap_arguments(plan(None, processes=256), None)
    after = as_user[as_user.index("--") + 1:]
    assert after[:4] == [sys.executable, "-I", "-S", "-c"] and after[5] == "256"
    assert "RLIMIT_NPROC" in after[4] and "execv" in after[4]
    as_root = bwrap_arguments(plan(70001), None)
    assert "--reuid=70001" in as_root and NPROC_LAUNCHER not in as_root  # root: the rlimit is set on the own uid


def test_the_launcher_sets_the_limit_and_becomes_the_command():
    done = subprocess.run([sys.executable, "-I", "-S", "-c", NPROC_LAUNCHER, "77", sys.executable, "-c",
                           "import resource; print(resource.getrlimit(resource.RLIMIT_NPROC))"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "(77, 77)", done.stderr


def test_each_kernel_gets_a_uid_of_its_own_from_the_reserved_range(monkeypatch):
    from grader import uids
    from grader.config import SANDBOX_UIDS

    taken = [uids.allocate() for _ in range(20)]
    try:
        assert len(set(taken)) == 20 and all(uid in SANDBOX_UIDS and uid != 65534 for uid in taken)
        assert not any(uids.in_use(uid) for uid in taken)  # no account, no process has them
        assert uids.in_use(0) and uids.in_use(os.getuid())
        # a uid an account or some process has is never handed out: here, every draw lands on one
        monkeypatch.setattr(uids, "in_use", lambda uid: True)
        with pytest.raises(OSError):
            uids.allocate()
    finally:
        for uid in taken:
            uids.release(uid)


def test_times_at_the_memory_limit_are_read_from_either_version(tmp_path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 2\n")
    assert JobCgroup(2, (str(tmp_path),)).limit_hits() == 7
    assert not JobCgroup(2, (str(tmp_path),)).peak_at_limit()
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.failcnt").write_text("41\n")  # not read: some kernels never count it
    (v1 / "memory.limit_in_bytes").write_text(f"{2**30}\n")
    (v1 / "memory.max_usage_in_bytes").write_text(f"{2**30 - 4096}\n")
    job = JobCgroup(1, (str(tmp_path / "pids"), str(v1)))  # the memory folder, whichever it is
    assert job.limit_hits() == 0 and job.peak_at_limit()
    (v1 / "memory.max_usage_in_bytes").write_text(f"{2**30 - 8 * 2**20}\n")
    assert not job.peak_at_limit()
    job.restart_peak()
    assert (v1 / "memory.max_usage_in_bytes").read_text() == "0"
    assert not (tmp_path / "pids" / "memory.max_usage_in_bytes").exists()  # written where it is, made nowhere
    assert not JobCgroup(1, (str(tmp_path / "nothing"),)).peak_at_limit()


@NEEDS_CGROUPS
def test_a_real_cgroup_tells_when_memory_use_reached_its_limit():
    """On a real kernel: a process killed at the limit, one that stayed below it, and the peak restarted between
    them (v1's memory.failcnt stays 0 after an OOM kill on this project's hosts: it cannot be what is read)."""
    from grader.execute import cgroup_manager

    manager = cgroup_manager()
    job = manager.create(memory_bytes=200 * 2**20, processes=16)
    try:
        def run(megabytes: int) -> int:
            child = subprocess.Popen([sys.executable, "-c", f"x = b'x' * ({megabytes} * 2**20)"],
                                     preexec_fn=job.join)
            return child.wait(30)

        job.restart_peak()
        kills, hits = job.oom_kills(), job.limit_hits()
        assert run(300) == -signal.SIGKILL
        assert job.oom_kills() == kills + 1
        assert job.peak_at_limit() or job.limit_hits() > hits
        job.restart_peak()
        hits = job.limit_hits()
        assert run(50) == 0
        assert not job.peak_at_limit() and job.limit_hits() == hits
    finally:
        job.remove()
        manager.close()


def test_a_cell_that_ran_out_of_time_at_the_memory_limit_is_reported_as_both():
    """Without swap a tree at its memory limit can crawl, freeing file pages it reads back at once, until its cell's
    time is up, with nothing killed: the report names the memory limit as well as the timeout."""
    from grader.model import CellRun, CellStatus, ErrorKind, WorkerRun
    from grader.pipeline import cell_errors

    def kinds(**cell) -> list:
        run = WorkerRun([CellRun(index=2, seconds=20.0, **cell)], {}, [], True, 20.0)
        return [(e.kind, e.cell) for e in cell_errors(run, Limits(cell_timeout=20))]

    assert kinds(status=CellStatus.TIMEOUT, memory_limit_hit=True) == [(ErrorKind.TIMEOUT, 2),
                                                                         (ErrorKind.MEMORY_LIMIT, 2)]
    assert kinds(status=CellStatus.TIMEOUT) == [(ErrorKind.TIMEOUT, 2)]
    assert kinds(status=CellStatus.OK, memory_limit_hit=True) == []  # reached and freed: nothing to say
    assert kinds(status=CellStatus.TIMEOUT, memory_limit_hit=True, oom_killed=True) == [
        (ErrorKind.TIMEOUT, 2), (ErrorKind.MEMORY_LIMIT, 2)]  # said once: a process was stopped


def test_a_forked_kernel_that_died_at_once_keeps_its_exit_status():
    """The monitor's first answer can carry the kernel's exit status too, and then close the line: the status that
    came is the kernel's, not the SIGKILL a silent end of the line stands for."""
    from grader.zygote import ForkedKernel

    ours, monitors = socket.socketpair()
    monitors.close()
    kernel = ForkedKernel(ours, 12345)
    kernel.pending = b'{"exit": 3}\n'  # what request_kernel keeps after the pid
    assert kernel.poll() == 3 and kernel.wait(1) == 3
    kernel.close()
    ours, monitors = socket.socketpair()
    monitors.sendall(b'{"exit": -11}\n{"sig')
    monitors.close()
    kernel = ForkedKernel(ours, 12345)
    assert kernel.poll() == -11
    kernel.close()
    ours, monitors = socket.socketpair()
    monitors.close()
    kernel = ForkedKernel(ours, 12345)
    assert kernel.poll() == -signal.SIGKILL
    kernel.close()
