"""Assignments are plug-ins: a folder with a ``checks.py`` that defines ``ASSIGNMENT``.

Loading one imports the instructor's (trusted) checks module into the grader process.
Nothing in ``grader/`` knows any particular assignment.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checks import Call, Check, CustomCheck, CustomVerdict
from .config import unknown_limits
from .errors import AssignmentInvalid, Problem
from .figures import Figure
from .i18n import _, join_list
from .refcache import adopt_memoised
from .installed import assignment_dir

# The module of an assignment that judges its custom checks from data: the one part of an assignment a
# student's install holds (see grader.release), so it must compute no answer.
VERDICTS_MODULE = "verdicts"

AssignmentError = AssignmentInvalid  # its name before the grader's errors were one family (grader.errors)


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    answer_tags: tuple[str, ...] = ()
    read: str = ""


@dataclass
class Assignment:
    name: str
    title: str
    exercises: list[Exercise]
    checks: list[Check]
    template: str = ""  # the student notebook, relative to the assignment folder
    # The functions and classes a student defines (the contract's names): every check and figure calls only these,
    # and the template defines each (grader.kit.contract). Empty: what the template defines.
    contract: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()  # modules the kernel imports before the student's cells, to save time
    # The assignment's own limits, applied unless the command line says otherwise (grader.config): None and
    # absent names take the engine's defaults.
    cell_timeout: float | None = None
    budget: float | None = None  # wall-clock seconds for one whole submission
    limits: dict[str, Any] = field(default_factory=dict)  # any other field of grader.sandbox.Limits, by name
    public_seed: str = "public"
    root: Path = field(default=Path("."))
    hidden_paths: tuple[Path, ...] = ()  # what the sandbox must hide (reference solutions, ...)
    figures: list[Figure] = field(default_factory=list)
    answer_points: dict[str, float] = field(default_factory=dict)  # maximum points of each written answer
    # The answer cells' placeholder texts by tag; None: read from the template notebook when needed (a bundle
    # carries them, since a student's notebook may be the released template itself, edited).
    template_answers: dict[str, str] | None = None
    # A bundle's: what the grading kernel provides (grader.environment.provided_list at release), for a self-check
    # that runs in the student's own environment. None: this environment is the grading one.
    grading_environment: tuple[str, ...] | None = None
    # What is worked out once from the assignment alone (its public calls, its template's placeholders): kept on
    # the assignment it belongs to, not in a module, so a reloaded or edited assignment never reads a stale copy.
    derived: dict[tuple, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def digest(self) -> str:
        """A hash of the assignment's code and its hidden files (the reference): what its results depend on."""
        if getattr(self, "_digest", None) is None:
            digest = hashlib.sha256()
            hash_files(digest, self.root.glob("*.py"))
            for hidden in self.hidden_paths:
                hash_files(digest, Path(hidden).glob("*.py"))
            self._digest = digest.hexdigest()
        return self._digest

    def exercise(self, exercise_id: str) -> Exercise:
        return next(e for e in self.exercises if e.id == exercise_id)

    def settings(self) -> dict[str, Any]:
        """The limits this assignment sets, by grader.sandbox.Limits field (what grader.config.resolve_limits takes)."""
        return {**self.limits, **{name: value for name, value in (("cell_timeout", self.cell_timeout),
                                                                   ("budget", self.budget)) if value is not None}}

    def problems(self) -> list[Problem]:
        """Everything wrong with the declaration, each naming what it is about (a check, a figure, a tag)."""
        problems: list[Problem] = []
        exercises = {e.id for e in self.exercises}
        tags = [tag for e in self.exercises for tag in e.answer_tags]
        for kind, ids in ((_("check"), [c.id for c in self.checks]), (_("figure"), [f.id for f in self.figures]),
                          (_("exercise"), [e.id for e in self.exercises]), (_("answer tag"), tags)):
            for repeated in sorted({i for i in ids if ids.count(i) > 1}):
                problems.append(Problem(repeated, _("more than one %(kind)s has this id", kind=kind)))
        for item in [*self.checks, *self.figures]:
            if item.exercise not in exercises:
                problems.append(Problem(item.id, _("names exercise %(exercise)r, which the assignment does not declare "
                                                   "(its exercises: %(known)s)", exercise=item.exercise,
                                                   known=join_list(sorted(exercises)))))
        checks = {c.id for c in self.checks}
        for figure in self.figures:
            for check in sorted({*figure.reads, *filter(None, [figure.public_of])} - checks):
                problems.append(Problem(figure.id, _("names check %(check)r, which the assignment does not declare",
                                                     check=check)))
        for tag in self.answer_points:
            if tag not in tags:
                problems.append(Problem(tag, _("answer_points names an answer tag no exercise declares (declared: "
                                               "%(known)s)", known=join_list(tags) or "-")))
        problems += [Problem(check.id, problem) for check in self.checks for problem in check.problems()]
        problems += [Problem("limits", _("no such limit: %(name)s", name=name))
                     for name in unknown_limits(self.settings())]
        return problems

    def validate(self) -> None:
        """Refuse an unusable declaration at load, before anyone is graded: every problem at once."""
        problems = self.problems()
        if problems:
            raise AssignmentInvalid(self.name, problems)

    def check_references(self) -> None:
        """Refuse an assignment whose reference fails on the public inputs (once per process: the module is
        imported once). The reference work goes to the store in use (grader.refcache.using)."""
        if getattr(self, "_references_checked", False):
            return
        problems = self.reference_problems()
        if problems:
            raise AssignmentInvalid(self.name, problems)
        self._references_checked = True

    def reference_problems(self) -> list[Problem]:
        """Checks whose reference fails on the public inputs (it would fail on every submission's inputs too).

        Computing the references costs what judging one submission does (cached on disk by grader.refcache
        when the caller has a store in use), so this is a step of its own, run once before a batch.
        """
        from .kit.contract import not_in_contract

        problems = []
        for check in self.checks:
            try:
                calls = public_calls(self, check)
                check.judging_data(calls)
            except Exception as exc:  # the instructor's code, whatever it raises
                problems.append(Problem(check.id, _("its reference fails on the public inputs: %(error)s",
                                                    error=f"{type(exc).__name__}: {exc}")))
                continue
            problems += not_in_contract(self, check.id, {call.function for call in calls})
        for figure in self.figures:
            try:
                calls = figure_calls(self, figure)
            except Exception as exc:
                problems.append(Problem(figure.id, _("its calls cannot be drawn: %(error)s",
                                                     error=f"{type(exc).__name__}: {exc}")))
                continue
            problems += not_in_contract(self, figure.id, {call.function for call in calls})
        return problems


