"""One configuration: the engine's defaults, and the order in which a run's settings are decided.

A run's limits (cell timeout, call timeout, budget, memory, ...) are resolved in this order:

1. what the command line (or a caller: ``self_check(call_timeout=...)``, a test) says;
2. what the assignment says (``Assignment.cell_timeout``, ``budget`` and ``limits``);
3. the engine's defaults, ``ENGINE_LIMITS`` (the field defaults of ``grader.sandbox.Limits``).

The CLI's options default to None, meaning "not said", so an assignment's settings are not
overridden by a default nobody chose. The CLI, the pipeline, the platforms and ``self_check``
all take their defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .sandbox import GIB, Limits

ENGINE_LIMITS = Limits()
LIMIT_NAMES = frozenset(f.name for f in fields(Limits))
DEFAULT_SANDBOX = "auto"  # the best tier that works here (grader.execute.SANDBOX_TIERS)
SANDBOX_CHOICES = ("auto", "require", "namespaces", "uid", "off")  # --sandbox, as grader.execute reads them
DEFAULT_LANGUAGE = "en"
# Kernels a run's zygote forks before it imports what torch loads on first use (grader.zygote.LAZY_PARTS): a run of
# one notebook never waits for it. A Dask worker made ready before it joins (grader.dask_runs) imports it at once: 0.
LAZY_AFTER = 2
# The drawing process's niceness (grader.drawing): the kernels are the critical path, figures are drawn beside them.
DRAWING_NICENESS = 10
ASSIGNMENT_METADATA_KEY = "grader"  # a notebook's metadata["grader"]["assignment"], written by the template
# Root's sandboxes each run their kernel as a uid of its own from here (grader.uids): systemd's "unused" range
# between its container uids and the foreign range (docs/UIDS-GIDS.md), clear of accounts and of /etc/subuid's.
SANDBOX_UIDS = range(1_879_048_192, 2_147_352_576)
# Where the user namespace maps only 65536 uids (rootless container runtimes): the top of the 16-bit range, below
# nobody (65534).
SANDBOX_UIDS_16BIT = range(40_000, 65_534)


def unknown_limits(settings: Mapping[str, Any]) -> list[str]:
    """The names in ``settings`` that are no field of Limits (a misspelt assignment setting)."""
    return sorted(set(settings) - LIMIT_NAMES)


def resolve_limits(assignment: Mapping[str, Any] | None = None, command_line: Mapping[str, Any] | None = None,
                   engine: Limits = ENGINE_LIMITS) -> Limits:
    """The run's limits: the command line's values, else the assignment's, else the engine's (None: not said)."""
    chosen: dict[str, Any] = {}
    for layer in (assignment or {}, command_line or {}):  # later layers win
        unknown = unknown_limits(layer)
        if unknown:
            raise ValueError(f"no such limit: {', '.join(unknown)} (limits: {', '.join(sorted(LIMIT_NAMES))})")
        # As the engine's own type (an assignment's budget=600 is 600.0): the same limits make the same grading key.
        chosen.update({name: type(getattr(engine, name))(value) for name, value in layer.items() if value is not None})
    return replace(engine, **chosen)


def command_line_limits(cell_timeout: float | None = None, call_timeout: float | None = None,
                        budget: float | None = None, memory_gib: float | None = None) -> dict[str, Any]:
    """The limits a command line said, by Limits field (None where it said nothing)."""
    return {"cell_timeout": cell_timeout, "call_timeout": call_timeout, "budget": budget,
            "memory_bytes": None if memory_gib is None else int(memory_gib * GIB)}


# --------------------------------------------------------------------------- the course platforms' defaults

GRADESCOPE_VISIBILITIES = ("visible", "after_due_date", "after_published")


@dataclass(frozen=True)
class Layout:
    """Where a platform puts the upload and expects the result (configurable, so tests can move it)."""

    submission_dir: Path
    results_file: Path


GRADESCOPE = Layout(Path("/autograder/submission"), Path("/autograder/results/results.json"))
PRAIRIELEARN = Layout(Path("/grade/student"), Path("/grade/results/results.json"))

# grader review DIR (grader.review): the files it keeps in the class's output folder, and its similarity thresholds,
# measured on benchmarks/bench_review.py's labelled answers and copied code.
REVIEWS_FILE = "reviews.csv"  # the marks, in the format grader grade --reviews reads
RUBRIC_FILE = "rubric.json"  # the instructor's rubric items per answer tag
ANSWER_GROUP_SIMILARITY = 0.4  # cosine of character n-gram TF-IDF at or above which answers share a group
CODE_SIMILARITY = 0.5  # share of a function's fingerprints found in another's at or above which a pair is shown
REVIEW_HOST = "127.0.0.1"  # the review page is served to this machine only

# Sealed expected values (grader.seal): a student's bundle confirms an answer within its tolerance without holding
# it. Each number's grid is shifted by one of SEAL_SHIFTS steps so that the expected value sits near the middle of
# its cell; the cells are hashed with PBKDF2-SHA256 at SEAL_ITERATIONS (about 10 ms a digest: a self-check computes
# a few dozen; searching candidates for one scalar answer costs as much as trying them in the self-check).
SEAL_SHIFTS = 8
SEAL_ITERATIONS = 20_000
