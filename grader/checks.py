"""The kinds of check an assignment declares, pytest-style: data plus small hooks.

A check makes probe calls from a seeded generator (``calls``) and later turns what came
back into a Verdict (``judge``), in the grader process. ``ValueCheck`` covers "this
function, on these inputs, within this tolerance, with these known wrong variants";
``CustomCheck`` takes its hooks as plain functions for studies that need more.

Judging is two steps: ``judging_data(calls)`` computes from the reference everything the
verdict needs besides the student's outcomes (expected values, each misconception's output,
tabulated losses), and ``judge_with(calls, data, outcomes)`` gives the verdict from that
alone. The instructor's grader does both; a student's bundle (``grader.bundle``) carries what
``released_data`` keeps of the public inputs' data (the expected results sealed, ``grader.seal``;
nothing where the data would state the answer), so the student's install judges with the same
``judge_with`` and no reference. Fields marked ``INSTRUCTOR_ONLY`` (the reference, the variants,
the inputs' designs, the diagnoses that state an answer) never leave the instructor's side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .i18n import N_, Message, _, join_list, join_sentences
from .compare import Comparison, compare_values, value_category, value_error
from .model import Construct, FailureCategory, OutcomeStatus, ProbeOutcome, Value, is_numbers, numeric_array
from .probe_runtime import invoke
from .seal import Seal, compare_sealed, seal_value
from .wire import to_value

# Dataclass field metadata: the field holds the instructor's code or secrets-bound data, never released.
INSTRUCTOR_ONLY = {"instructor_only": True}


@dataclass(frozen=True)
class Call:
    """One call the check wants made. ``context`` stays in the grader; the rest travels.

    ``function`` names a function of the student's notebook, or with ``construct`` a class whose object is
    built and called (grader.model.Construct). ``grad_wrt``: argument indices and parameter names to
    differentiate the result by.
    """

    function: str
    args: tuple
    grad_wrt: int | str | tuple[int | str, ...] | None = None
    timeout: float | None = None  # seconds; None takes the run's default call limit
    context: Any = field(default=None, metadata=INSTRUCTOR_ONLY)
    kwargs: dict[str, Value] = field(default_factory=dict)
    construct: Construct | None = None


def call_fields(call: Call) -> dict:
    """What grader.probe_runtime.invoke reads of a call, as the worker sends it to the student's kernel."""
    from .wire import call_json
    from .model import ProbeCall

    return call_json(ProbeCall("", call.function, tuple(call.args), call.grad_wrt, 0.0, dict(call.kwargs),
                               call.construct))


