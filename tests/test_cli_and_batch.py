"""The command line, batch resume, the gradebook and the LMS/CI formats, self_check, and the fallback without sandbox."""

import csv
import io
import json
import re
import subprocess
import sys
import time
from xml.etree import ElementTree as ET

import nbformat
import pytest

from assignments.attention_pooling.build_notebooks import SOLUTION, STUBS, build_notebook
from grader import cli, commands
from grader.assignment import load_assignment
from grader.execute import ExecutionOptions
from grader.pipeline import GradingOptions, grade_submission
from grader.sandbox import Limits
from tests.conftest import NEEDS_BUBBLEWRAP, available
from tests.submissions import MISTAKES

ONLY_EX4 = ["--exercise", "ex4"]  # keeps these runs short; the exercises are covered in test_grading.py


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    nbformat.write(build_notebook(SOLUTION), folder / "ann.ipynb")
    nbformat.write(build_notebook(MISTAKES["mistakes_a"][0]), folder / "ben.ipynb")
    nbformat.write(build_notebook(STUBS), folder / "cat.ipynb")
    return folder


@pytest.fixture(scope="module")
def graded_class(class_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    extra = tmp_path_factory.mktemp("extra")
    code = cli.main(["grade", str(class_folder), "--out", str(out), "--secret", "s3", "--jobs", "2", "--quiet",
                     "--gradescope", str(extra / "gs.json"), "--prairielearn", str(extra / "pl.json"),
                     "--junit", str(extra / "junit.xml"), "--summary-md", str(extra / "summary.md"),
                     "--fail-under", "1", *ONLY_EX4])
    return code, out, extra


def test_grade_writes_results_reports_and_gradebooks(graded_class):
    code, out, _ = graded_class
    assert code == cli.EXIT_BELOW  # cat's template scores 0 < --fail-under 1
    for name in ("ann", "ben", "cat"):
        assert json.loads((out / name / "result.json").read_text())["submission"] == name
        assert (out / name / "report.html").read_text().startswith("<!DOCTYPE html>")
    rows = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text(encoding="utf-8-sig"))))  # BOM: for Excel
    assert [(r["submission"], float(r["ex4"]), float(r["total"])) for r in rows] == [
        ("ann", 6.0, 6.0), ("ben", 4.0, 4.0), ("cat", 0.0, 0.0)]
    book = json.loads((out / "gradebook.json").read_text())
    assert [s["total"] for s in book["submissions"]] == [6.0, 4.0, 0.0]


def test_lms_and_ci_formats(graded_class):
    _, _, extra = graded_class
    gradescope = json.loads((extra / "gs.ben.json").read_text())
    assert gradescope["score"] == 4.0 and {t["visibility"] for t in gradescope["tests"]} == {"visible"}
    assert any("-1/(d+2)" in t["output"] for t in gradescope["tests"])
    assert all({"score", "max_score", "name", "output"} <= set(t) for t in gradescope["tests"])
    prairie = json.loads((extra / "pl.ann.json").read_text())
    assert prairie["score"] == 1.0 and prairie["gradable"] is True
    assert all({"name", "points", "max_points", "message"} <= set(t) for t in prairie["tests"])
    suites = ET.fromstring((extra / "junit.xml").read_text()).findall("testsuite")
    by_name = {s.get("name"): s for s in suites}
    assert by_name["ann"].get("failures") == "0" and by_name["ben"].get("failures") == "1"
    failure = by_name["ben"].find("testcase[@name='ex4.predicted_exponent']/failure")
    assert "-1/(d+2)" in failure.text
    assert "| ann |" in (extra / "summary.md").read_text()


def test_rerun_skips_unchanged_submissions_and_regrades_changed_ones(class_folder, graded_class):
    _, out, _ = graded_class
    # graded.json is the machine grading (result.json is re-published every run, with any reviews).
    before = {n: (out / n / "graded.json").stat().st_mtime_ns for n in ("ann", "ben", "cat")}
    nbformat.write(build_notebook(SOLUTION), class_folder / "cat.ipynb")  # cat fixes the notebook
    started = time.monotonic()
    code = cli.main(["grade", str(class_folder), "--out", str(out), "--secret", "s3", "--quiet", *ONLY_EX4])
    assert code == cli.EXIT_OK
    after = {n: (out / n / "graded.json").stat().st_mtime_ns for n in ("ann", "ben", "cat")}
    assert after["ann"] == before["ann"] and after["ben"] == before["ben"] and after["cat"] != before["cat"]
    assert json.loads((out / "cat" / "result.json").read_text())["score"] == 6.0
    assert time.monotonic() - started < 60
    cli.main(["grade", str(class_folder / "ann.ipynb"), "--out", str(out), "--secret", "s3", "--quiet", "--force",
              *ONLY_EX4])
    assert (out / "ann" / "graded.json").stat().st_mtime_ns != before["ann"]


