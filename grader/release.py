"""``grader release``: what students get of an assignment, and nothing of the instructor's.

Two stages, each over the dataclasses of ``grader.bundle``:

1. **bundle** (``release_bundle``): the assignment's public calls, planned as ``grader check``
   plans them, and each check's judging data on them, computed from the reference here, once;
   written beside a copy of the template notebook (``write_release``).
2. **student package** (``build_student_wheels``, ``--wheel``): two wheels. The engine,
   ``attention-grader-student`` (``grader`` with its templates and catalogs), versioned by its
   content (``0.1.0+g<hash>``): every release made with the same grader writes the same one. And
   the assignment, ``attention-grader-student-<assignment>``, versioned by the release
   (``0.1.0+r<hash>``, the hash of the bundle released with it, which records it): only
   ``assignments/<name>/verdicts.py`` (how its custom checks judge from data) and its catalogs,
   without the texts that state an answer. Releases of several assignments install side by side
   (``assignments/`` is a namespace package there). No ``reference/``, no ``checks.py``, no
   solution, no notebook builder: the instructor's full install (``./install.sh``, editable) keeps
   those in the course's folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .version import __version__
from .assignment import VERDICTS_MODULE, Assignment
from .bundle import BUNDLE_SUFFIX, Bundle, BundledCheck, bundle_json, write_bundle
from .checks import CustomCheck
from .config import resolve_limits
from .environment import provided_list
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
    wheels: tuple[Path, ...] = ()  # the engine's and the assignment's, with --wheel


# --------------------------------------------------------------------------- the bundle

def released_check(check):
    """The check's declaration as released: the answer-stating diagnoses only where the instructor opted in."""
    if isinstance(check, CustomCheck) and check.release_answer_diagnoses:
        return dataclasses.replace(check, released_answer_diagnoses=dict(check.answer_diagnoses))
    return check


def release_bundle(assignment: Assignment) -> Bundle:
    """The assignment's public checks with what a student's install may hold of their judging data
    (``Check.released_data``: expected results sealed, nothing for a check whose data states its answer)."""
    limits = resolve_limits(assignment.settings())  # what the bundle's self-checks run under
    planned = plan_probes(assignment, GradingOptions(execution=ExecutionOptions(limits), figures=False))
    template = load_notebook(assignment.root / assignment.template)
    bundle = Bundle(name=assignment.name, title=assignment.title, template=Path(assignment.template).name,
                    exercises=list(assignment.exercises),
                    checks=[BundledCheck.of(released_check(plan.check), plan.calls,
                                            plan.check.released_data(plan.calls)) for plan in planned],
                    template_answers=dict(template.answers), answer_points=dict(assignment.answer_points),
                    preload=tuple(assignment.preload), cell_timeout=limits.cell_timeout, budget=limits.budget,
                    grading_environment=provided_list())
    # The release's version: the grader's, with the hash of what this release holds (its salts make each new).
    digest = hashlib.sha256(bundle_json(bundle).encode("utf-8")).hexdigest()[:10]
    bundle.release = f"{__version__}+r{digest}"
    return bundle


def bundle_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}{BUNDLE_SUFFIX}"


def write_release(assignment: Assignment, out_dir: Path, wheel: bool = False) -> Release:
    """The template notebook and the bundle, side by side in ``out_dir`` (where a student keeps them); with
    ``wheel``, the student package's two wheels too. Releases of other assignments in ``out_dir`` stay."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = release_bundle(assignment)
    template = out_dir / bundle.template
    shutil.copyfile(assignment.root / assignment.template, template)
    path = bundle_path(out_dir, assignment.name)
    write_bundle(bundle, path)
    wheels = build_student_wheels(assignment, bundle.release, out_dir) if wheel else ()
    return Release(path, template, tuple(wheels))


# --------------------------------------------------------------------------- the student package

def assignment_distribution(name: str) -> str:
    return f"{STUDENT_DISTRIBUTION}-{name.replace('_', '-')}"


def _table(values: dict[str, str]) -> str:
    return "\n".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items())


def _pyproject(name: str, version: str, description: str, dependencies: list[str], packages: list[str],
               package_data: dict[str, list[str]], extra_sections: list[str] = ()) -> str:
    instructor = importlib.metadata.distribution(INSTRUCTOR_DISTRIBUTION)
    sections = [
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"',
        f'[project]\nname = "{name}"\nversion = "{version}"\ndescription = {json.dumps(description)}\n'
        f'requires-python = {json.dumps(instructor.metadata["Requires-Python"] or ">=3.10")}\n'
        f"dependencies = {json.dumps(dependencies)}",
        *extra_sections,
        f"[tool.setuptools]\npackages = {json.dumps(packages)}",
        f"[tool.setuptools.package-data]\n{_table(package_data)}",
    ]
    return "\n\n".join(sections) + "\n"


def engine_pyproject(version: str) -> str:
    """The engine's metadata: the instructor's dependencies (torch unpinned: a student's own torch, CPU or CUDA,
    is kept) and entry points."""
    instructor = importlib.metadata.distribution(INSTRUCTOR_DISTRIBUTION)
    dependencies = [r for r in instructor.requires or [] if "extra ==" not in r]
    entry_points: dict[str, dict[str, str]] = {}
    for point in instructor.entry_points:
        entry_points.setdefault(point.group, {})[point.name] = point.value
    scripts = entry_points.pop("console_scripts", {})
    extra = [f"[project.scripts]\n{_table(scripts)}",
             *(f'[project.entry-points."{group}"]\n{_table(points)}' for group, points in entry_points.items())]
    return _pyproject(STUDENT_DISTRIBUTION, version, "attention-grader for students: grader check and self_check() "
                      "from an assignment's bundle", dependencies, ["grader"], {"grader": GRADER_DATA}, extra)


def tree_digest(folder: Path) -> str:
    """A short hash of a folder's files, names and contents: the version's local part."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:10]


