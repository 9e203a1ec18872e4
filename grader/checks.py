"""The kinds of check an assignment declares, pytest-style: data plus small hooks.

A check makes probe calls from a seeded generator (``calls``) and later turns what came
back into a Verdict (``judge``), in the grader process. ``ValueCheck`` covers "this
function, on these inputs, within this tolerance, with these known wrong variants";
``CustomCheck`` takes its hooks as plain functions for studies that need more.

Judging is two steps: ``judging_data(calls)`` computes from the reference everything the
verdict needs besides the student's outcomes (expected values, each misconception's output,
tabulated losses), and ``judge_with(calls, data, outcomes)`` gives the verdict from that
alone. The instructor's grader does both; a student's bundle (``grader.bundle``) carries the
data of the public inputs, so the student's install judges with the same ``judge_with`` and
no reference. Fields marked ``INSTRUCTOR_ONLY`` (the reference, the variants, the inputs'
designs) never leave the instructor's side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .i18n import N_, Message, _
from .compare import Comparison, as_array, compare_arrays, relative_error
from .model import OutcomeStatus, ProbeOutcome

# Dataclass field metadata: the field holds the instructor's code or secrets-bound data, never released.
INSTRUCTOR_ONLY = {"instructor_only": True}


@dataclass(frozen=True)
class Call:
    """One call the check wants made. ``context`` stays in the grader; only the function and args travel."""

    function: str
    args: tuple
    grad_wrt: int | None = None
    timeout: float | None = None  # seconds; None takes the run's default call limit
    context: Any = field(default=None, metadata=INSTRUCTOR_ONLY)


@dataclass(frozen=True)
class Case:
    """Inputs for one call of a ValueCheck; ``label`` names them in reports of public runs only."""

    label: str | Message
    args: tuple


@dataclass(frozen=True)
class Recogniser:
    """A wrong answer told by its shape alone (what came back against what was expected).

    Engine code, named, so that a student's bundle can name the ones its misconceptions use
    (``RECOGNISERS``); a misconception that needs the inputs is a ``variant`` instead.
    """

    name: str
    test: Callable[[np.ndarray, np.ndarray], bool]


def _only_signs(got: np.ndarray, expected: np.ndarray) -> bool:
    return bool(np.isin(got, (-1.0, 0.0, 1.0)).all() and np.allclose(np.sign(got), np.sign(expected)))


def _nan_where_finite(got: np.ndarray, expected: np.ndarray) -> bool:
    return bool(np.isnan(got).any() and not np.isnan(expected).any())


SIGN_ONLY = Recogniser("sign-only", _only_signs)  # -1/0/+1 with the expected signs: the class, not the score
NAN_WHERE_FINITE = Recogniser("nan-where-finite", _nan_where_finite)  # NaN where the expected value is finite
RECOGNISERS = {r.name: r for r in (SIGN_ONLY, NAN_WHERE_FINITE)}


@dataclass(frozen=True)
class Misconception:
    """A known wrong idea: what it computes (``variant``) or how to recognise it (``recognise``)."""

    name: str
    explanation: str
    variant: Callable[..., Any] | None = field(default=None, metadata=INSTRUCTOR_ONLY)
    recognise: Recogniser | None = None
    rtol: float = 1e-4
    atol: float = 1e-10
    credit: float = 0.0  # the share of a case's points still earned when its failure is this one (instructor's choice)

    def output(self, args: tuple) -> np.ndarray | None:
        """What the variant computes on ``args`` (None for a recogniser, or a variant that fails there)."""
        if self.variant is None:
            return None
        try:
            return as_array(self.variant(*args))
        except Exception:
            return None

    def matches(self, got: np.ndarray, expected: np.ndarray, wrong: np.ndarray | None) -> bool:
        """``wrong``: this misconception's output on the case's inputs (``output``), precomputed."""
        if self.recognise is not None:
            try:
                return bool(self.recognise.test(got, expected))
            except Exception:
                return False
        return wrong is not None and compare_arrays(got, wrong, self.rtol, self.atol).matches

    def problem(self) -> str | None:
        """What makes this declaration unusable, in words (None: nothing)."""
        if (self.variant is None) == (self.recognise is None):
            return f"misconception {self.name!r} needs exactly one of variant and recognise"
        if self.recognise is not None and RECOGNISERS.get(self.recognise.name) is not self.recognise:
            return (f"misconception {self.name!r}: its recogniser must be one of grader.checks.RECOGNISERS "
                    f"({', '.join(RECOGNISERS)}), which a student's install has")
        return None


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
    if outcome.status == OutcomeStatus.ERROR and outcome.error_type == "NotImplementedError":
        return NOT_IMPLEMENTED
    if outcome.status == OutcomeStatus.MISSING:
        return NOT_DEFINED
    return None


def first_failure(calls: Sequence[Call], outcomes: Sequence[ProbeOutcome]) -> Verdict | None:
    """An errored Verdict when no call returned a value, else None."""
    if any(o.status == OutcomeStatus.OK for o in outcomes):
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

    def judging_data(self, calls: list[Call]) -> Any:
        """What the verdict needs besides the outcomes, computed from the reference (a dataclass of plain data)."""
        raise NotImplementedError

    def judge_with(self, calls: list[Call], data: Any, outcomes: list[ProbeOutcome]) -> Verdict:
        """The verdict from ``judging_data``'s data and the outcomes alone: the code a student's bundle runs too.

        It reads the calls' functions and arguments, never their ``context`` (which a bundle does not carry).
        """
        raise NotImplementedError

    def judge(self, calls: list[Call], outcomes: list[ProbeOutcome]) -> Verdict:
        return self.judge_with(calls, self.judging_data(calls), outcomes)

    def warm(self, calls: list[Call]) -> None:
        """Work that does not depend on the student (reference results), done while the worker runs."""

    def problems(self) -> list[str]:
        """What makes this declaration unusable, in words: checked when the assignment loads."""
        return []


@dataclass(frozen=True, eq=False)
class CaseData:
    """What a ValueCheck's verdict needs of one input: the expected result and each misconception's."""

    label: str | Message
    expected: np.ndarray
    scale: float
    wrong: tuple[np.ndarray | None, ...]  # aligned with the check's misconceptions; None for a recogniser


@dataclass(frozen=True, eq=False)
class ValueData:
    cases: tuple[CaseData, ...]


@dataclass
class ValueCheck(Check):
    """Call ``function`` on each case and hold the result (or its gradient) against ``expected``."""

    function: str = ""
    cases: Callable[[np.random.Generator], list[Case]] = field(default=lambda rng: [], metadata=INSTRUCTOR_ONLY)
    expected: Callable[..., Any] = field(default=None, metadata=INSTRUCTOR_ONLY)
    rtol: float = 1e-6
    atol: float = 1e-10
    # the size of what is summed, from the args (see compare_arrays)
    scale: Callable[..., float] | None = field(default=None, metadata=INSTRUCTOR_ONLY)
    misconceptions: tuple[Misconception, ...] = ()
    # what must pass with a margin (the tolerance policy's evidence)
    accepted: tuple[Accepted, ...] = field(default=(), metadata=INSTRUCTOR_ONLY)
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

    def judging_data(self, calls):
        return ValueData(tuple(CaseData(call.context if call.context is not None else "", as_array(self.expected(*call.args)),
                                        self.case_scale(call.args),
                                        tuple(m.output(call.args) for m in self.misconceptions))
                               for call in calls))

    def problems(self):
        missing = [] if callable(self.expected) else ["no reference: `expected` is not a function"]
        return missing + [problem for m in self.misconceptions if (problem := m.problem())]

    def _got(self, outcome: ProbeOutcome) -> np.ndarray | None:
        if self.grad_wrt is None:
            return outcome.value
        return None if outcome.grad is None else np.asarray(outcome.grad, dtype=np.float64)

    def judge_with(self, calls, data: ValueData, outcomes):
        errored = first_failure(calls, outcomes)
        if errored:
            return errored
        passed, failures = 0, []
        for case, outcome in zip(data.cases, outcomes):
            if outcome.status != "ok":
                failures.append((case, outcome, None, Comparison(False, outcome.describe_failure(self.function))))
                continue
            got = self._got(outcome)
            if got is None:
                failures.append((case, outcome, None, Comparison(False, outcome.describe_gradient_failure())))
                continue
            comparison = compare_arrays(got, case.expected, self.rtol, self.atol, scale=case.scale)
            if comparison.matches:
                passed += 1
            else:
                failures.append((case, outcome, got, comparison))
        count = len(data.cases)
        if not failures:
            return Verdict(1.0, _("Correct on all %(count)s inputs.", count=count),
                           details={"rtol": self.rtol, "atol": self.atol, "cases": count})
        case, outcome, got, comparison = failures[0]
        expected = case.expected if outcome.status == "ok" else None
        if got is not None and got.size == 1 and expected is not None and expected.size == 1:
            first = _("expected %(expected)s, got %(got)s", expected=f"{float(expected.ravel()[0]):.6g}",
                      got=f"{float(got.ravel()[0]):.6g}")
        else:
            first = comparison.reason
        message = _("Wrong on %(wrong)s of %(count)s inputs (first: %(first)s).", wrong=len(failures), count=count,
                    first=first)
        details = comparison.details(self.rtol, self.atol, case.scale)
        details.update(cases=count, failed_cases=len(failures), first_failure=str(case.label))
        if got is not None and got.size and expected is not None:
            details["got_shape"], details["expected_shape"] = list(got.shape), list(expected.shape)
        diagnosis, misconception = self.diagnose(failures)
        judged = sum(failure[2] is not None for failure in failures)
        credit = misconception.credit * judged if misconception else 0.0
        return Verdict((passed + credit) / count, message, diagnosis, details)

    def diagnose(self, failures) -> tuple[str | None, Misconception | None]:
        """The diagnosis, and the misconception every judged failure matches (None when there is no such one)."""
        if self.grad_wrt is not None and any(f[2] is None and f[1].status == "ok" for f in failures):
            return self.broken_gradient or None, None
        judged = [(case, got) for case, _, got, _ in failures if got is not None]
        if not judged:
            return failure_diagnosis(failures[0][1]), None
        for index, misconception in enumerate(self.misconceptions):
            if all(misconception.matches(got, case.expected, case.wrong[index]) for case, got in judged):
                return misconception.explanation, misconception
        return None, None


@dataclass(frozen=True)
class CustomVerdict:
    """How a custom check judges from its data: public code of the assignment, named so a bundle can find it.

    It lives in the assignment's ``verdicts.py`` (its ``VERDICTS``), the one module of an assignment a
    student's install holds: it must compute nothing an exercise asks for (no reference, no variant).
    """

    name: str
    data_type: type  # the dataclass ``judge`` reads: a bundle's data is read back into it, checked field by field
    judge: Callable[[Any, list[ProbeOutcome]], Verdict]


@dataclass
class CustomCheck(Check):
    """A check whose calls, data and judgement are plain functions (studies, learned widths)."""

    make_calls: Callable[[np.random.Generator], list[Call]] = field(default=None, metadata=INSTRUCTOR_ONLY)
    make_data: Callable[[list[Call]], Any] = field(default=None, metadata=INSTRUCTOR_ONLY)  # from the reference
    verdict: CustomVerdict = None
    # cacheable reference work, run while the worker runs
    prepare: Callable[[list[Call]], None] | None = field(default=None, metadata=INSTRUCTOR_ONLY)

    def calls(self, rng):
        return self.make_calls(rng)

    def warm(self, calls):
        if self.prepare:
            self.prepare(calls)

    def judging_data(self, calls):
        return self.make_data(calls)

    def judge_with(self, calls, data, outcomes):
        return first_failure(calls, outcomes) or self.verdict.judge(data, outcomes)

    def problems(self):
        problems = [f"no {name}: a CustomCheck needs it" for name in ("make_calls", "make_data")
                    if not callable(getattr(self, name))]
        if not isinstance(self.verdict, CustomVerdict):
            problems.append("a CustomCheck needs a verdict (grader.checks.CustomVerdict) from the assignment's verdicts.py")
        return problems
