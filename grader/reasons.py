"""Why a probed call or a cell gave no usable value, in the run's language.

The kernel side (``probe_runtime``, the worker) shares its sandbox with the student's code and
knows no language, so a reason crosses the boundary as a machine-readable code with parameters,
``{"code": "wrong-type", "type": "NoneType"}``, and is put into words here. Workers that send only
their English sentence are understood too: ``LEGACY_SENTENCES`` recognises each sentence they can
produce and recovers its code and parameters. Anything else is shown as it came, marked as code
(between backticks), never passed off as the grader's own words.
"""

from __future__ import annotations

import re

from .i18n import N_, _

# Each reason completes "`f` returned something the grader cannot read: ..." or stands alone in
# a gradient or kernel message, so each is a clause, not a sentence.
REASONS = {
    "returned-none": N_("it returned None; did the function lose its `return` statement?"),
    "wrong-type": N_("it returned a `%(type)s`, where the grader reads tensors, arrays, numbers, lists, tuples and "
                     "None"),
    "complex": N_("it returned a complex tensor"),
    "not-numbers": N_("it returned a list the grader cannot turn into numbers"),
    "too-many": N_("it returned %(size)s numbers, more than the %(limit)s the grader reads"),
    "too-deep": N_("it returned lists or tuples nested more than %(limit)s deep"),
    "malformed-answer": N_("the probe's answer was malformed"),
    "malformed-value": N_("the returned value was malformed"),
    "no-result": N_("the probe left no readable result"),
    "not-connected": N_("the result is not connected to %(target)s by autograd (a `float()`, `.item()`, NumPy step "
                        "or a new tensor cut the graph)"),
    "backward-failed": N_("`backward()` failed: `%(error)s`"),
    "not-reached": N_("`backward()` did not reach %(target)s"),
    "kernel-exit": N_("exit code %(code)s"),
}
VERBATIM = N_("`%(text)s`")  # a reason not recognised: the text as it came, as code

# The English sentences of workers that send no code (grader/probe_runtime.py, grader/execute.py,
# grader/worker.py), each with the code it stands for; named groups are the parameters.
LEGACY_SENTENCES = [
    ("wrong-type", re.compile(r"returned a (?P<type>\w+); expected a tensor, array, float or list")),
    ("complex", re.compile(r"returned a complex tensor")),
    ("not-numbers", re.compile(r"returned a list the grader cannot turn into numbers")),
    ("too-many", re.compile(r"returned (?P<size>\d+) numbers, more than the (?P<limit>\d+) the grader reads")),
    ("malformed-answer", re.compile(r"the probe's answer was malformed")),
    ("malformed-value", re.compile(r"the returned value was malformed")),
    ("no-result", re.compile(r"not an object|no readable result \(\w+\)")),
    ("not-connected", re.compile(r"the result is not connected to (?P<target>sigma) by autograd .*", re.S)),
    ("backward-failed", re.compile(r"backward\(\) failed: (?P<error>.*)", re.S)),
    ("not-reached", re.compile(r"backward\(\) did not reach (?P<target>sigma)")),
    ("kernel-exit", re.compile(r"kernel exit code (?P<code>-?\d+)")),
]


def code_text(text: str) -> str:
    return text.replace("`", "'")  # a backtick would end the code span early


def reason_of(text: str | None, reason: dict | None = None) -> tuple[str | None, dict]:
    """The code and parameters of a reason: as sent, else recovered from a legacy sentence (None: neither)."""
    if isinstance(reason, dict) and reason.get("code") in REASONS:
        code, params = reason["code"], {k: v for k, v in reason.items() if k != "code"}
    else:
        found = ((code, pattern.fullmatch((text or "").strip())) for code, pattern in LEGACY_SENTENCES)
        code, match = next(((code, match) for code, match in found if match), (None, None))
        params = match.groupdict() if match else {"text": text or ""}
    if code == "wrong-type" and params.get("type") == "NoneType":  # the commonest slip: a missing return
        return "returned-none", {}
    return code, params


def explain(text: str | None, reason: dict | None = None) -> str:
    """A reason in words of the run's language; an unrecognised one verbatim, as code."""
    code, params = reason_of(text, reason)
    if code is None:
        return _(VERBATIM, text=code_text(text or ""))
    if code in ("backward-failed", "wrong-type"):  # Python's words and names, shown as code
        params = {key: code_text(str(value)) for key, value in params.items()}
    try:
        return _(REASONS[code], **params) if params else _(REASONS[code])
    except (KeyError, TypeError, ValueError):  # parameters that do not fit the sentence
        return _(VERBATIM, text=code_text(text or code))
