"""``self_check("ex2")`` inside a student's notebook: the public checks, from the assignment's bundle.

Runs in the student's own kernel, on the student's own machine, with what ``grader release``
gave the student: the bundle beside the notebook (or ``bundle=``), no reference and no
instructor's checks. Each function is called directly (no worker), within its time limit
(SIGALRM, as in the worker's kernel), through the worker's own encoding, and judged by the
same code as ``grader check --bundle``, so the verdicts are the same. The written answers are
read from the notebook's file, which the kernel finds as Jupyter, JupyterLab and VS Code tell
it (or ``notebook=``): save the notebook first. It shows a few lines and writes the whole
report beside the notebook.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import time
from pathlib import Path

from .bundle import BundleError, assignment_folder, find_bundle, load_bundle
from .config import DEFAULT_LANGUAGE, resolve_limits
from .execute import ExecutionOptions
from .environment import install_command, provided_packages
from .i18n import N_, _, use_language
from .load import NotebookRejected, load_notebook
from .model import CheckResult, ErrorKind, GradeError, OutcomeStatus, ProbeOutcome, StageTimes, SubmissionResult
from .pipeline import GradingOptions, PlannedCheck, judge_check, plan_probes, score_submission
from .probe_runtime import CallLimits, call_with_limit
from .wire import call_json, parse_outcome

# Where a running kernel learns which notebook it runs: Jupyter Server and JupyterLab set JPY_SESSION_NAME,
# which ipykernel puts in the namespace as __session__; VS Code sets __vsc_ipynb_file__.
NOTEBOOK_PATH_NAMES = ("__session__", "__vsc_ipynb_file__")
REPORT_SUFFIX = ".report.html"  # as grader check writes it


def _namespace():
    try:
        return get_ipython().user_ns  # noqa: F821
    except NameError:
        import __main__

        return vars(__main__)


def probe_in_process(planned: list[PlannedCheck], namespace: dict) -> dict[str, ProbeOutcome]:
    """The planned calls made on the functions of ``namespace``, each within its time limit, through the worker's
    own encoding. A function that hung is not called again (its other calls time out too), as in the worker."""
    probes, hung = {}, set()
    with CallLimits() as limits:
        for plan in planned:
            for call in plan.probe_calls:
                func = namespace.get(call.function)
                if call.function in hung:
                    raw = {"status": OutcomeStatus.TIMEOUT}
                elif not callable(func):
                    raw = {"status": OutcomeStatus.MISSING}
                else:
                    raw = call_with_limit(func, call_json(call), limits)
                if raw["status"] == OutcomeStatus.TIMEOUT:
                    hung.add(call.function)
                probes[call.id] = parse_outcome(call.id, json.loads(json.dumps(raw)))
    return probes


def judge_in_process(planned: list[PlannedCheck], namespace: dict) -> list[CheckResult]:
    """Plan, probe and judge without a worker: a student's live session, or tests judging many secrets."""
    probes = probe_in_process(planned, namespace)
    return [judge_check(plan, probes) for plan in planned]


def running_notebook(namespace: dict) -> Path | None:
    """The file of the notebook this kernel runs, as the front end told the kernel; else the notebook of the working
    folder that holds the running cell (nbclient and papermill tell the kernel nothing, and a course's folder holds
    several notebooks); None when neither says."""
    named = [namespace.get(name) for name in NOTEBOOK_PATH_NAMES] + [os.environ.get("JPY_SESSION_NAME")]
    for value in named:
        if isinstance(value, str) and value.endswith(".ipynb"):
            # Jupyter Server's path may be relative to its root, not to the kernel's folder (the notebook's).
            for path in (Path(value), Path.cwd() / Path(value).name):
                if path.is_file():
                    return path.resolve()
    notebooks = sorted(Path.cwd().glob("*.ipynb"))
    if len(notebooks) == 1:
        return notebooks[0].resolve()
    cell = _running_cell(namespace)
    holding = [path for path in notebooks if cell and _holds_cell(path, cell)]
    # Several copies hold it (a student's copy of the template, say): the one saved last.
    return max(holding, key=lambda p: p.stat().st_mtime).resolve() if holding else None


def _running_cell(namespace: dict) -> str | None:
    """The source of the cell being run, as IPython keeps it (its input history's last entry)."""
    history = namespace.get("_ih") or namespace.get("In")
    if isinstance(history, list) and history and isinstance(history[-1], str):
        return history[-1].strip() or None
    return None