def hash_files(digest, files) -> None:
    for file in sorted(files):
        digest.update(str(file.name).encode())
        digest.update(file.read_bytes())


def public_material(assignment: Assignment) -> str:
    """The seed material of the public inputs (self-checks, bundles, ``--public``)."""
    return f"public:{assignment.public_seed}"


def figure_material(assignment: Assignment) -> str:
    """The seed material of the figures' calls: public, never the secret (grader.figures)."""
    return f"figures:{assignment.public_seed}"


def rng_for(seed_material: str, check_id: str) -> np.random.Generator:
    """The generator a check draws its inputs from: one per (seed, check), stable across runs and machines."""
    digest = hashlib.sha256(f"{seed_material}\0{check_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def assignment_package(folder: Path) -> str:
    """The name of the package an assignment folder is imported as."""
    return f"grader_assignment_{folder.resolve().name}"


def assignment_module(folder: Path, module: str):
    """``folder/module.py``, imported as a module of the folder's own package (so its modules can import each
    other: from .figures ...): the same module object whoever asks, the instructor's checks or a bundle."""
    package = assignment_package(folder)
    if package not in sys.modules:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(folder.resolve())]
        sys.modules[package] = importlib.util.module_from_spec(spec)
    return importlib.import_module(f"{package}.{module}")


# What verdicts.py may import: it is shipped to students, so nothing of the instructor's (no reference, no
# checks, no relative import of the folder's other modules) and no torch (the answers' own arithmetic).
VERDICTS_MAY_IMPORT = frozenset({"__future__", "math", "dataclasses", "typing", "numpy", "grader"})


def module_imports(source: str) -> set[str]:
    """The top-level modules ``source`` imports; a relative import as ".name" (the folder's own modules)."""
    import ast

    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.ImportFrom):  # from .checks import x; from . import answers
            imported |= {"." + node.module} if node.module else {"." + alias.name for alias in node.names}
    return imported


def refuse_foreign_imports(folder: Path, name: str) -> None:
    """verdicts.py's imports, read before anything of the folder runs (its checks.py imports it)."""
    source = folder / f"{VERDICTS_MODULE}.py"
    if not source.is_file():
        return
    foreign = sorted(module_imports(source.read_text(encoding="utf-8")) - VERDICTS_MAY_IMPORT)
    if foreign:
        raise AssignmentInvalid(name, _("%(file)s imports %(modules)s, but students receive it: it may import only "
                                        "%(allowed)s", file=source, modules=join_list(foreign),
                                        allowed=join_list(sorted(VERDICTS_MAY_IMPORT))))


def public_verdicts(folder: Path, name: str) -> dict[str, CustomVerdict]:
    """The custom verdicts an assignment shares with students (``verdicts.py``'s VERDICTS), by name.

    Its imports are read before it runs: one of the instructor's modules would ship the answers with it.
    """
    source = folder / f"{VERDICTS_MODULE}.py"
    if not source.is_file():
        raise AssignmentInvalid(name, _("no %(file)s, which judges its custom checks on a student's install",
                                        file=source))
    refuse_foreign_imports(folder, name)
    declared = getattr(assignment_module(folder, VERDICTS_MODULE), "VERDICTS", None)
    if not isinstance(declared, tuple) or not all(isinstance(v, CustomVerdict) for v in declared):
        raise AssignmentInvalid(name, _("%(file)s: VERDICTS must be a tuple of grader.checks.CustomVerdict",
                                        file=source))
    return {verdict.name: verdict for verdict in declared}


