"""The same sandbox, started by an unprivileged user: CI runs as root, so this test drops to one.

The grader CLI runs as uid 65534 inside an outer mount namespace that shows the Python
prefix under /root (which is mode 0700 here). It then starts bubblewrap itself, unprivileged,
in a user namespace. Without cgroups (a user cannot make them here) it must say which
limits are not enforced, and the kernel must still hold no capability, see nothing, write nowhere
uncapped, and have a process limit of its own: a neighbour holding processes costs it nothing.
Run by a normal user the main hostile corpus already covers this start mode.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from assignments.attention_pooling.build_notebooks import REPO, SOLUTION, build_notebook
from grader.sandbox import NOBODY
from tests.conftest import NEEDS_BUBBLEWRAP, NEEDS_ROOT
from tests.container_emulation import outer_namespace
from tests.hostile_corpus import corpus
from tests.test_zygote import assert_forked_without_privilege, facts_in, facts_notebook

pytestmark = [NEEDS_ROOT, NEEDS_BUBBLEWRAP]
SECRET = "unprivileged-secret-5c1d"
ENTRIES = ("privilege", "visible", "spy", "forged_outcomes", "fork_bomb", "process_holder", "write_everywhere",
           "memory_hog", "tmpfs_fill")  # one of each kind of attack the root corpus (test_hostile.py) holds


def as_unprivileged_user(argv: list[str], home: Path) -> list[str]:
    """argv run as NOBODY, in a mount namespace where the root-only folders holding Python are traversable."""
    outer = outer_namespace()
    return [*outer, "--", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
            "env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", f"GRADER_SECRET={SECRET}", *argv]


@pytest.fixture(scope="module")
def graded():
    work = Path(tempfile.mkdtemp(prefix="grader-unprivileged-", dir="/var/tmp"))
    work.chmod(0o777)
    subs, out = work / "subs", work / "out"
    subs.mkdir()
    nbformat.write(build_notebook(SOLUTION), subs / "right.ipynb")
    visible = [p for p in [str(REPO / "README.md"), str(REPO / "grader" / "cli.py"), "/etc/shadow", "/root/.bashrc",
                           str(out), str(subs), "/srv", "/var/tmp"] if os.path.exists(p)]
    entries = corpus([str(REPO / "reference" / "attention_pooling.py")], [], [], visible, [str(subs)],
                     ["ex1.parzen_density", "ex4.predicted_exponent"])
    for name in ENTRIES:
        nbformat.write(entries[name][0], subs / f"{name}.ipynb")
    nbformat.write(facts_notebook(), subs / "facts.ipynb")
    for path in [work, subs, *subs.iterdir()]:
        os.chown(path, NOBODY, NOBODY)
    argv = [sys.executable, "-m", "grader.cli", "grade", str(subs), "--out", str(out), "--jobs", "2",
            "--cell-timeout", "15", "--call-timeout", "10", "--budget", "240", "--sandbox", "require"]
    done = subprocess.run(as_unprivileged_user(argv, work), capture_output=True, text=True, timeout=900, cwd=REPO)
    rows = {name: json.loads((out / name / "result.json").read_text()) for name in ["right", "facts", *ENTRIES]
            if (out / name / "result.json").exists()}
    yield done, rows, out, entries
    shutil.rmtree(work, ignore_errors=True)


def test_the_cli_grades_as_an_unprivileged_user_and_says_what_is_not_enforced(graded):
    done, rows, *_ = graded
    from grader.model import UNGRADABLE

    ungradable = {name for name, row in rows.items() if any(e["kind"] in UNGRADABLE for e in row["errors"])}
    assert ungradable <= {"forged_outcomes"}  # its kernel broke the protocol past restarting: exit 3 says so
    assert done.returncode == (3 if ungradable else 0), done.stderr[-3000:]
    assert set(rows) == {"right", "facts", *ENTRIES}
    assert "no cgroup" in done.stderr  # a user cannot make cgroups here: said loudly, once per run
    assert all(row["sandboxed"] for row in rows.values())
    # the kernel runs as the grader's user: its per-user counts beyond processes are shared, and that is said
    assert rows["right"]["unenforced"] == ["cgroup", "user"]


@pytest.mark.parametrize("name", ["right", "privilege", "visible", "spy", "process_holder", "write_everywhere"])
def test_no_privilege_and_nothing_visible_when_started_unprivileged(graded, name):
    """process_holder holds most of the process limit while its neighbour grades: each sandbox counts its own
    (before, the limit counted the uid across the machine and the neighbour scored 22/26 or worker-failed)."""
    rows = graded[1]
    assert rows[name]["score"] == 26, [(c["id"], c["message"]) for e in rows[name]["exercises"]
                                       for c in e["checks"] if not c["passed"]]


def test_forged_outcomes_earn_nothing_unprivileged(graded):
    assert graded[1]["forged_outcomes"]["score"] == 0


def test_process_limit_without_cgroup_falls_back_to_rlimit(graded):
    row = graded[1]["fork_bomb"]
    assert "process-limit" in {e["kind"] for e in row["errors"]}
    assert row["score"] == 26


@pytest.mark.parametrize("name", ["memory_hog", "tmpfs_fill"])
def test_limits_without_cgroup_are_reported_as_such(graded, name):
    rows, entries = graded[1], graded[3]
    kinds = entries[name][1]
    assert kinds and kinds <= {e["kind"] for e in rows[name]["errors"]}, rows[name]["errors"]


def test_kernels_are_forked_by_the_zygote_into_a_users_sandbox(graded):
    facts = facts_in(graded[1]["facts"])
    assert_forked_without_privilege(facts)
    assert facts["uid"] == NOBODY and facts["ppid"] == 0 and facts["pids"] < 10  # in the sandbox's namespaces
