"""The container tier (grader.container) and the tiers' choice, proven in an emulated default container.

tests/container_emulation.py runs the grader as a container runtime's default profile runs a
container's root: no CAP_SYS_ADMIN, namespaces refused by seccomp, so bubblewrap cannot work.
There the grader must pick the container tier (a uid of the kernel's own) or refuse, never
grade as root beside the secret: the hostile corpus runs under it, Gradescope's job runs under
it (and refuses when no uid can be changed), and a grader killed with SIGKILL leaves no kernel
and no process of a notebook behind, in every tier.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest

from assignments.attention_pooling.build_notebooks import REPO, SOLUTION, build_notebook
from grader import container, seccomp
from grader.config import SANDBOX_CHOICES
from grader.errors import SandboxUnavailable
from grader.execute import SANDBOX_TIERS, Enforcement, ExecutionOptions
from grader.model import SandboxTier
from grader.sandbox import bubblewrap
from tests.conftest import needs, unavailable
from tests.container_emulation import in_container
from tests.hostile_corpus import PRIVILEGE, PTY_PROBE, _reporting, _with_cell, corpus
from tests.test_hostile import listener  # noqa: F401 (a fixture: a TCP server on this machine's loopback)
from tests.test_zygote import assert_forked_without_privilege, facts_in, facts_notebook

SECRET = "secret-under-test-container-4e1a"  # the corpus's spy looks for "secret-under-test"
EMULATION_WORKS = os.geteuid() == 0 and shutil.which("bwrap") is not None and seccomp.architecture() is not None
EMULATION = needs(lambda: EMULATION_WORKS, "emulating a container needs root, bwrap (for a mount namespace) and a "
                                           "seccomp architecture")
CLEAN = {k: v for k, v in os.environ.items() if k not in ("GRADER_SECRET",)}


@pytest.fixture(scope="module", autouse=True)
def checkout_modes_restored():
    """The container tier closes this checkout to other users (chmod o-rwx) wherever it grades from it, as it must;
    the modes are put back afterwards for the tests that run the grader from it as another user
    (test_unprivileged.py)."""
    modes = {}
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not (folder == str(REPO) and d == ".venv")]
        for name in [*dirs, *files]:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                modes[path] = os.stat(path).st_mode
    modes[str(REPO)] = os.stat(REPO).st_mode
    yield
    for path, mode in modes.items():
        try:
            os.chmod(path, stat.S_IMODE(mode))
        except OSError:
            pass


def scores_of(row):
    return [(c["id"], c["message"]) for e in row["exercises"] for c in e["checks"] if not c["passed"]]


def open_folder(path: Path) -> Path:
    """A folder as a careless instructor leaves it: readable by everyone (the tier must close it itself)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


# --------------------------------------------------------------------------- units

def test_every_sandbox_choice_names_its_tiers():
    assert set(SANDBOX_TIERS) == set(SANDBOX_CHOICES)
    assert SandboxTier.NONE not in SANDBOX_TIERS["require"]


@pytest.mark.parametrize("works, choice, expected", [
    ({"namespaces", "uid"}, "auto", "namespaces"), ({"uid"}, "auto", "uid"), (set(), "auto", "none"),
    ({"uid"}, "require", "uid"), (set(), "require", None), ({"uid"}, "namespaces", None),
    ({"namespaces", "uid"}, "uid", "uid"), ({"namespaces"}, "off", "none")])
def test_the_best_tier_the_choice_accepts_is_taken_or_none_is_refused(monkeypatch, works, choice, expected):
    from grader import execute

    monkeypatch.setattr(execute, "tier_available", lambda tier: tier == SandboxTier.NONE or str(tier) in works)
    options = ExecutionOptions(sandbox=choice)
    if expected is None:
        with pytest.raises(SandboxUnavailable):
            options.tier()
    else:
        assert options.tier() == expected


def test_the_container_tier_is_reported_as_missing_namespaces():
    assert Enforcement(SandboxTier.UID, cgroup=True).missing() == ["namespaces"]  # its kernel's uid is its own
    assert Enforcement(SandboxTier.NONE, cgroup=True).missing() == ["sandbox", "user"]
    assert Enforcement(SandboxTier.NAMESPACES, cgroup=True, own_user=True).missing() == []  # root's bubblewrap
    assert Enforcement(SandboxTier.NAMESPACES, cgroup=True).missing() == ["user"]  # a user's bubblewrap