def declared_assignment(folder: Path) -> Assignment:
    """The ``ASSIGNMENT`` of a folder's checks.py, its root set, not yet validated (what grader.kit's tools read
    while an author is still writing it). A module that fails to import, or declares no Assignment, is refused
    naming the folder."""
    refuse_foreign_imports(folder, folder.name)
    try:
        declared = getattr(assignment_module(folder, "checks"), "ASSIGNMENT", None)
    except Exception as exc:  # the instructor's module, whatever it raises
        raise AssignmentInvalid(folder.name, [Problem("checks.py", _("importing it raised %(error)s",
                                                                     error=f"{type(exc).__name__}: {exc}"))]) from exc
    if not isinstance(declared, Assignment):
        raise AssignmentInvalid(folder.name, [Problem("checks.py", _(
            "it must define ASSIGNMENT, a grader.assignment.Assignment"))])
    declared.root = folder.resolve()
    return declared


def load_assignment(name_or_path: str | Path, check_references: bool = True) -> Assignment:
    """An assignment by folder path, or by name under the bundled ``assignments/`` folder, validated.

    ``check_references=False`` leaves ``Assignment.check_references`` to the caller, who runs it with its
    reference cache in use (the CLI: computed once, then read from disk).
    """
    folder = assignment_dir(name_or_path)
    if not (folder / "checks.py").is_file():
        raise FileNotFoundError(_("no assignment at %(name)r (expected a folder with checks.py)", name=str(name_or_path)))
    assignment = declared_assignment(folder)
    # Every problem at once, the declaration's and its files' (grader.kit.contract), naming the assignment.
    from .kit.contract import folder_problems

    problems = assignment.problems() + folder_problems(assignment)
    if problems:
        raise AssignmentInvalid(assignment.name, problems)
    custom = [c for c in assignment.checks if isinstance(c, CustomCheck)]
    if custom:
        shared = public_verdicts(assignment.root, assignment.name)
        unshared = [c.id for c in custom if shared.get(c.verdict.name) is not c.verdict]
        if unshared:
            raise AssignmentInvalid(assignment.name, [Problem(check, _(
                "its verdict is not in the assignment's %(module)s.py VERDICTS, so a student's install could not "
                "judge it", module=VERDICTS_MODULE)) for check in unshared])
    # Its lru_cache'd reference work is cached on disk and computed once under concurrency (grader.refcache).
    adopt_memoised(assignment_package(folder))
    single_threaded_numerics()
    if check_references:
        assignment.check_references()
    return assignment


def single_threaded_numerics() -> None:
    """Judging runs beside the workers' kernels: extra BLAS threads of torch would only contend with them."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


# --------------------------------------------------------------------------- planning

# How often a hidden plan is drawn again when one of its calls repeats a public one (a check whose inputs
# come from a small set, like a dimension, collides now and then; one whose inputs ignore the seed, always).
MAX_PUBLIC_COLLISIONS = 200


def identity_of(call: Call) -> str:
    """Equal for two calls with the same function, arguments (values and dtypes), object and gradients: calls
    with the same outcome."""
    from .checks import call_fields
    from .wire import call_identity

    return call_identity(call_fields(call))


def same_call(a: Call, b: Call) -> bool:
    return identity_of(a) == identity_of(b)


def public_calls(assignment: Assignment, check: Check) -> list[Call]:
    """The check's calls on the assignment's public inputs (cached: they are the same in every run)."""
    key = ("public calls", check.id)
    if key not in assignment.derived:
        assignment.derived[key] = check.calls(rng_for(public_material(assignment), check.id))
    return assignment.derived[key]


def figure_calls(assignment: Assignment, figure) -> list[Call]:
    """A figure's own calls: drawn from the public figure seed, or made of a check's public calls (its
    ``public_of``). Never from the secret: a figure is shown to the student."""
    if figure.public_of:
        check = next((c for c in assignment.checks if c.id == figure.public_of), None)
        if check is None:
            raise ValueError(f"no check {figure.public_of!r}")  # refused at load (Assignment.problems)
        return figure.make_calls(public_calls(assignment, check))
    return figure.make_calls(rng_for(figure_material(assignment), figure.id))


def draw_calls(assignment: Assignment, check: Check, seed_material: str) -> list[Call]:
    """The check's calls for a run; a hidden plan never repeats a public call.

    A student's bundle holds the public calls with their expected results, so a hidden call equal to one
    of them would be answered by copying: such a plan is drawn again from the same generator.
    """
    rng = rng_for(seed_material, check.id)
    calls = check.calls(rng)
    if seed_material == public_material(assignment):
        return calls
    public = {identity_of(known) for known in public_calls(assignment, check)}
    for _attempt in range(MAX_PUBLIC_COLLISIONS):
        if not any(identity_of(call) in public for call in calls):
            return calls
        calls = check.calls(rng)
    raise AssignmentInvalid(assignment.name, [Problem(check.id, _(
        "its hidden inputs keep repeating its public ones (do they depend on the seed?), so a student's bundle would "
        "answer them"))])