def stage_engine(stage: Path) -> str:
    """The engine's source tree; returns its version (the grader's, and the hash of its files)."""
    shutil.copytree(GRADER_DIR, stage / "grader", ignore=LEFT_OUT)
    version = f"{__version__}+g{tree_digest(stage / 'grader')}"
    (stage / "pyproject.toml").write_text(engine_pyproject(version))
    return version


def answer_texts(assignment: Assignment) -> set[str]:
    """The diagnoses that state an answer and that the instructor did not opt to release."""
    return {text for check in assignment.checks if isinstance(check, CustomCheck)
            and not check.release_answer_diagnoses for text in check.answer_diagnoses.values()}


def strip_catalog(source: Path, target: Path, leave_out: set[str]) -> None:
    """A copy of a .po catalog without the entries of ``leave_out`` (their msgids and translations)."""
    from babel.messages.pofile import read_po, write_po

    with source.open("rb") as handle:
        catalog = read_po(handle)
    for msgid in leave_out:
        if msgid in catalog:
            del catalog[msgid]
    with target.open("wb") as handle:
        write_po(handle, catalog, width=0, omit_header=False)


def stage_assignment(assignment: Assignment, release: str, stage: Path) -> None:
    """One assignment's public part: verdicts.py and catalogs (less the answer-stating texts)."""
    folder = stage / "assignments" / assignment.name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    verdicts = assignment.root / f"{VERDICTS_MODULE}.py"
    if verdicts.is_file():
        shutil.copyfile(verdicts, folder / verdicts.name)
    leave_out = answer_texts(assignment)
    for po in sorted((assignment.root / "locale").glob("*/LC_MESSAGES/*.po")):
        target = folder / po.relative_to(assignment.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        strip_catalog(po, target, leave_out)
    package = f"assignments.{assignment.name}"
    (stage / "pyproject.toml").write_text(_pyproject(
        assignment_distribution(assignment.name), release,
        f"{assignment.title}: the public part of release {release} for grader check and self_check()",
        # Any engine of this grader version or later: the newest engine a student installs serves every release
        # (a bundle of a format it cannot read says which package to install).
        [f"{STUDENT_DISTRIBUTION}>={__version__}"], [package], {package: ASSIGNMENT_DATA}))


def _build(stage: Path, out_dir: Path) -> Path:
    """A wheel of the staged tree, built with pip (offline when setuptools is installed here, as in the
    instructor's environment)."""
    try:
        import setuptools  # noqa: F401 - present: build here, offline
        offline = ["--no-build-isolation", "--no-index"]
    except ImportError:
        offline = []
    built = stage.parent / f"{stage.name}-wheel"
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


def build_student_wheels(assignment: Assignment, release: str, out_dir: Path) -> list[Path]:
    """The engine's wheel and the assignment's, in ``out_dir``. An engine wheel of another grader there (an earlier
    release's) is replaced: students install every wheel of the folder, and two engines cannot both be installed.
    The assignment's wheel of an earlier release of the same assignment is replaced too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grader-student-") as tmp:
        engine, part = Path(tmp) / "engine", Path(tmp) / "assignment"
        engine.mkdir()
        part.mkdir()
        stage_engine(engine)
        stage_assignment(assignment, release, part)
        built = [_build(engine, out_dir), _build(part, out_dir)]
    for wheel, distribution in zip(built, (STUDENT_DISTRIBUTION, assignment_distribution(assignment.name))):
        for older in out_dir.glob(f"{distribution.replace('-', '_')}-*.whl"):
            if older != wheel:
                older.unlink()
    return built
