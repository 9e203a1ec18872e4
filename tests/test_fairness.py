"""Fair on every secret: each correct way of writing the assignment scores full marks on 200 secrets.

Judged in process (grader.selfcheck.judge_in_process): the grader's own plan, probe encoding
and judging, without a kernel per secret, the secrets shared between one process per core.
The secrets ("fairness-<i>") were not used while the checks were designed. Value checks are
held for every correct style of the test corpus on all 200; the learned widths (fit_width, the
shrinking-rate study), which cost seconds per call, for the solution on LEARNED_SECRETS (48 in
CI, 200 with FAIRNESS_LEARNED_SECRETS=200) and for every other style on the first
LEARNED_STYLE_SECRETS.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from assignments.attention_pooling.build_notebooks import DATA, SOLUTION
from grader.pipeline import GradingOptions, plan_probes
from grader.selfcheck import judge_in_process
from tests.learner_notebooks import EPSILON, FLOAT32, PER_SAMPLE_SGD
from tests.submissions import LOOPS_WAY, NUMPY_WAY

pytestmark = pytest.mark.slow

SECRETS = [f"fairness-{i}" for i in range(200)]
# The learned widths cost seconds a secret (the student's own descent and width finder, in process): CI holds
# them on the first 48 secrets, shared between the cores; FAIRNESS_LEARNED_SECRETS=200 holds them on all.
LEARNED_SECRETS = SECRETS[:int(os.environ.get("FAIRNESS_LEARNED_SECRETS", "48"))]
LEARNED = ("ex2.fit_width", "ex4.shrinking_study")
LEARNED_STYLE_SECRETS = 4
CORRECT_STYLES = {"solution": SOLUTION, "numpy": NUMPY_WAY, "loops": LOOPS_WAY, "epsilon": EPSILON,
                  "float32": FLOAT32, "per-sample SGD": PER_SAMPLE_SGD}


def namespace(functions: dict[str, str]) -> dict:
    """The notebook's data cell and its functions, run as the kernel would run them."""
    scope = {"__name__": "__main__"}
    exec(DATA, scope)
    for exercise in ("ex1", "ex2", "ex3", "ex4"):
        exec(functions[exercise], scope)
    return scope


def implementations(exercise: str) -> dict[str, tuple[str, dict]]:
    """One namespace per distinct code of an exercise (styles that share it are judged once)."""
    found = {}
    for name, functions in CORRECT_STYLES.items():
        found.setdefault(functions[exercise], (name, functions))
    return {name: namespace(functions) for name, functions in found.values()}


def keeps(rule: tuple[str, tuple[str, ...]]):
    """A check filter as data (a process of its own gets it pickled): ("only", ids) or ("except", ids)."""
    kind, ids = rule
    return (lambda check_id: check_id in ids) if kind == "only" else (lambda check_id: check_id not in ids)


def failures_in_a_process(exercise: str, secrets: list[str], rule) -> list[tuple]:
    from grader.assignment import load_assignment

    torch.set_num_threads(1)
    return failures(load_assignment("attention_pooling"), exercise, secrets, keeps(rule))


def failures_on_every_core(exercise: str, secrets: list[str], rule) -> list[tuple]:
    """The secrets shared between one process per core: each secret is judged independently (the learned widths
    cost seconds each, and CI runs the tests one at a time), so the claim is the same, sooner."""
    cores = max(1, min(len(os.sched_getaffinity(0)), 4))
    shares = [secrets[i::cores] for i in range(cores)]
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    with ProcessPoolExecutor(cores, mp_context=context) as pool:
        return [f for found in pool.map(failures_in_a_process, [exercise] * cores, shares, [rule] * cores)
                for f in found]


def failures(assignment, exercise: str, secrets: list[str], keep) -> list[tuple]:
    found = []
    spaces = implementations(exercise)
    for secret in secrets:
        planned = plan_probes(assignment, GradingOptions(secret=secret, exercises=(exercise,), figures=False), keep)
        for style, scope in spaces.items():
            if secret not in SECRETS[:LEARNED_STYLE_SECRETS] and style != "solution" and any(
                    p.check.id in LEARNED for p in planned):
                continue
            found += [(style, secret, r.id, r.message) for r in judge_in_process(planned, scope) if not r.passed]
    return found


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("exercise", ["ex1", "ex2", "ex3", "ex4"])
def test_every_correct_style_passes_every_value_check_on_200_secrets(exercise):
    assert failures_on_every_core(exercise, SECRETS, ("except", LEARNED)) == []


@pytest.mark.parametrize("check_id", LEARNED)
def test_learned_widths_get_full_marks_on_fresh_secrets(check_id):
    assert failures_on_every_core(check_id.split(".")[0], LEARNED_SECRETS, ("only", (check_id,))) == []


def test_a_negative_width_counts_as_its_absolute_value_and_a_constant_earns_nothing(assignment):
    """Only sigma^2 enters the kernel: -s is the model s. A fixed return value is not a learned width."""
    from grader.model import ProbeOutcome

    check = next(c for c in assignment.checks if c.id == "ex2.fit_width")
    import importlib
    checks = importlib.import_module("grader_assignment_attention_pooling.checks")
    calls = check.calls(np.random.default_rng(20240))

    def outcome(value):
        return ProbeOutcome("x", "ok", value=np.array(value, dtype=np.float64))

    best = [checks.reference_fit(call.context)[0] for call in calls[::2]]
    negative = [outcome(-best[i // 2] if i % 2 == 0 else 1e-3 * (i + 1)) for i in range(len(calls))]
    verdict = check.judge(calls, negative)
    assert verdict.fraction == 1.0 and "negative" in verdict.message
    constant = [outcome(best[i // 2] if i % 2 == 0 else 0.0) for i in range(len(calls))]
    verdict = check.judge(calls, constant)
    assert math.isclose(verdict.fraction, 2 / 3) and "not a width" in verdict.message
    floor = [outcome(best[i // 2] if i % 2 == 0 else 1e-3) for i in range(len(calls))]
    verdict = check.judge(calls, floor)  # a descent clamped at a floor: the collapse asked for, not a fixed answer
    assert verdict.fraction == 1.0 and "on every data set" not in verdict.message
    fixed = [outcome(best[i // 2] if i % 2 == 0 else 1.0) for i in range(len(calls))]  # never moved from the start
    verdict = check.judge(calls, fixed)
    assert math.isclose(verdict.fraction, 2 / 3) and "on every data set" in verdict.message
