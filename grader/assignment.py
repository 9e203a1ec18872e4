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

import numpy as np

from .checks import Call, Check, CustomCheck, CustomVerdict
from .figures import Figure
from .i18n import _
from .refcache import adopt_memoised

ASSIGNMENTS_DIR = Path(__file__).resolve().parent.parent / "assignments"
# The module of an assignment that judges its custom checks from data: the one part of an assignment a
# student's install holds (see grader.release), so it must compute no answer.
VERDICTS_MODULE = "verdicts"


class AssignmentError(ValueError):
    """An assignment (or a bundle of one) that cannot be used as it is; the message names it and what is wrong."""


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
    preload: tuple[str, ...] = ()  # modules the kernel imports before the student's cells, to save time
    cell_timeout: float = 120.0
    budget: float = 600.0  # wall-clock seconds for one whole submission
    public_seed: str = "public"
    root: Path = field(default=Path("."))
    hidden_paths: tuple[Path, ...] = ()  # what the sandbox must hide (reference solutions, ...)
    figures: list[Figure] = field(default_factory=list)
    answer_points: dict[str, float] = field(default_factory=dict)  # maximum points of each written answer
    # The answer cells' placeholder texts by tag; None: read from the template notebook when needed (a bundle
    # carries them, since a student's notebook may be the released template itself, edited).
    template_answers: dict[str, str] | None = None

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

    def checks_for(self, exercise_id: str) -> list[Check]:
        return [c for c in self.checks if c.exercise == exercise_id]

    def validate(self) -> None:
        ids = [c.id for c in self.checks]
        if len(ids) != len(set(ids)):
            raise AssignmentError(f"{self.name}: duplicate check ids")
        known = {e.id for e in self.exercises}
        stray = [c.id for c in self.checks if c.exercise not in known]
        if stray:
            raise AssignmentError(f"{self.name}: checks for unknown exercises: {stray}")
        problems = [f"{c.id}: {problem}" for c in self.checks for problem in c.problems()]
        if problems:
            raise AssignmentError(f"{self.name}: " + "; ".join(problems))


def hash_files(digest, files) -> None:
    for file in sorted(files):
        digest.update(str(file.name).encode())
        digest.update(file.read_bytes())


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


def public_verdicts(folder: Path, name: str) -> dict[str, CustomVerdict]:
    """The custom verdicts an assignment shares with students (``verdicts.py``'s VERDICTS), by name."""
    source = folder / f"{VERDICTS_MODULE}.py"
    if not source.is_file():
        raise AssignmentError(_("%(assignment)s: no %(file)s, which judges its custom checks on a student's install",
                                assignment=name, file=source))
    declared = getattr(assignment_module(folder, VERDICTS_MODULE), "VERDICTS", None)
    if not isinstance(declared, tuple) or not all(isinstance(v, CustomVerdict) for v in declared):
        raise AssignmentError(_("%(file)s: VERDICTS must be a tuple of grader.checks.CustomVerdict", file=source))
    return {verdict.name: verdict for verdict in declared}


def load_assignment(name_or_path: str | Path) -> Assignment:
    """An assignment by folder path, or by name under the bundled ``assignments/`` folder."""
    folder = Path(name_or_path)
    if not (folder / "checks.py").is_file():
        folder = ASSIGNMENTS_DIR / str(name_or_path)
    checks_file = folder / "checks.py"
    if not checks_file.is_file():
        raise FileNotFoundError(_("no assignment at %(name)r (expected a folder with checks.py)", name=str(name_or_path)))
    assignment: Assignment = assignment_module(folder, "checks").ASSIGNMENT
    assignment.root = folder.resolve()
    assignment.validate()
    custom = [c for c in assignment.checks if isinstance(c, CustomCheck)]
    if custom:
        shared = public_verdicts(assignment.root, assignment.name)
        unshared = [c.id for c in custom if shared.get(c.verdict.name) is not c.verdict]
        if unshared:
            raise AssignmentError(_("%(assignment)s: the verdicts of %(checks)s are not in its %(module)s.py VERDICTS, "
                                    "so a student's install could not judge them", assignment=assignment.name,
                                    checks=", ".join(unshared), module=VERDICTS_MODULE))
    # Its lru_cache'd reference work is cached on disk and computed once under concurrency (grader.refcache).
    adopt_memoised(assignment_package(folder))
    single_threaded_numerics()
    return assignment


def single_threaded_numerics() -> None:
    """Judging runs beside the workers' kernels: extra BLAS threads of torch would only contend with them."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


# --------------------------------------------------------------------------- planning

# How often a hidden plan is drawn again when one of its calls repeats a public one (a check whose inputs
# come from a small set, like a dimension, collides now and then; one whose inputs ignore the seed, always).
MAX_PUBLIC_COLLISIONS = 200
_PUBLIC_CALLS: dict[tuple[str, str, str], list[Call]] = {}


def same_call(a: Call, b: Call) -> bool:
    """The same function, arguments (values and dtypes), object and gradients: the same outcome."""
    from .checks import call_fields
    from .wire import call_identity

    return call_identity(call_fields(a)) == call_identity(call_fields(b))


def public_calls(assignment: Assignment, check: Check) -> list[Call]:
    """The check's calls on the assignment's public inputs (cached: they are the same in every run)."""
    key = (str(assignment.root), assignment.public_seed, check.id)
    if key not in _PUBLIC_CALLS:
        _PUBLIC_CALLS[key] = check.calls(rng_for(f"public:{assignment.public_seed}", check.id))
    return _PUBLIC_CALLS[key]


def draw_calls(assignment: Assignment, check: Check, seed_material: str) -> list[Call]:
    """The check's calls for a run; a hidden plan never repeats a public call.

    A student's bundle holds the public calls with their expected results, so a hidden call equal to one
    of them would be answered by copying: such a plan is drawn again from the same generator.
    """
    rng = rng_for(seed_material, check.id)
    calls = check.calls(rng)
    if seed_material == f"public:{assignment.public_seed}":
        return calls
    public = public_calls(assignment, check)
    for _attempt in range(MAX_PUBLIC_COLLISIONS):
        if not any(same_call(call, known) for call in calls for known in public):
            return calls
        calls = check.calls(rng)
    raise AssignmentError(_("%(check)s: its hidden inputs keep repeating its public ones (do they depend on the seed?), "
                            "so a student's bundle would answer them", check=check.id))