def _holds_cell(path: Path, cell: str) -> bool:
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        sources = ["".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", "")
                   for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return False
    return any(isinstance(source, str) and source.strip() == cell for source in sources)


IMPORT_ERROR_LINE = re.compile(r"^\s*(?:from\s+([A-Za-z_]\w*)[\w.]*\s+import\b|import\s+([A-Za-z_]\w*))", re.M)
MISSING_HERE = N_("Your notebook imports %(module)s, which your environment lacks: its cells that use it failed here, "
                  "and this self-check cannot judge what depends on them. Grading provides it (%(packages)s), so there "
                  "they run. To self-check as graded, install it here: `%(command)s`.")


def missing_here(loaded, grading: tuple[str, ...]) -> list[GradeError]:
    """The modules the notebook imports that grading provides and this kernel cannot import (d2l, say): the cells
    that needed them failed in the student's own session, before self_check() ran; say why, in the student's terms."""
    imported = {first or second for cell in loaded.notebook.cells if cell.cell_type == "code"
                for first, second in IMPORT_ERROR_LINE.findall(cell.source)}
    errors = []
    for module in sorted(imported):
        command = install_command(module, grading)
        if command and importlib.util.find_spec(module) is None:
            errors.append(GradeError(ErrorKind.IMPORT_FAILED, _(MISSING_HERE, module=module, command=command,
                                                                  packages=provided_packages(grading)),
                                     subject=module))
    return errors


def self_check(exercise: str | None = None, bundle: str | Path | None = None, notebook: str | Path | None = None,
               namespace: dict | None = None, show: bool = True, lang: str | None = None,
               call_timeout: float | None = None) -> SubmissionResult | None:
    """Check one exercise (or all) of this notebook on the public inputs, from the assignment's bundle.

    ``bundle``: the bundle's file (default: the one beside the notebook, else in the working folder);
    ``notebook``: the notebook's file, for the written answers (default: as the front end tells the kernel);
    ``lang`` (default: $GRADER_LANG, else English): the language shown; ``call_timeout``: seconds per call where
    the check sets none. With ``show`` it prints a short summary and returns None; else it returns the result.
    """
    started = time.monotonic()
    namespace = _namespace() if namespace is None else namespace
    notebook_path = Path(notebook).resolve() if notebook else running_notebook(namespace)
    bundle_path = Path(bundle) if bundle else find_bundle(notebook_path or Path.cwd())
    if bundle_path is None:
        raise BundleError(_("no bundle (*.bundle.json) beside %(where)s: keep the one your course released next to "
                            "the notebook, or pass bundle=\"...\"", where=notebook_path or Path.cwd()))
    released = load_bundle(bundle_path)
    use_language(lang or os.environ.get("GRADER_LANG", DEFAULT_LANGUAGE),
                 (assignment_folder(released.name) / "locale",))
    known = [e.id for e in released.exercises]
    if exercise is not None and exercise not in known:
        raise ValueError(_("no exercise %(exercise)r in %(assignment)s (its exercises: %(known)s)", exercise=exercise,
                           assignment=released.name, known=", ".join(known)))
    # The caller's call limit, else the assignment's, else the engine's.
    limits = resolve_limits(released.settings(), {"call_timeout": call_timeout})
    options = GradingOptions(exercises=(exercise,) if exercise else None, execution=ExecutionOptions(limits),
                             figures=False)
    results = judge_in_process(plan_probes(released, options), namespace)
    loaded = None
    if notebook_path is not None:
        try:
            loaded = load_notebook(notebook_path)
        except NotebookRejected:
            notebook_path = None
    stem = notebook_path.stem if notebook_path else released.name
    missing = missing_here(loaded, released.grading_environment or ()) if loaded else []
    result = score_submission(released, stem, results, missing, options, loaded, None)
    result.timing = StageTimes(seconds=time.monotonic() - started)
    result.source = str(notebook_path or "")
    report = (notebook_path.parent if notebook_path else Path.cwd()) / f"{stem}{REPORT_SUFFIX}"
    _write_report(result, report)
    if not show:
        return result
    _show(result, report, answers_read=loaded is not None)
    return None


def _write_report(result: SubmissionResult, report: Path) -> None:
    from .report import render_report

    from .summary import self_check_scope

    report.write_text(render_report(result.to_json(), own_session=True, scope=self_check_scope(result)),
                      encoding="utf-8")


def _show(result: SubmissionResult, report: Path, answers_read: bool) -> None:
    from .summary import self_check_text

    text = self_check_text(result, report, answers_read)
    try:
        get_ipython  # noqa: B018, F821 - only defined inside IPython
    except NameError:
        print(text)
        return
    from IPython.display import display

    # The link is relative: the front end resolves it from the notebook's folder, where the report is.
    link = f'<a href="{html.escape(report.name)}" target="_blank">{html.escape(report.name)}</a>'
    body = html.escape(text).replace(html.escape(str(report)), link)
    display({"text/plain": text, "text/html": f"<pre>{body}</pre>"}, raw=True)