def value_text(value) -> str:
    """A call's argument as code a student can read (long arrays summarised by NumPy)."""
    if isinstance(value, np.ndarray):
        body = " ".join(np.array2string(value, separator=", ", threshold=24, edgeitems=3, precision=6).split())
        return f"array({body}" + ("" if value.dtype == np.float64 else f", dtype={value.dtype}") + ")"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(value_text, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(map(value_text, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {value_text(v)}" for k, v in value.items()) + "}"
    return repr(value.item() if isinstance(value, np.generic) else value)


def call_text(call: Call) -> str:
    """The call as the grader made it, written as code: ``f(array([...]), 0.5)``; an object built first is written
    ``Cls(...)`` with the parameters it was given, then called (or its method)."""
    arguments = ", ".join([*map(value_text, call.args), *(f"{k}={value_text(v)}" for k, v in call.kwargs.items())])
    if call.construct is None:
        return f"{call.function}({arguments})"
    built = call.construct
    init = ", ".join([*map(value_text, built.init_args),
                      *(f"{k}={value_text(v)}" for k, v in built.init_kwargs.items())])
    lines = [f"obj = {call.function}({init})"]
    lines += [f"obj.{name} = {value_text(v)}" for name, v in built.params.items()]
    lines.append(f"obj({arguments})" if built.method == "forward" else f"obj.{built.method}({arguments})")
    return "\n".join(lines)


def reference_value(target: Callable, call: Call) -> Value:
    """What ``target`` (the reference, a variant, an accepted computation) returns when called exactly as the
    student's code is: through the probe runtime's ``invoke``, in the grader. With ``grad_wrt``, the gradient(s)
    of the sum of its result; a single target's gradient is the value itself."""
    fields = call_fields(call)
    result, leaves, _names = invoke(target, fields)
    if not leaves:
        return to_value(result)
    import torch

    output = result[0] if isinstance(result, (tuple, list)) else result
    order = [str(w) for w in fields["grad_wrt"]]  # as the call names them, as a student's outcome's grads are read
    grads = torch.autograd.grad(output.sum(), [leaves[key] for key in order], allow_unused=True)
    values = tuple(to_value(g) for g in grads)
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class Case:
    """Inputs for one call of a ValueCheck; ``label`` names them in reports of public runs only.

    ``construct``: the check's ``function`` names a class; the object is built so (grader.model.Construct).
    """

    label: str | Message
    args: tuple
    kwargs: dict | None = None
    construct: Construct | None = None


@dataclass(frozen=True)
class Recogniser:
    """A wrong answer told by its shape alone (what came back against what was expected).

    Engine code, named, so that a student's bundle can name the ones its misconceptions use
    (``RECOGNISERS``); a misconception that needs the inputs is a ``variant`` instead.
    """

    name: str
    test: Callable[[np.ndarray, np.ndarray], bool]
    # The same test against a sealed case (SealedCase: the signs of the expected value sealed, whether it has NaN):
    # what a student's bundle judges with.
    sealed_test: Callable[[np.ndarray, "SealedCase"], bool] = None


def _only_signs(got: np.ndarray, expected: np.ndarray) -> bool:
    return bool(np.isin(got, (-1.0, 0.0, 1.0)).all() and np.allclose(np.sign(got), np.sign(expected)))


def _only_signs_sealed(got: np.ndarray, case: "SealedCase") -> bool:
    return bool(np.isin(got, (-1.0, 0.0, 1.0)).all() and case.signs is not None
                and case.signs.matches(np.sign(got)))


def _nan_where_finite(got: np.ndarray, expected: np.ndarray) -> bool:
    return bool(np.isnan(got).any() and not np.isnan(expected).any())


def _nan_where_finite_sealed(got: np.ndarray, case: "SealedCase") -> bool:
    return bool(np.isnan(got).any() and not case.has_nan)


# -1/0/+1 with the expected signs: the class, not the score
SIGN_ONLY = Recogniser("sign-only", _only_signs, _only_signs_sealed)
# NaN where the expected value is finite
NAN_WHERE_FINITE = Recogniser("nan-where-finite", _nan_where_finite, _nan_where_finite_sealed)
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
    # A combination (``together``): the explanations of the mistakes it makes at once, each named in the diagnosis.
    components: tuple[str, ...] = ()

    def diagnosis(self) -> str:
        """What the report says when every failure is this misconception: its explanation, or each component's."""
        if not self.components:
            return self.explanation
        return _(AT_ONCE, mistakes=join_sentences([_(text) for text in self.components]))

    def output(self, call: Call) -> Value | None:
        """What the variant computes on the call's inputs (None for a recogniser, or a variant that fails there:
        this misconception is then not recognised on that input, and nothing else changes)."""
        if self.variant is None:
            return None
        try:
            return reference_value(self.variant, call)
        except Exception:
            return None

    def matches(self, got: Value, expected: Value, wrong: Value | None) -> bool:
        """``wrong``: this misconception's output on the case's inputs (``output``), precomputed."""
        if self.recognise is not None:
            if not (is_numbers(got) and is_numbers(expected)):
                return False
            try:
                return bool(self.recognise.test(np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)))
            except Exception:
                return False
        return wrong is not None and compare_values(got, wrong, self.rtol, self.atol).matches

    def problem(self) -> str | None:
        """What makes this declaration unusable, in words (None: nothing)."""
        if not (self.explanation or "").strip():
            return f"misconception {self.name!r} has no explanation: a report names it by its text"
        if (self.variant is None) == (self.recognise is None):
            return f"misconception {self.name!r} needs exactly one of variant and recognise"
        if self.recognise is not None and RECOGNISERS.get(self.recognise.name) is not self.recognise:
            return (f"misconception {self.name!r}: its recogniser must be one of grader.checks.RECOGNISERS "
                    f"({', '.join(RECOGNISERS)}), which a student's install has")
        return None


AT_ONCE = N_("Your results match several mistakes made together: %(mistakes)s")


def together(variant: Callable[..., Any], *parts: Misconception) -> Misconception:
    """The misconception of making ``parts`` at once, computed by ``variant``: learners make two mistakes together
    (a window left out and the weights renormalised), and the diagnosis names each one."""
    return Misconception(" + ".join(part.name for part in parts), AT_ONCE, variant,
                         components=tuple(part.explanation for part in parts))


def pairs(components: Sequence[tuple[dict, Misconception]], compose: Callable[..., Callable[..., Any]],
          exclude: Sequence[frozenset[str]] = ()) -> tuple[Misconception, ...]:
    """Every pair of composable misconceptions, made together. ``components``: each misconception that a variant
    computes from settings (``compose(**settings)``), with those settings; a pair's variant takes both's settings.
    ``exclude``: pairs of names whose combination means nothing (no Gaussian, and a Gaussian of the wrong width)."""
    import itertools

    made = []
    for (first, one), (second, other) in itertools.combinations(components, 2):
        if frozenset((one.name, other.name)) not in exclude:
            made.append(together(compose(**first, **second), one, other))
    return tuple(made)


def with_pairs(singles: Sequence[Misconception], settings: dict[str, dict], compose: Callable[..., Callable[..., Any]],
               exclude: Sequence[frozenset[str]] = ()) -> tuple[Misconception, ...]:
    """A check's misconceptions one at a time, then every meaningful two of them together (``pairs``): ``settings``
    gives, by name, what ``compose`` needs to compute each one that composes."""
    return tuple(singles) + pairs([(settings[m.name], m) for m in singles if m.name in settings], compose, exclude)


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
    message: str  # free text, numbers and all: on hidden inputs, the instructor's only (grader.views)
    diagnosis: str | None = None  # a fixed text (a msgid), never formatted with values: students see it on hidden inputs
    details: dict = field(default_factory=dict)
    errored: bool = False  # nothing could be judged: every call failed to produce a value
    # What went wrong, in a fixed word (grader.model.FailureCategory); None: the grader tells it from the outcomes
    # (outcome_category).
    category: FailureCategory | None = None
    unjudged: bool = False  # a self-check that cannot judge this check (its data would state the answer)


UNSET = N_("`%(cls)s` has parameters the contract does not name, which the grader left at their random initial "
           "values: %(unset)s. It sets only %(named)s, so your results depend on those random values; build only "
           "the layers the contract names (a layer's bias is a parameter too).")
UNSET_NONE_NAMED = N_("`%(cls)s` has parameters the contract does not give it, which the grader left at their random "
                      "initial values: %(unset)s. The contract's `%(cls)s` has no parameters, so your results depend "
                      "on those random values.")
NOT_IMPLEMENTED = N_("The template's stub is still there: the function raises NotImplementedError.")
NOT_DEFINED = N_("Define the function with exactly this name in a code cell of the notebook.")


def failure_diagnosis(outcome: ProbeOutcome) -> str | None:
    if outcome.status == OutcomeStatus.ERROR and outcome.error_type == "NotImplementedError":
        return NOT_IMPLEMENTED
    if outcome.status == OutcomeStatus.MISSING:
        return NOT_DEFINED
    return None


FAILED_STATUS = {OutcomeStatus.ERROR: FailureCategory.RAISED, OutcomeStatus.MISSING: FailureCategory.MISSING,
                 OutcomeStatus.TIMEOUT: FailureCategory.TIMED_OUT, OutcomeStatus.KERNEL_DIED: FailureCategory.KERNEL_DIED,
                 OutcomeStatus.INVALID: FailureCategory.UNREADABLE, OutcomeStatus.NOT_RUN: FailureCategory.NOT_RUN}


def outcome_category(outcomes: Sequence[ProbeOutcome]) -> FailureCategory:
    """A failed check's category from its outcomes alone (a custom check's verdict names none): the first call
    that returned nothing, else NaN or inf in what came back, else a wrong value."""
    for outcome in outcomes:
        if outcome.status != OutcomeStatus.OK:
            return FAILED_STATUS.get(outcome.status, FailureCategory.UNREADABLE)
    for outcome in outcomes:
        array = outcome.array()
        if array is not None and array.dtype.kind == "f" and not np.isfinite(array).all():
            return FailureCategory.NOT_FINITE
    return FailureCategory.WRONG_VALUE


def first_failure(calls: Sequence[Call], outcomes: Sequence[ProbeOutcome]) -> Verdict | None:
    """An errored Verdict when no call returned a value, else None."""
    if any(o.status == OutcomeStatus.OK for o in outcomes):
        return None
    outcome = outcomes[0]
    return Verdict(0.0, outcome.describe_failure(calls[0].function), failure_diagnosis(outcome),
                   {"traceback": outcome.traceback} if outcome.traceback else {}, errored=True,
                   category=outcome_category(outcomes[:1]))


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

    def released_data(self, calls: list[Call]) -> Any:
        """What a student's bundle holds of ``judging_data`` on the public calls: nothing from which the expected
        results follow (docs/students.md). None: the check is not self-checked."""
        return self.judging_data(calls)

    def warm(self, calls: list[Call]) -> None:
        """Work that does not depend on the student (reference results), done while the worker runs."""

    def problems(self) -> list[str]:
        """What makes this declaration unusable, in words: checked when the assignment loads."""
        return []


@dataclass(frozen=True, eq=False)
class CaseData:
    """What a ValueCheck's verdict needs of one input: the expected result and each misconception's."""

    label: str | Message
    expected: Value
    scale: float
    wrong: tuple[Value | None, ...]  # aligned with the check's misconceptions; None for a recogniser

    def compare(self, got, rtol: float, atol: float) -> Comparison:
        return compare_values(got, self.expected, rtol, atol, scale=self.scale)

    def matches(self, index: int, misconception: Misconception, got) -> bool:
        return misconception.matches(got, self.expected, self.wrong[index])

    def shown_expected(self) -> Value:
        """The expected value as a report may show it."""
        return self.expected

    def sealed(self, rtol: float, atol: float, misconceptions: Sequence[Misconception]) -> SealedCase:
        """This case as a student's bundle holds it: the expected value and the misconceptions' results sealed."""
        wrong = tuple(None if w is None else seal_value(w, m.rtol, m.atol) for w, m in zip(self.wrong, misconceptions))
        numbers = is_numbers(self.expected)
        recognised = {m.recognise.name for m in misconceptions if m.recognise is not None}
        signs = seal_value(np.sign(np.asarray(self.expected, dtype=np.float64)), 0.0, 0.25) \
            if numbers and SIGN_ONLY.name in recognised else None
        has_nan = bool(numbers and np.isnan(np.asarray(self.expected, dtype=np.float64)).any())
        sealed = seal_value(self.expected, rtol, atol, self.scale)
        return SealedCase(self.label, sealed, sealed.scale, wrong, signs, has_nan)


@dataclass(frozen=True, eq=False)
class SealedCase:
    """A CaseData as a student's bundle holds it (grader.seal): confirms a result without holding the expected one."""

    label: str | Message
    expected: Seal
    scale: float
    wrong: tuple[Seal | None, ...]
    signs: Seal | None = None  # the expected value's signs, when a misconception is recognised by them
    has_nan: bool = False

    def compare(self, got, rtol: float, atol: float) -> Comparison:
        return compare_sealed(got, self.expected)

    def matches(self, index: int, misconception: Misconception, got) -> bool:
        if misconception.recognise is not None:  # as Misconception.matches: numbers against numbers only
            array = numeric_array(got) if is_numbers(got) and self.expected.is_numbers else None
            if array is None or misconception.recognise.sealed_test is None:
                return False
            try:
                return misconception.recognise.sealed_test(array, self)
            except Exception:
                return False
        wrong = self.wrong[index]
        return wrong is not None and wrong.matches(got)

    def shown_expected(self) -> Value:
        return None  # sealed: a self-check's report shows the shape (details) and never the number


@dataclass(frozen=True, eq=False)
class ValueData:
    cases: tuple[CaseData, ...]


@dataclass(frozen=True, eq=False)
class SealedValueData:
    """A ValueCheck's judging data as a student's bundle holds it."""

    cases: tuple[SealedCase, ...]


@dataclass
class ValueCheck(Check):
    """Call ``function`` on each case and hold the result (or its gradient) against the reference's.

    ``expected`` is the reference: a function, or with the cases' ``construct`` a class, called exactly as
    the student's (grader.probe_runtime.invoke); so are each misconception's ``variant`` and each accepted
    computation. Its result may be a structure (a tuple ``(output, weights)``): compared item by item.
    """

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
    # compare d sum(result) / d this argument (index) or parameter of a constructed object (name) instead of the value
    grad_wrt: int | str | None = None
    broken_gradient: str = ""  # the diagnosis when autograd cannot reach that argument
    timeout: float | None = None

    def _call(self, case: Case) -> Call:
        return Call(self.function, tuple(case.args), self.grad_wrt, self.timeout, context=case.label,
                    kwargs=dict(case.kwargs or {}), construct=case.construct)

    def calls(self, rng):
        cases = self.cases(rng)
        for _attempt in range(MAX_REDRAWS):
            edge = [i for i, case in enumerate(cases) if self.at_edge(self._call(case))]
            if not edge:
                break
            fresh = self.cases(rng)  # the same designs (sizes, widths), new data: replace only the edge ones
            cases = [fresh[i] if i in edge else case for i, case in enumerate(cases)]
        return [self._call(case) for case in cases]

    def margins(self, call: Call) -> tuple[list[float], list[float]]:
        """The relative errors (in the check's measure) of each accepted computation and each misconception."""
        expected, scale = reference_value(self.expected, call), self.case_scale(call)

        def error(variant):
            try:
                return value_error(reference_value(variant, call), expected, scale)
            except Exception:
                return float("inf")

        return ([error(a.variant) for a in self.accepted],
                [error(m.variant) for m in self.misconceptions if m.variant is not None])

    def at_edge(self, call: Call) -> bool:
        """True when an input would let a known computation's verdict depend on the draw (see EDGE_FACTOR)."""
        if not self.accepted and not any(m.variant is not None for m in self.misconceptions):
            return False
        accepted, wrong = self.margins(call)
        low, high = self.rtol / EDGE_FACTOR, self.rtol * EDGE_FACTOR
        return any(e > low for e in accepted) or any(low < e < high for e in wrong)

    def case_scale(self, call: Call) -> float:
        return float(self.scale(*call.args)) if self.scale else 0.0

    def judging_data(self, calls):
        return ValueData(tuple(CaseData(call.context if call.context is not None else "",
                                        reference_value(self.expected, call), self.case_scale(call),
                                        tuple(m.output(call) for m in self.misconceptions))
                               for call in calls))

    def released_data(self, calls):
        return SealedValueData(tuple(case.sealed(self.rtol, self.atol, self.misconceptions)
                                     for case in self.judging_data(calls).cases))

    def problems(self):
        missing = [] if callable(self.expected) else ["no reference: `expected` is not a function"]
        return missing + [problem for m in self.misconceptions if (problem := m.problem())]

    def _got(self, outcome: ProbeOutcome) -> Value | None:
        if self.grad_wrt is None:
            return outcome.value
        return outcome.grads.get(str(self.grad_wrt))

    def judge_with(self, calls, data: ValueData | SealedValueData, outcomes):
        errored = first_failure(calls, outcomes)
        if errored:
            return errored
        passed, failures = 0, []
        for case, outcome in zip(data.cases, outcomes):
            if outcome.status != OutcomeStatus.OK:
                failures.append((case, outcome, None, Comparison(False, outcome.describe_failure(self.function))))
                continue
            got = self._got(outcome)
            if got is None and self.grad_wrt is not None:
                failures.append((case, outcome, None, Comparison(False, outcome.describe_gradient_failure())))
                continue
            comparison = case.compare(got, self.rtol, self.atol)
            if comparison.matches:
                passed += 1
            else:
                failures.append((case, outcome, got, comparison))
        count = len(data.cases)
        if not failures:
            return Verdict(1.0, _("Correct on all %(count)s inputs.", count=count),
                           details={"rtol": self.rtol, "atol": self.atol, "cases": count})
        case, outcome, got, comparison = failures[0]
        expected = case.shown_expected() if outcome.status == OutcomeStatus.OK else None
        if is_numbers(got) and np.size(got) == 1 and is_numbers(expected) and np.size(expected) == 1:
            first = _("expected %(expected)s, got %(got)s", expected=f"{float(np.ravel(expected)[0]):.6g}",
                      got=f"{float(np.ravel(got)[0]):.6g}")
        else:
            first = comparison.reason
        message = _("Wrong on %(wrong)s of %(count)s inputs (first: %(first)s).", wrong=len(failures), count=count,
                    first=first)
        details = comparison.details(self.rtol, self.atol, case.scale)
        details.update(cases=count, failed_cases=len(failures), first_failure=str(case.label),
                       first_failure_call=next(i for i, c in enumerate(data.cases) if c is case))
        shape_of = case.expected.skeleton() if isinstance(case, SealedCase) else expected
        if is_numbers(got) and np.size(got) and is_numbers(shape_of):
            details["got_shape"], details["expected_shape"] = list(np.shape(got)), list(np.shape(shape_of))
        diagnosis, misconception = self.diagnose(failures)
        unset = self.unset_parameters(calls, failures)
        if unset and diagnosis is None:
            diagnosis = unset
        elif unset:
            message = join_sentences([message, unset])
        judged = sum(failure[2] is not None for failure in failures)
        credit = misconception.credit * judged if misconception else 0.0
        if outcome.status != OutcomeStatus.OK:
            category = outcome_category([outcome])
        else:
            category = FailureCategory.NO_GRADIENT if got is None and self.grad_wrt is not None else \
                value_category(got, case.expected)
        return Verdict((passed + credit) / count, message, diagnosis, details, category=category)

    def unset_parameters(self, calls, failures) -> str | None:
        """What a failing object's own parameters, which no call set, mean for its results (None: it has none)."""
        unset = sorted({name for _case, outcome, _got, _c in failures for name in outcome.unset_parameters})
        if not unset:
            return None
        named = sorted({name for call in calls if call.construct for name in call.construct.params})
        spelled = join_list(f"`{name}`" for name in unset)
        if not named:
            return _(UNSET_NONE_NAMED, cls=self.function, unset=spelled)
        return _(UNSET, cls=self.function, unset=spelled, named=join_list(f"`{name}`" for name in named))

    def diagnose(self, failures) -> tuple[str | None, Misconception | None]:
        """The diagnosis, and the misconception every judged failure matches (None when there is no such one)."""
        if self.grad_wrt is not None and any(f[2] is None and f[1].status == OutcomeStatus.OK for f in failures):
            return self.broken_gradient or None, None
        judged = [(case, got) for case, _, got, _ in failures if got is not None]
        if not judged:
            return failure_diagnosis(failures[0][1]), None
        for index, misconception in enumerate(self.misconceptions):
            if all(case.matches(index, misconception, got) for case, got in judged):
                return misconception.diagnosis(), misconception
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
    # False when the data states the answer on the public inputs (the reference's learned width, a loss curve
    # whose minimum is that width): a bundle then carries none, and the self-check says it does not judge it.
    self_checked: bool = True
    # What can be said without the data, for a self-check that does not judge (a NaN width, the same width for
    # every data set): a diagnosis, or None. It scores nothing.
    without_data: Callable[[list[ProbeOutcome]], str | None] | None = None
    # Every fixed text ``judge`` and ``without_data`` translate by name (their diagnoses, the sentences they add):
    # a text translated by name is found by no extraction, so the catalogs collect it from here (grader.kit.catalog).
    texts: tuple[str, ...] = ()


NOT_SELF_CHECKED = N_("Not judged by the self-check: judging it needs the reference's own result on these inputs "
                      "(its learned value, or the loss curve whose minimum is that value), which would give the "
                      "answer away. Grading judges it.")


@dataclass
class CustomCheck(Check):
    """A check whose calls, data and judgement are plain functions (studies, learned widths)."""

    make_calls: Callable[[np.random.Generator], list[Call]] = field(default=None, metadata=INSTRUCTOR_ONLY)
    make_data: Callable[[list[Call]], Any] = field(default=None, metadata=INSTRUCTOR_ONLY)  # from the reference
    verdict: CustomVerdict = None
    # cacheable reference work, run while the worker runs
    prepare: Callable[[list[Call]], None] | None = field(default=None, metadata=INSTRUCTOR_ONLY)
    # A diagnosis of the verdict's (a student-safe text of verdicts.py) -> the instructor's fuller text that states
    # the answer (the rate an exercise asks to derive): graded reports show it; a student's package holds
    # neither it nor its translations, unless the instructor opts in with ``release_answer_diagnoses``.
    answer_diagnoses: dict[str, str] = field(default_factory=dict, metadata=INSTRUCTOR_ONLY)
    release_answer_diagnoses: bool = False
    released_answer_diagnoses: dict[str, str] = field(default_factory=dict)  # filled by grader release on opt-in

    def calls(self, rng):
        return self.make_calls(rng)

    def warm(self, calls):
        if self.prepare:
            self.prepare(calls)

    def judging_data(self, calls):
        return self.make_data(calls)

    def judge_with(self, calls, data, outcomes):
        verdict = first_failure(calls, outcomes)
        if verdict is None and data is None and not self.verdict.self_checked:
            found = self.verdict.without_data(outcomes) if self.verdict.without_data else None
            return Verdict(0.0, _(NOT_SELF_CHECKED), found, unjudged=True)
        verdict = verdict or self.verdict.judge(data, outcomes)
        fuller = self.answer_diagnoses or self.released_answer_diagnoses
        if verdict.diagnosis in fuller:
            verdict.diagnosis = fuller[verdict.diagnosis]
        return verdict

    def released_data(self, calls):
        return self.judging_data(calls) if self.verdict.self_checked else None

    def problems(self):
        problems = [f"no {name}: a CustomCheck needs it" for name in ("make_calls", "make_data")
                    if not callable(getattr(self, name))]
        if not isinstance(self.verdict, CustomVerdict):
            problems.append("a CustomCheck needs a verdict (grader.checks.CustomVerdict) from the assignment's verdicts.py")
        return problems