def test_a_different_secret_is_not_skipped(class_folder, graded_class):
    from grader.batch import BatchItem, cached_result, grading_key

    _, out, _ = graded_class
    assignment = load_assignment("attention_pooling")
    nb = class_folder / "ann.ipynb"
    same = GradingOptions(secret="s3", exercises=("ex4",), execution=ExecutionOptions(Limits()))
    other = GradingOptions(secret="s4", exercises=("ex4",), execution=ExecutionOptions(Limits()))
    assert cached_result(out, BatchItem(nb, "ann", grading_key(nb, assignment, same))) is not None
    assert cached_result(out, BatchItem(nb, "ann", grading_key(nb, assignment, other))) is None


def test_check_command_for_a_student(tmp_path, capsys):
    path = tmp_path / "mine.ipynb"
    nbformat.write(build_notebook(MISTAKES["mistakes_b"][0]), path)
    code = cli.main(["check", str(path), *ONLY_EX4])
    printed = capsys.readouterr().out
    assert code == cli.EXIT_BELOW
    # Marks are as wide as the language's widest ("GRADED ONLY"): "[       PASS]".
    assert "does not depend on the dimension" in printed
    assert re.search(r"\[ +PASS\]", printed) and re.search(r"\[ +FAIL\]", printed)
    assert (tmp_path / "mine.report.html").exists()


@pytest.mark.parametrize("argv, code", [
    (["grade", "nowhere.ipynb", "--out", "x", "--secret", "s"], cli.EXIT_USAGE),
    (["grade", "."], cli.EXIT_USAGE),  # --out missing
    (["check", "nowhere.ipynb"], cli.EXIT_USAGE),
    (["frobnicate"], cli.EXIT_USAGE),
])
def test_usage_errors_exit_2(argv, code, capsys):
    assert cli.main(argv) == code


def test_grade_without_a_secret_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GRADER_SECRET", raising=False)
    assert cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "o"), "--assignment", "attention_pooling"]) \
        == cli.EXIT_USAGE
    assert "secret" in capsys.readouterr().err


def test_ungradable_submission_exits_3(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{")  # names no assignment: with two installed, one is named here
    assert cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "o"), "--public", "--quiet",
                     "--assignment", "attention_pooling"]) == cli.EXIT_UNGRADABLE
    assert "could not be graded as a notebook" in (tmp_path / "o" / "gradebook.csv").read_text()
    assert json.loads((tmp_path / "o" / "bad" / "result.json").read_text())["errors"][0]["kind"] == "invalid-notebook"


def test_console_script_runs_as_a_process(tmp_path):
    (tmp_path / "bad.ipynb").write_text("")
    done = subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(tmp_path), "--out", str(tmp_path / "o"),
                           "--public", "--quiet", "--assignment", "attention_pooling"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == cli.EXIT_UNGRADABLE and "bad" in done.stdout


def test_without_sandbox_grading_works_and_says_so_loudly(tmp_path, capsys):
    path = tmp_path / "s.ipynb"
    nbformat.write(build_notebook(SOLUTION, extra_cells={"ex1": [
        "import subprocess\nsubprocess.Popen(['sleep', '31338'], start_new_session=True)"]}), path)
    assignment = load_assignment("attention_pooling")
    result = grade_submission(path, assignment, GradingOptions(exercises=("ex4",), execution=ExecutionOptions(sandbox="off")))
    assert result.score == 6 and result.sandboxed is False
    from grader.report import render_report

    assert 'id="no-sandbox"' in render_report(result.to_json())
    import psutil

    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and "31338" in p.info["cmdline"]]
    assert cli.main(["check", str(path), "--sandbox", "off", *ONLY_EX4]) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert "WITHOUT a sandbox" in captured.err and "NOT SANDBOXED" in captured.out


def test_budget_exceeded_keeps_what_finished(tmp_path):
    path = tmp_path / "slow.ipynb"
    nbformat.write(build_notebook(SOLUTION, extra_cells={"ex3": ["import time\ntime.sleep(60)"]}), path)
    limits = Limits(budget=12, cell_timeout=100)
    result = grade_submission(path, load_assignment("attention_pooling"),
                              GradingOptions(exercises=("ex1",), execution=ExecutionOptions(limits)))
    assert "budget-exceeded" in [e.kind for e in result.errors]
    assert any(c.status == "ok" for c in result.cells)  # the cells before the slow one were kept
    assert result.score == 0 and result.exercises[0].checks[0].status == "errored"


