"""Grading at scale: Dask workers, shards merged, and the on-disk reference cache.

Kept short: the class is four notebooks graded on exercise 1 only (the Dask and shard tests)
or one notebook on exercise 4 (the cache, whose reference work lives there).
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import nbformat
import pytest

from assignments.attention_pooling.build_notebooks import SOLUTION, STUBS, build_notebook
from grader import batch, cli
from tests.submissions import MISTAKES, NUMPY_WAY
from tests.conftest import available, bubblewrap_works

SECRET = "scale-secret"
ONLY_EX1 = ["--exercise", "ex1", "--secret", SECRET, "--quiet"]
# Each cell sleeps a moment, so that a test can kill a Dask worker while its submission is in the kernel.
SLOW_CELL = {"ex1": ["import time\ntime.sleep(3)"]}


def without_timings(value):
    """A result.json (or gradebook) with every clock reading removed: what must not depend on where it ran."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in ("timing", "seconds")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def results_of(out) -> dict:
    return {folder.name: without_timings(json.loads((folder / "result.json").read_text()))
            for folder in sorted(out.iterdir()) if (folder / "result.json").is_file()}


def figures_of(out) -> dict:
    return {folder.name: (folder / "figures.json").read_text()
            for folder in sorted(out.iterdir()) if (folder / "figures.json").is_file()}


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    for name, functions in (("ann", SOLUTION), ("ben", MISTAKES["mistakes_a"][0]), ("cat", STUBS),
                            ("dan", NUMPY_WAY)):
        nbformat.write(build_notebook(functions, extra_cells=SLOW_CELL), folder / f"{name}.ipynb")
    return folder