def test_protect_closes_everything_but_the_way_to_the_interpreter(tmp_path):
    checkout = open_folder(tmp_path / "checkout")
    venv = open_folder(checkout / ".venv" / "lib")
    package = open_folder(checkout / "grader")
    inside_prefix = open_folder(venv / "site-packages" / "grader")  # an install inside the prefix: hidden when named
    for path in (checkout / "secret", package / "cli.py", venv / "os.py"):
        path.write_text("x")
        path.chmod(0o644)
    left = container.protect([checkout, inside_prefix], keep=[checkout / ".venv"])
    assert left == []
    assert stat.S_IMODE(checkout.stat().st_mode) == 0o751  # searchable, not listable: the way to .venv
    for closed in (checkout / "secret", package, inside_prefix):
        assert not closed.stat().st_mode & 0o007 and not container.reachable_by_others(closed)
    assert stat.S_IMODE((venv / "os.py").stat().st_mode) == 0o644  # the interpreter's files stay readable
    assert stat.S_IMODE(venv.stat().st_mode) == 0o755


def test_no_kernel_starts_in_the_container_tier_while_a_private_path_stays_reachable(monkeypatch, tmp_path):
    from grader import execute

    monkeypatch.setattr(execute, "tier_available", lambda tier: tier != SandboxTier.NAMESPACES)
    monkeypatch.setattr(container, "protect", lambda paths, keep: [Path("/srv/course/reference")])
    started = []
    monkeypatch.setattr(execute.subprocess, "Popen", lambda *a, **k: started.append(a))
    with pytest.raises(SandboxUnavailable, match="/srv/course/reference"):
        execute.WorkerProcess(ExecutionOptions(sandbox="uid", scratch_root=tmp_path), [], [])
    assert started == [] and list(tmp_path.iterdir()) == []  # no worker, no reaper, no folder left


@pytest.mark.parametrize("command", [["prairielearn", "run", "--student-dir"],
                                     ["gradescope", "run", "--submission-dir"]])
def test_the_platforms_entry_points_refuse_to_grade_without_a_sandbox_even_with_auto(monkeypatch, tmp_path, capsys,
                                                                                    command):
    from grader import cli, execute

    monkeypatch.setattr(execute, "tier_available", lambda tier: tier == SandboxTier.NONE)
    (tmp_path / "upload").mkdir()
    nbformat.write(build_notebook(SOLUTION), tmp_path / "upload" / "attention_pooling.ipynb")
    (tmp_path / "secret").write_text(SECRET)
    results = tmp_path / "results" / "results.json"
    code = cli.main([*command, str(tmp_path / "upload"), "--results", str(results), "--secret-file",
                     str(tmp_path / "secret"), "--assignment", "attention_pooling", "--sandbox", "auto"])
    assert code == cli.EXIT_NO_SANDBOX and not results.exists()
    assert "Refusing to grade" in capsys.readouterr().err


def test_a_kernel_uid_is_mapped_unused_and_no_account():
    import pwd

    from grader import uids

    uid = uids.allocate()
    try:
        assert any(uid in span for span in uids.mapped_uids())
        assert not uids.in_use(uid) and uid >= 40_000
        with pytest.raises(KeyError):
            pwd.getpwuid(uid)
    finally:
        uids.release(uid)


@pytest.mark.skipif(seccomp.architecture() is None, reason="no seccomp filter for this processor")
def test_the_container_tiers_filter_leaves_only_unix_sockets():
    probe = """
import ctypes, errno, socket
from grader import seccomp
from grader.container import _SockFprog
data = seccomp.compiled(seccomp.architecture(), network=False)
buf = ctypes.create_string_buffer(data, len(data))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(_SockFprog(len(data) // 8, ctypes.cast(buf, ctypes.c_void_p))), 0, 0) == 0
socket.socket(socket.AF_UNIX).close()
socket.socketpair()
for family in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET, 40):  # 40: AF_VSOCK
    try:
        socket.socket(family, socket.SOCK_RAW if family in (16, 17) else socket.SOCK_STREAM)  # netlink, packet
    except OSError as exc:
        assert exc.errno == errno.EOPNOTSUPP, (family, exc)
    else:
        raise AssertionError(family)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_the_ci_examples_grade_as_root_with_a_sandbox_required_or_opt_out_by_name():
    """examples/ci: every grading command runs under sudo with --sandbox require (exit 4, never unsandboxed, where
    the runner has no sandbox); only the student's self-check of their own code says --sandbox off."""
    import re

    commands = []
    for workflow in sorted((REPO / "examples" / "ci").glob("*.yml")):
        text = re.sub(r"\n\s+(?=--)", " ", workflow.read_text())  # folded continuation lines
        commands += [(workflow.name, line.strip()) for line in text.splitlines()
                     if re.search(r"grader (grade|check)\b", line) and not line.lstrip().startswith("#")]
    assert len(commands) >= 4
    for name, command in commands:
        if " grade " in command:
            assert command.startswith("sudo ") and "--sandbox require" in command, (name, command)
            assert "--secret " not in command, (name, command)  # from the environment: no command line shows it
        else:
            assert "--sandbox off" in command and name == "grade-student-repo.yml", (name, command)