def test_self_check_in_the_students_session(released, tmp_path, monkeypatch):
    from grader import self_check

    monkeypatch.chdir(tmp_path)  # no notebook file here: the report goes to the working folder
    namespace = {}
    exec(build_notebook(MISTAKES["mistakes_a"][0]).cells[1].source, namespace)  # the data cell's imports
    for cell in build_notebook(MISTAKES["mistakes_a"][0]).cells:
        if cell.cell_type == "code" and "def " in cell.source:
            exec(cell.source, namespace)
    result = self_check("ex1", bundle=released.bundle, namespace=namespace, show=False)
    assert [e.id for e in result.exercises] == ["ex1"]
    checks = {c.id: c for c in result.exercises[0].checks}
    assert checks["ex1.parzen_density"].passed and not checks["ex1.parzen_class_score"].passed
    assert "0/1" in checks["ex1.parzen_class_score"].diagnosis


def test_the_instructor_sanity_workflow_commands_pass(tmp_path):
    """examples/ci/instructor-sanity.yml: its grader commands, run as the workflow would."""
    import os
    import re

    from assignments.attention_pooling.build_notebooks import REPO

    workflow = (REPO / "examples/ci/instructor-sanity.yml").read_text()
    commands = [" ".join(m.split()) for m in re.findall(r"(\.venv/bin/grader grade[^\n]*(?:\n\s+--[^\n]*)*)", workflow)]
    assert len(commands) == 2
    env = dict(os.environ, GRADER_SECRET="sanity-secret")
    for command in commands:
        # As in the workflow, but with this checkout's interpreter and paths, from a scratch folder.
        command = command.replace(".venv/bin/grader", f"{sys.executable} -m grader.cli")
        command = command.replace("assignments/", f"{REPO}/assignments/")
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "sanity/solution/attention_pooling_solution/result.json").read_text())["score"] == 26
    assert json.loads((tmp_path / "sanity/template/attention_pooling/result.json").read_text())["score"] == 0


@pytest.mark.parametrize("cell, limits, kind, words", [
    ("x = 0\nwhile True:\n    x += 1", Limits(cpu_seconds=12, cell_timeout=60), "cpu-limit", "CPU-time limit of 12 s"),
    ("open('big.bin', 'wb').write(b'0' * 3 * 2**20)", Limits(file_bytes=2**20), "file-size-limit", "limit of 1 MiB"),
    ("hog = bytearray(3 * 2**30)", Limits(memory_bytes=2 * 2**30), "memory-limit", "memory limit of 2 GiB"),
])
def test_resource_limits_are_reported_by_name_and_the_rest_still_runs(tmp_path, cell, limits, kind, words):
    path = tmp_path / "s.ipynb"
    nbformat.write(build_notebook(SOLUTION, extra_cells={"ex1": [cell]}), path)
    result = grade_submission(path, load_assignment("attention_pooling"),
                              GradingOptions(exercises=("ex4",), execution=ExecutionOptions(limits)))
    errors = {e.kind: e for e in result.errors}
    assert kind in errors and words in errors[kind].message and errors[kind].cell is not None
    assert result.score == 6  # the cells after the offending one ran and were graded