@pytest.fixture(scope="module")
def graded_locally(small_class, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert cli.main(["grade", str(small_class), "--out", str(out), "--jobs", "2", *ONLY_EX1]) == cli.EXIT_OK
    return out


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:  # the grader must not lean on it
        yield cluster, client


def test_a_dask_cluster_grades_as_this_machine_does(small_class, graded_locally, dask_cluster, tmp_path):
    cluster, _client = dask_cluster
    out = tmp_path / "dask"
    assert cli.main(["grade", str(small_class), "--out", str(out), "--scheduler", cluster.scheduler_address,
                     *ONLY_EX1]) == cli.EXIT_OK
    assert results_of(out) == results_of(graded_locally)
    assert figures_of(out) == figures_of(graded_locally)
    assert (out / "gradebook.csv").read_text() == (graded_locally / "gradebook.csv").read_text()
    scores = {name: row["score"] for name, row in results_of(out).items()}
    assert scores["ann"] == scores["dan"] > scores["ben"] > scores["cat"] == 0  # a real grading, not four zeros


def test_each_dask_worker_keeps_one_run_for_its_tasks(small_class, dask_cluster, tmp_path):
    """The plans (0.5 s each) and the reference check cost once per worker, not once per task: the grader
    registers a plug-in that keeps one run per worker, and the next grading run (another client) keeps it too."""
    from grader.dask_runs import WorkerRuns

    cluster, client = dask_cluster

    def runs_held(dask_worker):
        runs = dask_worker.plugins.get(WorkerRuns.name)
        if runs is None or runs.run is None:
            return None
        return id(runs.run), len(runs.run.plans), len(runs.checked), runs.run.kernels.zygote is not None

    for round_ in ("first", "second"):
        assert cli.main(["grade", str(small_class), "--out", str(tmp_path / round_), "--scheduler",
                         cluster.scheduler_address, *ONLY_EX1]) == cli.EXIT_OK
        held = {address: value for address, value in client.run(runs_held).items() if value is not None}
        assert held, "no worker kept a run"
        assert all(plans == 1 and checked == 1 for _, plans, checked, _ in held.values())  # 4 tasks, a plan a worker
        forks = available(bubblewrap_works(), "bubblewrap cannot build the sandbox here")
        assert all(zygote == forks for *_, zygote in held.values())  # the worker's zygote forks its next kernels
        if round_ == "first":
            first = held
    assert {a: v[0] for a, v in held.items() if a in first} == {a: v[0] for a, v in first.items() if a in held}


def test_every_submission_of_a_class_is_one_dask_task_group_whatever_its_name():
    """Dask queues a task group's tasks and hands them out in submission order, so the class must be one group:
    a key of "grade-<name>-<nonce>" made a group per student for names like "ann" (their durations unknown, the
    class was spread over the workers at once) and one for names like "a1"."""
    pytest.importorskip("distributed")
    from distributed.utils import key_split_group

    from grader.schedulers import TASK_GROUP, task_key

    names = ["ann", "a1", "02_right_loops", "bob-smith", "deadbeef", "x-1a2b3c4d", "学生", "ann"]
    keys = [task_key(name) for name in names]
    assert {key_split_group(key) for key in keys} == {TASK_GROUP}
    assert len(set(keys)) == len(keys)  # the same student graded again is a new task, not a cached result
    assert [key[1] for key in keys] == names  # the dashboard says whose submission a task grades


def test_a_worker_started_with_the_preload_is_ready_before_its_first_task_and_leaves_nothing(small_class, tmp_path):
    """``dask worker --preload grader.dask_worker``: each worker opens its run as it starts (zygote forking, torch
    and the assignments imported), its first task grades in that very run, and closing the cluster ends the run of
    the worker that graded and of the one that never got a task alike."""
    distributed = pytest.importorskip("distributed")
    from grader.dask_runs import WorkerRuns

    one = tmp_path / "one"
    one.mkdir()
    (one / "ann.ipynb").write_bytes((small_class / "ann.ipynb").read_bytes())  # one task: one worker never graded

    def held(dask_worker):
        from grader import dask_runs

        plugin = dask_worker.plugins.get(WorkerRuns.name)
        run = dask_runs._ready[0] if dask_runs._ready else getattr(plugin, "run", None)
        zygote = run.kernels.zygote if run is not None else None
        return {"ready": bool(dask_runs._ready), "run": id(run) if run is not None else None,
                "zygote": zygote.process.pid if zygote is not None and zygote.process is not None else None,
                "folder": str(zygote.folder) if zygote is not None else None,
                "imported": "torch" in sys.modules and "grader_assignment_attention_pooling" in sys.modules}

    forks = available(bubblewrap_works(), "bubblewrap cannot build the sandbox here")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50, preload=["grader.dask_worker"]) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        before = client.run(held)
        assert len(before) == 2
        assert all(w["ready"] and w["run"] is not None and w["imported"] for w in before.values())
        assert all((w["zygote"] is not None) == forks for w in before.values())
        assert cli.main(["grade", str(one), "--out", str(tmp_path / "out"), "--scheduler", cluster.scheduler_address,
                         *ONLY_EX1]) == cli.EXIT_OK
        after = client.run(held)
    assert json.loads((tmp_path / "out" / "ann" / "result.json").read_text())["score"] > 0
    # The worker that graded took its ready run over (the same run, the same zygote); the other still holds its own.
    assert sorted(w["ready"] for w in after.values()) == [False, True]
    assert all(after[a]["run"] == before[a]["run"] and after[a]["zygote"] == before[a]["zygote"] for a in before)
    # Each run was closed, not merely orphaned: a zygote dies with its worker, but only closing removes its folder.
    assert not [w["folder"] for w in before.values() if w["folder"] and os.path.exists(w["folder"])]
    for pid in (w["zygote"] for w in before.values() if w["zygote"] is not None):
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(pid), "a worker's zygote outlived the cluster"


