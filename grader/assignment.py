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

from .checks import Check
from .figures import Figure
from .refcache import adopt_memoised

ASSIGNMENTS_DIR = Path(__file__).resolve().parent.parent / "assignments"


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
            raise ValueError(f"{self.name}: duplicate check ids")
        known = {e.id for e in self.exercises}
        stray = [c.id for c in self.checks if c.exercise not in known]
        if stray:
            raise ValueError(f"{self.name}: checks for unknown exercises: {stray}")


def hash_files(digest, files) -> None:
    for file in sorted(files):
        digest.update(str(file.name).encode())
        digest.update(file.read_bytes())


def rng_for(seed_material: str, check_id: str) -> np.random.Generator:
    """The generator a check draws its inputs from: one per (seed, check), stable across runs and machines."""
    digest = hashlib.sha256(f"{seed_material}\0{check_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def load_assignment(name_or_path: str | Path) -> Assignment:
    """An assignment by folder path, or by name under the bundled ``assignments/`` folder."""
    folder = Path(name_or_path)
    if not (folder / "checks.py").is_file():
        folder = ASSIGNMENTS_DIR / str(name_or_path)
    checks_file = folder / "checks.py"
    if not checks_file.is_file():
        raise FileNotFoundError(f"no assignment at {name_or_path!r} (expected a folder with checks.py)")
    # The folder becomes a package of its own, so its modules can import each other (from .figures ...).
    package = f"grader_assignment_{folder.resolve().name}"
    if package not in sys.modules:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(folder.resolve())]
        sys.modules[package] = importlib.util.module_from_spec(spec)
    assignment: Assignment = importlib.import_module(f"{package}.checks").ASSIGNMENT
    assignment.root = folder.resolve()
    assignment.validate()
    # Its lru_cache'd reference work is cached on disk and computed once under concurrency (grader.refcache).
    adopt_memoised(package)
    single_threaded_numerics()
    return assignment


def single_threaded_numerics() -> None:
    """Judging runs beside the workers' kernels: extra BLAS threads of torch would only contend with them."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