# --------------------------------------------------------------------------- the choice in an emulated container

@EMULATION
def test_in_a_default_container_auto_takes_the_uid_tier_and_without_setuid_none():
    code = "from grader.execute import ExecutionOptions; print(ExecutionOptions().tier())"
    for no_setuid, expected in ((False, "uid"), (True, "none")):
        done = subprocess.run(in_container([sys.executable, "-c", code], no_setuid), capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        assert done.stdout.strip() == expected, done.stderr[-2000:]


@EMULATION
def test_in_the_container_tier_a_secret_on_the_command_line_is_refused(tmp_path):
    """Every process's command line is readable there (/proc is shared): the secret must come another way."""
    nbformat.write(build_notebook(SOLUTION), tmp_path / "s.ipynb")
    done = subprocess.run(in_container([sys.executable, "-m", "grader.cli", "grade", str(tmp_path / "s.ipynb"), "--out",
                                        str(tmp_path / "out"), "--secret", SECRET]), capture_output=True, text=True,
                          cwd=REPO, timeout=120, env=CLEAN)
    assert done.returncode == 2 and "GRADER_SECRET" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the hostile corpus in the container tier

# Without a mount namespace the kernel shares this machine's tree: what the tier promises is that nothing of the
# grader's can be read, listed or written (a name directly inside a folder on the way to the interpreter, such as
# the checkout's README.md beside .venv, can be tested for existence). So this reader tries to open, not to stat.
READER = """
import glob, os
found = []
for path in PATHS + glob.glob("/tmp/nbjob-*") + glob.glob("/tmp/*/nbjob-*") + glob.glob("/dev/shm/k-*"):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        if not path.startswith("/dev/shm/k-") or os.stat(path).st_uid != os.getuid():  # its own folder is its own
            found.append(path)
    except OSError:
        pass
if any(word in key or word in value for key, value in os.environ.items() for word in ("GRADER", "SECRET")):
    found.append("environment")
"""


# Signal 0 asks the kernel whether a signal would be allowed, and sends none: on a shared machine a real SIGKILL
# to every process would hit other users' work were the tier broken.
SIGNALLER = """
import os
found = []
for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
    try:
        owner = os.stat(f"/proc/{pid}").st_uid
        os.kill(pid, 0)
    except OSError:
        continue
    if owner != os.getuid():  # the grader, its worker, anyone else's process: none may be signalled
        found.append(pid)
"""


def reader(paths: list[str]):
    """The solution, whose predicted_exponent goes wrong if the kernel could read or list any of ``paths``."""
    return _reporting(READER.replace("PATHS", repr(paths)), "found")


ENTRIES = ("privilege", "reader", "signaller", "spy", "socket", "fake_results", "forged_outcomes", "fork_bomb",
           "background_process")


@pytest.fixture(scope="module")
def contained(listener):  # noqa: F811
    work = open_folder(Path(tempfile.mkdtemp(prefix="grader-container-", dir="/var/tmp")))
    subs, out = open_folder(work / "subs"), work / "out"
    tag = uuid.uuid4().hex[:8]
    write_targets = [str(out / "stolen.txt"), str(subs / "canary.txt"), str(REPO / f"canary-{tag}"),
                     str(REPO / "reference" / f"canary-{tag}")]
    # the spy checks existence: these lie in folders the tier closes (not beside the interpreter's .venv)
    reference = [str(REPO / "reference" / "attention_pooling.py"), str(REPO / "assignments" / "attention_pooling" /
                 "checks.py"), str(REPO / "tests" / "submissions.py"), str(subs / "right.ipynb")]
    readable = [str(REPO / "README.md"), str(REPO / ".git"), str(REPO / "grader" / "cli.py"), *reference, str(REPO),
                "/etc/shadow", str(subs), str(out), str(Path.home())]
    entries = corpus(reference, [tuple(listener)], write_targets, [], [],
                     ["ex1.parzen_density", "ex4.predicted_exponent"])
    entries["reader"] = (reader(readable), set(), [])
    entries["signaller"] = (_reporting(SIGNALLER, "found"), set(), [])
    # Pseudo-terminals: /dev/ptmx is open to every user and no seccomp rule can tell its path, so the container tier
    # does not refuse them (docs/security.md says so); the namespaces tier does (test_hostile). Everything else holds.
    entries["privilege"] = (_reporting(PRIVILEGE.replace(PTY_PROBE, ""), "found"), set(), [])
    nbformat.write(build_notebook(SOLUTION), subs / "right.ipynb")
    for name in ENTRIES:
        nbformat.write(entries[name][0], subs / f"{name}.ipynb")
    nbformat.write(facts_notebook(), subs / "facts.ipynb")
    for path in subs.iterdir():
        path.chmod(0o644)
    argv = [sys.executable, "-m", "grader.cli", "grade", str(subs), "--out", str(out), "--jobs", "2",
            "--cell-timeout", "15", "--call-timeout", "10", "--budget", "240", "--sandbox", "require"]
    done = subprocess.run(in_container(argv), capture_output=True, text=True, timeout=900, cwd=REPO,
                          env={**CLEAN, "GRADER_SECRET": SECRET})
    rows = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/result.json")}
    yield done, rows, out, write_targets
    for target in write_targets:
        Path(target).unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)