def test_a_preloaded_worker_starts_though_an_installed_assignment_is_broken(monkeypatch, caplog):
    """One broken installed assignment must not keep a worker from joining: the preload says which, and the
    assignment's own tasks report it when they load it."""
    pytest.importorskip("distributed")
    from grader import dask_runs
    from grader.execute import ExecutionOptions

    monkeypatch.setattr("grader.installed.installed_assignments", lambda: ["no_such_assignment", "attention_pooling"])
    monkeypatch.setattr(dask_runs, "_ready", [])
    try:
        run = dask_runs.make_ready(ExecutionOptions(sandbox="off"))
        assert dask_runs.take_ready() is run and dask_runs.take_ready() is None  # handed over once
    finally:
        dask_runs.close_ready()
    run.close()
    assert "grader_assignment_attention_pooling" in sys.modules
    assert any("no_such_assignment" in record.getMessage() for record in caplog.records)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_lost_mid_batch_costs_no_submission_and_counts_none_twice(small_class, graded_locally,
                                                                           dask_cluster, tmp_path, monkeypatch):
    cluster, client = dask_cluster
    out = tmp_path / "dask-killed"
    writes, progress_names = [], []
    write_submission = batch.write_submission

    def counting_write(out_dir, name, graded, key):
        writes.append(name)
        return write_submission(out_dir, name, graded, key)

    monkeypatch.setattr(batch, "write_submission", counting_write)
    done = {}

    def run():
        from grader.assignment import load_assignment
        from grader.pipeline import GradingOptions

        done["rows"] = batch.grade_batch(
            [small_class], load_assignment("attention_pooling"), GradingOptions(secret=SECRET, exercises=("ex1",)),
            out, scheduler=cluster.scheduler_address, progress=lambda d, t, name, row: progress_names.append(name))

    grading = threading.Thread(target=run)
    grading.start()
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        busy = [address for address, keys in client.processing().items() if keys]
        if busy:
            time.sleep(2)  # inside the task: its kernel is running the notebook's sleeping cell
            victim = busy[0]
        time.sleep(0.1)
    assert victim, "no worker ever took a task"
    pids = client.run(os.getpid)
    os.kill(pids[victim], signal.SIGKILL)  # the nanny starts a new worker; the scheduler reschedules the task
    grading.join(timeout=300)
    assert not grading.is_alive()
    assert sorted(writes) == sorted(progress_names) == ["ann", "ben", "cat", "dan"]  # each exactly once
    assert [row["submission"] for row in done["rows"]] == ["ann", "ben", "cat", "dan"]
    assert results_of(out) == results_of(graded_locally)


def test_shards_merged_equal_one_unsharded_run(small_class, graded_locally, tmp_path):
    shard_dirs = [tmp_path / "shard1", tmp_path / "shard2"]
    for k, folder in enumerate(shard_dirs, start=1):
        assert cli.main(["grade", str(small_class), "--out", str(folder), "--shard", f"{k}/2", "--jobs", "2",
                         *ONLY_EX1]) == cli.EXIT_OK
    graded = [sorted(p.name for p in folder.iterdir() if p.is_dir()) for folder in shard_dirs]
    assert graded[0] and graded[1] and not set(graded[0]) & set(graded[1])  # a real split, no overlap
    merged = tmp_path / "merged"
    assert cli.main(["merge", str(merged), *map(str, shard_dirs)]) == cli.EXIT_OK
    assert results_of(merged) == results_of(graded_locally)
    for name in ("gradebook.csv", "index.html"):
        assert (merged / name).read_text() == (graded_locally / name).read_text()
    assert without_timings(json.loads((merged / "gradebook.json").read_text())) == without_timings(
        json.loads((graded_locally / "gradebook.json").read_text()))
    # A shard missing is said, and the merge exits 3 without inventing rows.
    partial = tmp_path / "partial"
    assert cli.main(["merge", str(partial), str(shard_dirs[0])]) == cli.EXIT_UNGRADABLE
    assert sorted(p.name for p in partial.iterdir() if p.is_dir()) == graded[0]


def test_the_same_secret_does_no_reference_work_twice_a_new_secret_or_grader_does(tmp_path, monkeypatch):
    import grader
    from grader.assignment import load_assignment
    from grader.pipeline import GradingOptions, grade_submission

    path = tmp_path / "s.ipynb"
    nbformat.write(build_notebook(SOLUTION), path)
    cache = tmp_path / "cache"
    assignment = load_assignment("attention_pooling")

    def timing(secret: str) -> dict:
        options = GradingOptions(secret=secret, exercises=("ex4",), figures=False, disk_cache=True, cache_dir=cache)
        return grade_submission(path, assignment, options).to_json()["timing"]

    version = grader.__version__
    first = timing(SECRET)
    assert first["reference_computed"] > 0 and first["reference"] > 0
    # A new process (nothing in memory) with the same secret: every reference result comes from the disk.
    out = tmp_path / "out"
    def cli_run() -> str:
        done = subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(path), "--out", str(out), "--secret",
                               SECRET, "--exercise", "ex4", "--no-figures", "--cache-dir", str(cache), "--quiet",
                               "--force", "--profile"], capture_output=True, text=True, timeout=300)
        assert done.returncode == cli.EXIT_OK, done.stderr[-2000:]
        return re.search(r"Start-up check of the reference on the public inputs: (\d+) results computed, (\d+) "
                         r"read from the cache", done.stdout).groups()

    computed, _ = cli_run()  # the start-up check's reference work, computed once
    assert int(computed) > 0
    assert cli_run() == ("0", computed)  # and read from the disk by the next run
    second = json.loads((out / "s" / "result.json").read_text())["timing"]
    assert second["reference_computed"] == 0 and second["reference"] == 0
    assert second["reference_from_disk"] == first["reference_computed"]
    assert timing("another-secret")["reference_computed"] > 0
    monkeypatch.setattr(grader.version, "__version__", version + ".post1")  # what every stamp reads
    assert timing(SECRET)["reference_computed"] > 0
    folders = {p.name.rsplit("-grader-", 1)[1] for p in (cache / "reference-v1").iterdir()}
    assert folders == {version, version + ".post1"}
    assert oct((cache / "reference-v1").stat().st_mode & 0o777) == "0o700"  # the grader's alone


