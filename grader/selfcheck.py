"""``self_check("ex2")`` inside a student's notebook: the public checks against the live session.

Runs in the student's own kernel, on the student's own machine: the functions are called
directly (no worker), through the same encoding the worker uses, and judged by the same
checks on the assignment's public inputs.
"""

from __future__ import annotations

import json

from .assignment import load_assignment
from .i18n import _
from .wire import encode_argument, parse_outcome
from .model import SubmissionResult
from .pipeline import GradingOptions, judge_check, plan_probes, score_submission
from .probe_runtime import call_and_encode


def _namespace():
    try:
        return get_ipython().user_ns  # noqa: F821
    except NameError:
        import __main__

        return vars(__main__)


def self_check(exercise: str | None = None, assignment: str = "attention_pooling", namespace: dict | None = None,
               show: bool = True) -> SubmissionResult | None:
    plugin = load_assignment(assignment)
    options = GradingOptions(exercises=(exercise,) if exercise else None)
    namespace = _namespace() if namespace is None else namespace
    planned = plan_probes(plugin, options)
    probes = {}
    for plan in planned:
        for call in plan.probe_calls:
            func = namespace.get(call.function)
            raw = {"status": "missing"} if not callable(func) else call_and_encode(
                func, [encode_argument(a) for a in call.args], call.grad_wrt)
            probes[call.id] = parse_outcome(call.id, json.loads(json.dumps(raw)))
    results = [judge_check(plan, probes) for plan in planned]
    result = score_submission(plugin, "self-check", results, [], options, None, None)
    if show:
        _show(result)
    return result


def _show(result: SubmissionResult) -> None:
    from .report import render_self_check
    from .summary import submission_text

    try:
        get_ipython  # noqa: B018, F821 - only defined inside IPython
    except NameError:
        print(submission_text(result).replace(_("NOT SANDBOXED"), _("in your own session")))
        return
    from IPython.display import HTML, display

    display(HTML(render_self_check(result.to_json())))