@EMULATION
def test_the_container_tier_grades_and_says_so(contained):
    done, rows, out, _ = contained
    assert set(rows) == {"right", "facts", *ENTRIES}, done.stderr[-3000:]
    assert {row["sandbox_tier"] for row in rows.values()} == {"uid"}
    assert all(row["sandboxed"] and "namespaces" in row["unenforced"] for row in rows.values())
    assert "container tier" in done.stderr
    assert "container tier" in (out / "right" / "report.html").read_text()
    assert rows["right"]["score"] == 26, scores_of(rows["right"])


@EMULATION
def test_in_the_container_tier_kernels_are_forked_by_the_zygote_and_drop_everything(contained):
    facts = facts_in(contained[1]["facts"])
    assert_forked_without_privilege(facts)
    assert facts["uid"] not in (0, 65534) and facts["ppid"] != 0  # a uid of its own; no PID namespace here


@EMULATION
@pytest.mark.parametrize("name", ["privilege", "reader", "signaller", "spy", "socket", "fake_results"])
def test_in_the_container_tier_a_kernel_has_no_privilege_sees_nothing_and_reaches_nothing(contained, name):
    """privilege: capabilities, root, mount, unshare, ptrace, bpf; reader: the grader's files, the job folders, other
    kernels' folders, the environment; signaller: the grader and every process not its own; spy: the secret in any
    process's environment or command line, the reference; socket: this machine's loopback; fake_results: writing
    into the class's folders, the checkout and the worker's result."""
    rows = contained[1]
    assert rows[name]["score"] == 26, scores_of(rows[name])


@EMULATION
def test_in_the_container_tier_forged_outcomes_earn_nothing_and_nothing_is_written(contained):
    done, rows, out, write_targets = contained
    assert rows["forged_outcomes"]["score"] == 0
    for target in write_targets:
        assert not Path(target).exists() or "CANARY" not in Path(target).read_text(errors="replace"), target
    assert not any(SECRET in p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


@EMULATION
def test_in_the_container_tier_processes_are_limited_and_none_survives(contained):
    rows = contained[1]
    assert "process-limit" in {e["kind"] for e in rows["fork_bomb"]["errors"]}
    lost = [(c["id"], c["status"], c.get("message")) for e in rows["fork_bomb"]["exercises"] for c in e["checks"]
            if c["status"] != "passed"]
    assert rows["fork_bomb"]["score"] == 26, (lost, rows["fork_bomb"]["errors"])
    from tests.hostile_corpus import MARKER_SLEEP

    from grader.uids import RANGES

    kernel_uids = RANGES  # other tests' sleepers are not ours
    survivors = [p.info for p in psutil.process_iter(["pid", "cmdline", "uids"])
                 if p.info["cmdline"] and MARKER_SLEEP in " ".join(p.info["cmdline"])
                 and any(p.info["uids"].real in span for span in kernel_uids)]
    assert survivors == []


# --------------------------------------------------------------------------- Gradescope in a default container

@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    target = tmp_path_factory.mktemp("build") / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "build", "--out", str(target),
                           "--assignment", "attention_pooling", "--exercise", "ex4", "--cell-timeout", "30"],
                          env={**CLEAN, "GRADER_SECRET": SECRET}, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return target


