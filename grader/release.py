"""``grader release``: what students get of an assignment, and nothing of the instructor's.

Two stages, each over the dataclasses of ``grader.bundle``:

1. **bundle** (``release_bundle``): the assignment's public calls, planned as ``grader check``
   plans them, and each check's judging data on them, computed from the reference here, once;
   written beside a copy of the template notebook (``write_release``).
2. **student package** (``build_student_wheel``, ``--wheel``): a wheel of the engine (``grader``
   with its templates and catalogs) and, of each assignment, only ``verdicts.py`` (how its
   custom checks judge from data) and its catalogs. No ``reference/``, no ``checks.py``, no
   solution, no notebook builder: the instructor's full install (``./install.sh``, editable)
   keeps those in the course's folder.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .assignment import VERDICTS_MODULE, Assignment
from .bundle import BUNDLE_SUFFIX, Bundle, BundledCheck, write_bundle
from .config import resolve_limits
from .execute import ExecutionOptions
from .i18n import _
from .load import load_notebook
from .pipeline import GradingOptions, plan_probes

GRADER_DIR = Path(__file__).resolve().parent
INSTRUCTOR_DISTRIBUTION = "attention-grader"
STUDENT_DISTRIBUTION = "attention-grader-student"
# What of the grader package a student's install needs besides its modules: the report templates and catalogs.
GRADER_DATA = ["templates/*.j2", "locale/*/LC_MESSAGES/*.po", "locale/glossary/*.json"]
ASSIGNMENT_DATA = ["locale/*/LC_MESSAGES/*.po"]
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pot")


@dataclass(frozen=True)
class Release:
    """What ``grader release`` wrote."""

    bundle: Path
    template: Path
    wheel: Path | None = None


# --------------------------------------------------------------------------- the bundle

def release_bundle(assignment: Assignment) -> Bundle:
    """The assignment's public checks with their judging data, as ``grader check`` would plan them."""
    limits = resolve_limits(assignment.settings())  # what the bundle's self-checks run under
    planned = plan_probes(assignment, GradingOptions(execution=ExecutionOptions(limits), figures=False))
    template = load_notebook(assignment.root / assignment.template)
    return Bundle(name=assignment.name, title=assignment.title, template=Path(assignment.template).name,
                  exercises=list(assignment.exercises),
                  checks=[BundledCheck.of(plan.check, plan.calls, plan.check.judging_data(plan.calls))
                          for plan in planned],
                  template_answers=dict(template.answers), answer_points=dict(assignment.answer_points),
                  preload=tuple(assignment.preload), cell_timeout=limits.cell_timeout, budget=limits.budget)


def bundle_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}{BUNDLE_SUFFIX}"


def write_release(assignment: Assignment, out_dir: Path) -> Release:
    """The template notebook and the bundle, side by side in ``out_dir`` (where a student keeps them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = release_bundle(assignment)
    template = out_dir / bundle.template
    shutil.copyfile(assignment.root / assignment.template, template)
    path = bundle_path(out_dir, assignment.name)
    write_bundle(bundle, path)
    return Release(path, template)


# --------------------------------------------------------------------------- the student package

def student_pyproject(assignments: list[Assignment]) -> str:
    """The student distribution's metadata: the instructor's dependencies and entry points, the student's files."""
    instructor = importlib.metadata.distribution(INSTRUCTOR_DISTRIBUTION)
    dependencies = [r for r in instructor.requires or [] if "extra ==" not in r]
    entry_points: dict[str, dict[str, str]] = {}
    for point in instructor.entry_points:
        entry_points.setdefault(point.group, {})[point.name] = point.value
    scripts = entry_points.pop("console_scripts", {})
    packages = ["grader", "assignments", *(f"assignments.{a.name}" for a in assignments)]
    package_data = {"grader": GRADER_DATA, **{f"assignments.{a.name}": ASSIGNMENT_DATA for a in assignments}}

    def table(values: dict[str, str]) -> str:
        return "\n".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items())

    sections = [
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"',
        f'[project]\nname = "{STUDENT_DISTRIBUTION}"\nversion = "{__version__}"\n'
        f'description = "attention-grader for students: grader check and self_check() from an assignment\'s bundle"\n'
        f'requires-python = {json.dumps(instructor.metadata["Requires-Python"] or ">=3.10")}\n'
        f"dependencies = {json.dumps(dependencies)}",
        f"[project.scripts]\n{table(scripts)}",
        *(f'[project.entry-points."{group}"]\n{table(points)}' for group, points in entry_points.items()),
        f"[tool.setuptools]\npackages = {json.dumps(packages)}",
        f"[tool.setuptools.package-data]\n{table(package_data)}",
    ]
    return "\n\n".join(sections) + "\n"


def stage_student_sources(assignments: list[Assignment], stage: Path) -> None:
    """The student distribution's source tree: the engine, and each assignment's verdicts and catalogs."""
    shutil.copytree(GRADER_DIR, stage / "grader", ignore=LEFT_OUT)
    (stage / "assignments").mkdir()
    (stage / "assignments" / "__init__.py").write_text(
        '"""The public part of each released assignment: its verdicts.py and catalogs (no checks, no reference)."""\n')
    for assignment in assignments:
        folder = stage / "assignments" / assignment.name
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        verdicts = assignment.root / f"{VERDICTS_MODULE}.py"
        if verdicts.is_file():
            shutil.copyfile(verdicts, folder / verdicts.name)
        if (assignment.root / "locale").is_dir():
            shutil.copytree(assignment.root / "locale", folder / "locale", ignore=LEFT_OUT)
    (stage / "pyproject.toml").write_text(student_pyproject(assignments))


def build_student_wheel(assignments: list[Assignment], out_dir: Path) -> Path:
    """The student package as a wheel in ``out_dir``, built with pip from a staged source tree (no network when
    setuptools is installed here, as it is in the instructor's environment)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grader-student-") as tmp:
        stage = Path(tmp) / "src"
        stage.mkdir()
        stage_student_sources(assignments, stage)
        try:
            import setuptools  # noqa: F401 - present: build here, offline
            offline = ["--no-build-isolation", "--no-index"]
        except ImportError:
            offline = []
        built = Path(tmp) / "wheel"
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "--quiet",
                               "--disable-pip-version-check", "-w", str(built), str(stage)],
                              capture_output=True, text=True)
        wheels = sorted(built.glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(_("building the student wheel failed: %(reason)s",
                                 reason=(done.stderr or done.stdout)[-2000:]))
        target = out_dir / wheels[0].name
        shutil.copyfile(wheels[0], target)
    return target