def test_the_cache_refuses_a_folder_the_sandbox_shows(tmp_path):
    from pathlib import Path

    from grader.refcache import UnsafeCacheLocation, check_private
    from grader.sandbox import shown_system

    shown = [Path(sys.prefix), *shown_system()]  # the prefixes and all the sandbox binds of the system
    assert Path("/etc/fonts") in shown or not Path("/etc/fonts").exists()
    for folder in shown:
        with pytest.raises(UnsafeCacheLocation):
            check_private(folder / "grader-cache")
    assert check_private(tmp_path / "grader-cache") == (tmp_path / "grader-cache").resolve()


def test_a_cache_the_sandbox_shows_is_a_usage_error_before_any_grading(small_class, tmp_path, capsys):
    """Not a grader failure on every submission, kept as graded: the run stops before it starts."""
    shown = str(__import__("pathlib").Path(sys.prefix) / "grader-cache")
    out = tmp_path / "out"
    assert cli.main(["grade", str(small_class), "--out", str(out), "--cache-dir", shown, *ONLY_EX1]) == cli.EXIT_USAGE
    assert "which the sandbox shows" in capsys.readouterr().err and not out.exists()
    assert cli.main(["check", str(small_class / "ann.ipynb"), "--cache-dir", shown]) == cli.EXIT_USAGE
    assert cli.main(["check", str(small_class / "ann.ipynb"), "--cache-dir", shown, "--no-cache", "--exercise", "ex1",
                     "--report", str(tmp_path / "r.html")]) == cli.EXIT_OK


def test_a_dask_workers_setup_failure_is_graded_again_the_submissions_own_is_kept(small_class):
    """Same kind as a local batch's (grader-failed); a worker's setup at fault leaves no grading key."""
    from grader import schedulers
    from grader.assignment import load_assignment
    from grader.execute import SandboxUnavailable
    from grader.pipeline import GradingOptions
    from grader.refcache import UnsafeCacheLocation

    assignment, options = load_assignment("attention_pooling"), GradingOptions(secret=SECRET, exercises=("ex1",))
    item = schedulers.BatchItem(small_class / "ann.ipynb", "ann", "key")
    for exc, final in ((SandboxUnavailable("no bwrap"), False), (UnsafeCacheLocation("shown"), False),
                       (schedulers.WrongVersion("old"), False), (ValueError("a bug"), True)):
        graded = schedulers.remote_failure(item, assignment, options, exc)
        assert [e["kind"] for e in graded.result["errors"]] == ["grader-failed"] and graded.final is final, exc
        assert "timing" in graded.result and graded.result["score"] == 0