def gradescope_job(root: Path, autograder: Path, notebook, no_setuid: bool = False):
    """Gradescope's /autograder in ``root``, laid out world-readable as an image's files are (the zip's modes are
    dropped on extraction: the secret too), run in an emulated default container."""
    open_folder(root)
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    open_folder(root / "submission")
    open_folder(root / "results")
    nbformat.write(notebook, root / "submission" / "attention_pooling.ipynb")
    env = {**CLEAN, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable}
    return subprocess.run(in_container([str(root / "source" / "run_autograder")], no_setuid), cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


@EMULATION
def test_gradescope_in_a_default_container_grades_in_the_uid_tier_and_the_upload_sees_nothing(autograder):
    root = Path(tempfile.mkdtemp(prefix="autograder-", dir="/var/tmp"))
    try:
        secret_places = [root / "source" / "secret", root / "source" / "reference" / "attention_pooling.py",
                         root / "source" / "assignments" / "attention_pooling" / "checks.py", root / "results"]
        # it scores its ex4 check only if it can read none of these
        notebook = reader(list(map(str, secret_places)))
        done = gradescope_job(root, autograder, notebook)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "container tier" in done.stderr
        results = json.loads((root / "results" / "results.json").read_text())
        assert results["score"] == sum(t["max_score"] for t in results["tests"]) > 0, results
        assert SECRET not in json.dumps(results)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@EMULATION
def test_gradescope_in_a_container_that_cannot_change_uid_refuses_to_grade(autograder):
    root = Path(tempfile.mkdtemp(prefix="autograder-", dir="/var/tmp"))
    try:
        done = gradescope_job(root, autograder, build_notebook(SOLUTION), no_setuid=True)
        assert done.returncode == 4, done.stderr[-3000:]
        assert "Refusing to grade" in done.stderr
        assert list((root / "results").iterdir()) == []  # no results.json: nothing was graded as root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- a killed grader leaves nothing behind

def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(procs: list[psutil.Process]) -> list[tuple[int, list[str]]]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append((p.pid, p.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return left


@pytest.mark.parametrize("tier", ["namespaces", "uid", "none"])
def test_a_grader_killed_with_sigkill_leaves_no_kernel_and_no_process_of_the_notebook(tmp_path, tier):
    if tier == "namespaces" and not bubblewrap():
        unavailable("bubblewrap does not work here")
    if tier == "uid" and not EMULATION_WORKS:
        unavailable("emulating a container needs root, bwrap and seccomp")
    marker = str(40000 + uuid.uuid4().int % 20000)
    notebook = _with_cell(f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                          "import time\ntime.sleep(600)")
    folder = tmp_path / "subs"
    folder.mkdir()
    nbformat.write(notebook, folder / "sleeper.ipynb")
    argv = [sys.executable, "-m", "grader.cli", "grade", str(folder), "--out", str(tmp_path / "out"), "--jobs", "1",
            "--cell-timeout", "600", "--budget", "600", "--sandbox", "off" if tier == "none" else tier]
    grader = subprocess.Popen(in_container(argv) if tier == "uid" else argv, cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**CLEAN, "GRADER_SECRET": SECRET})
    try:
        deadline = time.monotonic() + 240
        sleeper = []
        while not sleeper and time.monotonic() < deadline and grader.poll() is None:
            time.sleep(0.5)
            sleeper = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]
        assert sleeper, "the notebook's background process never started"
        tree = descendants(grader.pid)
        kernels = [p for p in tree if "ipykernel_launcher" in " ".join(p.cmdline())]
        assert kernels
        target = next(p for p in [psutil.Process(grader.pid), *tree] if p.cmdline()[1:3] == ["-m", "grader.cli"])
        os.kill(target.pid, signal.SIGKILL)
        watched = [*tree, *sleeper]
        deadline = time.monotonic() + 20
        while alive(watched) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive(watched) == []
    finally:
        grader.kill()
        grader.wait()
        for p in psutil.process_iter(["cmdline"]):
            if p.info["cmdline"] == ["sleep", marker]:
                p.kill()