def test_an_interrupted_batch_leaves_no_half_written_file_and_resumes(tmp_path):
    import signal

    folder, out = tmp_path / "class", tmp_path / "out"
    folder.mkdir()
    for i in range(4):
        nbformat.write(build_notebook(SOLUTION), folder / f"s{i}.ipynb")
    command = [sys.executable, "-m", "grader.cli", "grade", str(folder), "--out", str(out), "--public", "--quiet",
               "--jobs", "1", *ONLY_EX4]
    # A background job of a non-interactive shell inherits SIGINT as ignored (and Python keeps it so):
    # give the grader the default disposition, as a terminal would.
    process = subprocess.Popen(command, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list(out.glob("*/result.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    finished = {p.parent.name for p in out.glob("*/result.json")}
    assert 1 <= len(finished) < 4
    assert list(out.rglob("*.tmp")) == []
    for folder_ in out.iterdir():  # each submission's folder is complete or holds no grading key
        if folder_.is_dir():
            assert (folder_ / ".grading-key").exists() == (folder_ / "result.json").exists()
    graded_before = {n: (out / n / "graded.json").stat().st_mtime_ns for n in finished}
    assert subprocess.run(command, timeout=300).returncode == 0
    assert {n: (out / n / "graded.json").stat().st_mtime_ns for n in finished} == graded_before
    assert len(list(out.glob("*/result.json"))) == 4


@NEEDS_BUBBLEWRAP
def test_a_cli_run_forks_its_kernels_from_one_zygote_started_before_the_assignment_is_imported(tmp_path, monkeypatch):
    """The zygote imports the kernels' modules while the CLI imports the assignment (torch and all); it serves the
    whole run and is closed with it."""
    from grader import commands
    from grader.zygote import Zygote

    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("ann", "bob"):
        nbformat.write(build_notebook(SOLUTION), folder / f"{name}.ipynb")
    started, start, load = [], Zygote.__init__, commands.load_assignment
    monkeypatch.setattr(Zygote, "__init__", lambda self, *args, **kw: start(self, *args, **kw) or started.append(self))

    def load_after_the_zygote(*args, **kwargs):
        assert len(started) == 1 and started[0].process.poll() is None, "the zygote was not started first"
        return load(*args, **kwargs)

    monkeypatch.setattr(commands, "load_assignment", load_after_the_zygote)
    out = tmp_path / "out"
    assert cli.main(["grade", str(folder), "--out", str(out), "--secret", "s3", "--quiet", *ONLY_EX4]) == cli.EXIT_OK
    assert [json.loads((out / n / "result.json").read_text())["score"] for n in ("ann", "bob")] == [6, 6]
    (zygote,) = started  # one for the run, not one per batch or worker
    assert zygote.process is None and not zygote.folder.exists()  # closed with the run


def test_the_command_ends_fast_but_only_after_its_run_has_ended(tmp_path):
    """`python -m grader.cli` (and the `grader` script) skip the interpreter's finalisation (0.3 s with torch
    loaded) but not what exiting must do: the run's cgroups are removed when its grader.run.Run ends, before the
    process does, and the exit code is kept."""
    import glob

    from grader.execute import cgroup_manager

    path = tmp_path / "s.ipynb"
    nbformat.write(build_notebook(STUBS), path)
    process = subprocess.Popen([sys.executable, "-m", "grader.cli", "grade", str(path), "--out", str(tmp_path / "o"),
                                "--public", "--quiet", "--fail-under", "1", *ONLY_EX4], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    pattern = f"grader-{process.pid}-*"
    made, stderr = False, ""
    while process.poll() is None:  # the run's parent cgroup, while it grades (where this machine lets it make one)
        made = made or bool(glob.glob(f"/sys/fs/cgroup/**/{pattern}", recursive=True))
        time.sleep(0.05)
    stderr = process.stderr.read()
    assert process.returncode == cli.EXIT_BELOW, stderr[-2000:]  # 0 points, under --fail-under 1
    assert (tmp_path / "o" / "s" / "result.json").is_file() and (tmp_path / "o" / "gradebook.csv").is_file()
    if available(cgroup_manager() is not None, "this process cannot make cgroups here"):
        assert made, "the run made its cgroups"
        assert not glob.glob(f"/sys/fs/cgroup/**/{pattern}", recursive=True), "and the run's end removed them"


HOSTILE_CHECKS = """
from pathlib import Path
Path({marker!r}).write_text("imported")
raise SystemExit("imported")
"""


def test_a_notebook_naming_a_path_or_another_assignment_is_reported_and_the_class_graded(tmp_path, capsys):
    """Without --assignment (the README's class and CI commands): a notebook's metadata naming a folder that
    holds a checks.py never gets it imported, and neither it nor a notebook of another assignment stops the class."""
    marker = tmp_path / "IMPORTED"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "checks.py").write_text(HOSTILE_CHECKS.format(marker=str(marker)))
    (evil / "__init__.py").write_text(HOSTILE_CHECKS.format(marker=str(marker)))
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("ann", "ben"):
        nbformat.write(build_notebook(SOLUTION), folder / f"{name}.ipynb")
    for name, named in (("mal", str(evil)), ("rel", "../evil"), ("dot", "evil.checks"), ("sco", "attention_scoring")):
        nb = build_notebook(SOLUTION)
        nb.metadata["grader"] = {"assignment": named}
        nbformat.write(nb, folder / f"{name}.ipynb")
    out = tmp_path / "out"
    code = cli.main(["grade", str(folder), "--out", str(out), "--public", "--quiet", "--jobs", "2", *ONLY_EX4])
    assert not marker.exists()
    assert code == cli.EXIT_UNGRADABLE  # graded, but some submissions could not be
    rows = {name: json.loads((out / name / "result.json").read_text()) for name in
            ("ann", "ben", "mal", "rel", "dot", "sco")}
    for name in ("ann", "ben"):
        assert rows[name]["assignment"] == "attention_pooling" and rows[name]["score"] == 6 and not rows[name]["errors"]
    for name in ("mal", "rel", "dot"):
        [error] = rows[name]["errors"]
        assert error["kind"] == "wrong-assignment" and rows[name]["score"] == 0
        assert "which is not the name of an installed assignment" in error["message"]
    assert repr(str(evil)) in rows["mal"]["errors"][0]["message"]
    assert rows["sco"]["errors"][0]["message"] == (
        "This notebook names assignment attention_scoring in its metadata, but this run grades attention_pooling, so "
        "it was not graded: hand in the notebook of attention_pooling (an instructor grades this one with "
        "--assignment attention_scoring).")
    assert "This notebook is for another assignment" in (out / "gradebook.csv").read_text(encoding="utf-8-sig")


def test_a_first_grading_starts_with_the_notebooks_that_loop_most(tmp_path):
    """Never graded, a class is ordered by its loops (grader.batch.loops_in): unbounded ones, then all of them; the
    class's order among equals. Parsed, not run: cells that are not Python, and files that are not notebooks,
    count for nothing and cost no error."""
    from grader.batch import PARSED_CODE_BYTES, Loops, loops_in, longest_first
    from grader.schedulers import BatchItem

    v4 = nbformat.v4
    cells = {
        "vectorised": ["import numpy as np", "def f(x):\n    return np.exp(x).sum()"],
        "loops": ["def f(xs):\n    out = []\n    for x in xs:\n        out.append(sum(y * y for y in x))\n"
                  "    return out", "grid = [f(g) for g in range(3)]"],
        "converging": ["def f(x):\n    while abs(x) > 1e-3:\n        x /= 2\n    return x"],
        "magic": ["%matplotlib inline\nfor i in range(9): pass", "!pip install d2l", "for i in range(2): pass",
                  "(" * 10_000 + ")" * 10_000, "a." * 100_000 + "b", "-" * 100_000 + "x"],  # nesting refused
    }
    for name, sources in cells.items():
        nb = v4.new_notebook(cells=[v4.new_markdown_cell("for each query: a loop in words"),
                                    *(v4.new_code_cell(source) for source in sources)])
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    line = "for i in x: pass\n"
    flood = v4.new_notebook(cells=[v4.new_code_cell(line * 5_000) for _ in range(120)])
    nbformat.write(flood, tmp_path / "flood.ipynb")  # 10 MB of code: its cells counted as far as PARSED_CODE_BYTES
    assert loops_in(tmp_path / "flood.ipynb") == Loops(0, 5_000 * (PARSED_CODE_BYTES // (len(line) * 5_000)))
    (tmp_path / "broken.ipynb").write_text('{"cells": [{"cell_type": "code", "source": 3}], "nbformat": 4')
    (tmp_path / "odd.ipynb").write_text('{"cells": [{"cell_type": "code", "source": ["for i in x:", 5]}, 7]}')
    assert {name: tuple(loops_in(tmp_path / f"{name}.ipynb")) for name in [*cells, "broken", "odd", "absent"]} == {
        "vectorised": (0, 0), "loops": (0, 3), "converging": (1, 1), "magic": (0, 1), "broken": (0, 0),
        "odd": (0, 0), "absent": (0, 0)}
    assert loops_in(tmp_path / "absent.ipynb") == Loops(unbounded=0, total=0)
    order = ["broken", "vectorised", "magic", "loops", "odd", "converging"]
    items = [BatchItem(tmp_path / f"{name}.ipynb", name, "k") for name in order]
    assert [item.name for item in longest_first(items, tmp_path)] == ["converging", "loops", "magic", "broken",
                                                                       "vectorised", "odd"]


def test_a_regraded_class_starts_with_what_took_longest_and_what_was_never_graded(tmp_path):
    """The batch's order: submissions never graded into the output folder first (by their loops: the test above;
    these have none), then by their last grading's time, longest first; a result that cannot be read counts as
    never graded."""
    from grader.batch import longest_first
    from grader.schedulers import BatchItem

    last = {"b": 3.0, "c": 10.5, "e": 0.8, "f": 7}
    for name, seconds in last.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps({"timing": {"seconds": seconds}}))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "result.json").write_text("{not json")
    items = [BatchItem(tmp_path / f"{name}.ipynb", name, "k") for name in "abcdef"]
    assert [item.name for item in longest_first(items, tmp_path)] == ["a", "d", "c", "f", "b", "e"]