def test_a_dask_worker_hides_what_a_local_batch_hides(small_class, tmp_path, monkeypatch):
    """The class's folders and the output travel with each task: a worker sharing the client's disk hides them."""
    from grader import pipeline, schedulers
    from grader.assignment import load_assignment
    from grader.files import class_folders

    assignment = load_assignment("attention_pooling")
    options = pipeline.GradingOptions(secret=SECRET, exercises=("ex1",))
    hide = class_folders([small_class], tmp_path / "out")
    scheduler = object.__new__(schedulers.DaskScheduler)  # no cluster needed to make a task
    scheduler.assignment, scheduler.options, scheduler.hide = assignment, options, hide
    notebook = small_class / "ann.ipynb"
    job = scheduler.job(schedulers.BatchItem(notebook, "ann", "key"))
    assert job.hide == tuple(str(p) for p in hide)

    asked = {}

    class Started(Exception):
        pass

    def start_worker(assignment_, options_, hidden, cgroups=None, zygote=None, interpreter=None):
        asked["hidden"] = hidden
        raise Started

    monkeypatch.setattr(pipeline, "start_worker", start_worker)
    with pytest.raises(Started):
        schedulers.grade_remote(job)
    assert set(hide) <= set(asked["hidden"])  # besides the task's own folder; start_worker adds the assignment's


def test_a_figure_drawn_from_results_alone_waits_while_its_exercise_is_silent(assignment):
    """Nothing drawn for an untouched template: nothing of the student's to show, the figure waits."""
    from grader.model import CheckResult
    from grader.pipeline import GradingOptions, draw_figures, plan_figures, plan_probes, silent_exercises

    options = GradingOptions(exercises=("ex4",))
    checks, figures = plan_probes(assignment, options), plan_figures(assignment, options)
    assert figures and all(not plan.probe_calls for plan in figures)  # ex4's figure draws from the study's results
    errored = [CheckResult(plan.check.id, "", "errored", 0.0, 1.0, "") for plan in checks]
    assert silent_exercises(checks, errored) == {"ex4"}
    assert [f.waiting for f in draw_figures(figures, {}, errored, None, silent_exercises(checks, errored))] == [True]
    judged = [CheckResult(checks[0].check.id, "", "failed", 0.0, 1.0, ""), *errored[1:]]
    assert silent_exercises(checks, judged) == frozenset()


def test_a_class_of_a_folder_per_student_is_one_folder_to_hide(tmp_path):
    """Each worker's start checks every path it hides: a path per student made a batch's cost grow with the square
    of its size. The folders given are hidden whole (every notebook under them with them), the outermost only."""
    from grader.files import class_folders, find_notebooks

    klass = tmp_path / "class"
    for i in range(50):
        (klass / f"student{i}").mkdir(parents=True)
        (klass / f"student{i}" / "attention_pooling.ipynb").write_text("{}")
    loose = tmp_path / "late" / "attention_pooling.ipynb"
    loose.parent.mkdir()
    loose.write_text("{}")
    given = [klass, klass / "student3" / "attention_pooling.ipynb", loose]
    assert class_folders(given, klass / "out") == [klass, loose.parent]  # the output inside the class: covered
    hide = class_folders(given, tmp_path / "grades")
    assert hide == [klass, tmp_path / "grades", loose.parent]
    assert all(any(folder in notebook.parents for folder in hide) for notebook in find_notebooks(given))


def test_a_dask_worker_checks_the_reference_through_the_runs_cache(tmp_path, monkeypatch):
    """A worker's first task checks the reference on the public inputs as the CLI does, with the run's cache in
    use: read from there once a run has kept it (each worker computed it again, its first task's extra cost)."""
    from grader import pipeline, schedulers
    from grader.assignment import load_assignment

    assignment = load_assignment("attention_pooling", check_references=False)
    options = pipeline.GradingOptions(secret=SECRET, exercises=("ex1",), disk_cache=True, cache_dir=tmp_path / "cache")
    scheduler = object.__new__(schedulers.DaskScheduler)  # no cluster needed to make a task
    scheduler.assignment, scheduler.options, scheduler.hide = assignment, options, []
    notebook = tmp_path / "ann.ipynb"
    nbformat.write(build_notebook(SOLUTION), notebook)
    job = scheduler.job(schedulers.BatchItem(notebook, "ann", "key"))
    monkeypatch.setattr(assignment, "_references_checked", False, raising=False)  # as in a new worker process

    class Started(Exception):
        pass

    def start_worker(*args):
        raise Started

    monkeypatch.setattr(pipeline, "start_worker", start_worker)
    with pytest.raises(Started):
        schedulers.grade_remote(job)
    public = options.reference_store(assignment, public=True).folder
    assert public is not None and public.is_dir() and any(public.iterdir())
