"""The kinds of check an assignment declares, pytest-style: data plus small hooks.

A check makes probe calls from a seeded generator (``calls``) and later turns what came
back into a Verdict (``judge``), in the grader process. ``ValueCheck`` covers "this
function, on these inputs, within this tolerance, with these known wrong variants";
``CustomCheck`` takes the two hooks as plain functions for studies that need more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .i18n import N_, _
from .compare import Comparison, as_array, compare_arrays, relative_error
from .model import ProbeOutcome


@dataclass(frozen=True)
class Call:
    """One call the check wants made. ``context`` stays in the grader; only the function and args travel."""

    function: str
    args: tuple
    grad_wrt: int | None = None
    timeout: float | None = None  # seconds; None takes the run's default call limit
    context: Any = None


@dataclass(frozen=True)
class Case:
    """Inputs for one call of a ValueCheck; ``label`` names them in reports of public runs only."""

    label: str
    args: tuple


@dataclass(frozen=True)
class Misconception:
    """A known wrong idea: what it computes (``variant``) or how to recognise it (``recognise``)."""

    name: str
    explanation: str
    variant: Callable[..., Any] | None = None
    recognise: Callable[[np.ndarray, np.ndarray, tuple], bool] | None = None
    rtol: float = 1e-4
    atol: float = 1e-10
    credit: float = 0.0  # the share of a case's points still earned when its failure is this one (instructor's choice)

    def matches(self, got: np.ndarray, expected: np.ndarray, args: tuple) -> bool:
        if self.recognise is not None:
            try:
                return bool(self.recognise(got, expected, args))
            except Exception:
                return False
        wrong = as_array(self.variant(*args))
        return compare_arrays(got, wrong, self.rtol, self.atol).matches


@dataclass(frozen=True)
class Accepted:
    """A computation a careful grader accepts as right (a stabilising epsilon, float32, another order)."""

    name: str
    variant: Callable[..., Any]


# The tolerance policy's margin: on every input a check keeps, each accepted computation lies at
# least this factor inside the tolerance and each misconception this factor outside it (or as far
# inside, where it coincides with the right answer by design). An input at the edge is redrawn.
EDGE_FACTOR = 10
MAX_REDRAWS = 40


@dataclass
class Verdict:
    fraction: float  # of the check's points earned, 0..1
    message: str
    diagnosis: str | None = None
    details: dict = field(default_factory=dict)
    errored: bool = False  # nothing could be judged: every call failed to produce a value


NOT_IMPLEMENTED = N_("The template's stub is still there: the function raises NotImplementedError.")
NOT_DEFINED = N_("Define the function with exactly this name in a code cell of the notebook.")


def failure_diagnosis(outcome: ProbeOutcome) -> str | None:
    if outcome.status == "error" and outcome.error_type == "NotImplementedError":
        return NOT_IMPLEMENTED
    if outcome.status == "missing":
        return NOT_DEFINED
    return None


def first_failure(calls: Sequence[Call], outcomes: Sequence[ProbeOutcome]) -> Verdict | None:
    """An errored Verdict when no call returned a value, else None."""
    if any(o.status == "ok" for o in outcomes):
        return None
    outcome = outcomes[0]
    return Verdict(0.0, outcome.describe_failure(calls[0].function), failure_diagnosis(outcome),
                   {"traceback": outcome.traceback} if outcome.traceback else {}, errored=True)


@dataclass
class Check:
    id: str
    exercise: str
    title: str
    points: float
    hint: str = ""  # shown on failure: what to revisit
    read: str = ""  # where in the textbook section

    def calls(self, rng: np.random.Generator) -> list[Call]:
        raise NotImplementedError

    def judge(self, calls: list[Call], outcomes: list[ProbeOutcome]) -> Verdict:
        raise NotImplementedError

    def warm(self, calls: list[Call]) -> None:
        """Work that does not depend on the student (reference results), done while the worker runs."""


@dataclass
class ValueCheck(Check):
    """Call ``function`` on each case and hold the result (or its gradient) against ``expected``."""

    function: str = ""
    cases: Callable[[np.random.Generator], list[Case]] = lambda rng: []
    expected: Callable[..., Any] = None
    rtol: float = 1e-6
    atol: float = 1e-10
    scale: Callable[..., float] | None = None  # the size of what is summed, from the args (see compare_arrays)
    misconceptions: tuple[Misconception, ...] = ()
    accepted: tuple[Accepted, ...] = ()  # what must pass with a margin (the tolerance policy's evidence)
    grad_wrt: int | None = None  # set to compare d(result)/d(args[grad_wrt]) instead of the value
    broken_gradient: str = ""  # the diagnosis when autograd cannot reach that argument
    timeout: float | None = None

    def calls(self, rng):
        cases = self.cases(rng)
        for _attempt in range(MAX_REDRAWS):
            edge = [i for i, case in enumerate(cases) if self.at_edge(case.args)]
            if not edge:
                break
            fresh = self.cases(rng)  # the same designs (sizes, widths), new data: replace only the edge ones
            cases = [fresh[i] if i in edge else case for i, case in enumerate(cases)]
        return [Call(self.function, case.args, self.grad_wrt, self.timeout, context=case.label) for case in cases]

    def margins(self, args: tuple) -> tuple[list[float], list[float]]:
        """The relative errors (in the check's measure) of each accepted computation and each misconception."""
        expected, scale = as_array(self.expected(*args)), self.case_scale(args)

        def error(variant):
            try:
                return relative_error(as_array(variant(*args)), expected, scale)
            except Exception:
                return float("inf")

        return ([error(a.variant) for a in self.accepted],
                [error(m.variant) for m in self.misconceptions if m.variant is not None])

    def at_edge(self, args: tuple) -> bool:
        """True when an input would let a known computation's verdict depend on the draw (see EDGE_FACTOR)."""
        accepted, wrong = self.margins(args)
        low, high = self.rtol / EDGE_FACTOR, self.rtol * EDGE_FACTOR
        return any(e > low for e in accepted) or any(low < e < high for e in wrong)

    def case_scale(self, args: tuple) -> float:
        return float(self.scale(*args)) if self.scale else 0.0

    def _got(self, outcome: ProbeOutcome) -> np.ndarray | None:
        if self.grad_wrt is None:
            return outcome.value
        return None if outcome.grad is None else np.asarray(outcome.grad, dtype=np.float64)

    def judge(self, calls, outcomes):
        errored = first_failure(calls, outcomes)
        if errored:
            return errored
        passed, failures = 0, []
        for call, outcome in zip(calls, outcomes):
            if outcome.status != "ok":
                failures.append((call, outcome, None, None, Comparison(False, outcome.describe_failure(self.function))))
                continue
            expected = as_array(self.expected(*call.args))
            got = self._got(outcome)
            if got is None:
                failures.append((call, outcome, None, expected, Comparison(False, outcome.describe_gradient_failure())))
                continue
            comparison = compare_arrays(got, expected, self.rtol, self.atol, scale=self.case_scale(call.args))
            if comparison.matches:
                passed += 1
            else:
                failures.append((call, outcome, got, expected, comparison))
        if not failures:
            return Verdict(1.0, _("Correct on all %(count)s inputs.", count=len(calls)),
                           details={"rtol": self.rtol, "atol": self.atol, "cases": len(calls)})
        call, outcome, got, expected, comparison = failures[0]
        if got is not None and got.size == 1 and expected is not None and expected.size == 1:
            first = _("expected %(expected)s, got %(got)s", expected=f"{float(expected.ravel()[0]):.6g}",
                      got=f"{float(got.ravel()[0]):.6g}")
        else:
            first = comparison.reason
        message = _("Wrong on %(wrong)s of %(count)s inputs (first: %(first)s).", wrong=len(failures), count=len(calls),
                    first=first)
        details = comparison.details(self.rtol, self.atol, self.case_scale(call.args))
        details.update(cases=len(calls), failed_cases=len(failures), first_failure=call.context)
        if got is not None and got.size and expected is not None:
            details["got_shape"], details["expected_shape"] = list(got.shape), list(expected.shape)
        diagnosis, misconception = self.diagnose(failures)
        judged = sum(failure[2] is not None for failure in failures)
        credit = misconception.credit * judged if misconception else 0.0
        return Verdict((passed + credit) / len(calls), message, diagnosis, details)

    def diagnose(self, failures) -> tuple[str | None, Misconception | None]:
        """The diagnosis, and the misconception every judged failure matches (None when there is no such one)."""
        if self.grad_wrt is not None and any(f[2] is None and f[1].status == "ok" for f in failures):
            return self.broken_gradient or None, None
        judged = [(call, got, expected) for call, _, got, expected, _ in failures if got is not None]
        if not judged:
            return failure_diagnosis(failures[0][1]), None
        for misconception in self.misconceptions:
            if all(misconception.matches(got, expected, call.args) for call, got, expected in judged):
                return misconception.explanation, misconception
        return None, None


@dataclass
class CustomCheck(Check):
    """A check whose calls and judgement are two plain functions (studies, learned widths)."""

    make_calls: Callable[[np.random.Generator], list[Call]] = None
    make_verdict: Callable[[list[Call], list[ProbeOutcome]], Verdict] = None
    prepare: Callable[[list[Call]], None] | None = None  # cacheable reference work, run while the worker runs

    def calls(self, rng):
        return self.make_calls(rng)

    def warm(self, calls):
        if self.prepare:
            self.prepare(calls)

    def judge(self, calls, outcomes):
        return first_failure(calls, outcomes) or self.make_verdict(calls, outcomes)
