"""What crosses between the grader and the kernel, and how the grader's side checks it.

Grader -> kernel: a probe call (``call_json``) whose arguments are wire values. Kernel ->
worker: one display output per call, of MIME type ``OUTCOME_MIME``, holding an outcome object.
Worker -> grader: the same objects inside worker-result.json. A value's one definition, for
the three sides, is ``grader.wireformat`` (arrays as bytes with their dtype and shape, within
``WIRE``'s limits); this module reads the outcome objects around them.

Every field is read with its type checked (``parse_outcome``). Anything malformed becomes an
``invalid`` outcome: never an exception.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .model import OUTCOME_STATUSES, CellRun, CellStatus, ProbeCall, ProbeOutcome, Value, is_numbers
from .wireformat import OUTCOME_MIME, WIRE, Malformed, Unreadable, checked_text, encode_value, parse_value  # noqa: F401

# The worker's job folder (grader.execute writes the first two, grader.worker the others); kept here, not in
# grader.worker, so that the grader can start a worker without importing nbclient first.
SETTINGS_NAME, JOB_NAME, RESULT_NAME, LOG_NAME = "settings.json", "job.json", "worker-result.json", "kernel.log"
NOTEBOOK_NAME = "submission.ipynb"  # in the worker's job folder, beside JOB_NAME (the calls)
PROTOCOL_PREFIX = "protocol:"  # a cell record's error_value when the kernel broke the protocol
CELL_STATUSES = frozenset(CellStatus)
MAX_TEXT = WIRE["max_text"]
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode_argument(value) -> dict:
    """A check's argument (array, tensor, number, None, str, list or tuple of these) as a wire value."""
    try:
        return encode_value(value)
    except Unreadable as exc:
        raise TypeError(f"probe argument {type(value).__name__} cannot be sent to the kernel: {exc.reason}") from None


def to_value(result) -> Value:
    """A result computed in the grader (the reference's, a variant's) as the grader holds a student's: through the
    wire's own encoding and parser (bytes both ways, so no faster path is needed); TypeError if it cannot cross."""
    try:
        return parse_value(encode_value(result))
    except Unreadable as exc:
        raise TypeError(f"a {type(result).__name__} is not a value the wire carries: {exc.reason}") from None


def call_json(call: ProbeCall) -> dict:
    """A probe call as the worker's job file and grader.probe_runtime take it."""
    wrt = call.grad_wrt if isinstance(call.grad_wrt, tuple) else () if call.grad_wrt is None else (call.grad_wrt,)
    return {"id": call.id, "function": call.function, "args": [encode_argument(a) for a in call.args],
            "kwargs": {k: encode_argument(v) for k, v in call.kwargs.items()},
            "construct": call.construct.to_json(encode_argument) if call.construct else None,
            "grad_wrt": list(wrt), "timeout": call.timeout}


def call_identity(fields: dict) -> str:
    """Two calls (``call_json`` form) with the same identity return the same outcome: same function, arguments
    (with their dtypes), object and gradients."""
    return json.dumps([fields[key] for key in ("function", "args", "kwargs", "construct", "grad_wrt")])


def text(value) -> str | None:
    """A text field of an outcome or a cell: cut to MAX_TEXT, what is not valid Unicode replaced (it is shown)."""
    if not isinstance(value, str):
        return None
    try:
        return checked_text(value, MAX_TEXT)
    except Malformed:
        return value[:MAX_TEXT].encode("utf-8", "replace").decode("utf-8")


def number(value) -> float | None:
    if isinstance(value, str):
        return NON_FINITE.get(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def seconds(value) -> float | None:
    """A duration: a finite number >= 0, else None (a hostile kernel's NaN must not reach a sum or a sort)."""
    value = number(value)
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def array(value) -> np.ndarray | None:
    """A float64 array (``encode_array``'s node) from untrusted JSON, or None if anything about it is off (a
    bundle's float arrays: curves, tables)."""
    try:
        parsed = parse_value(value)
    except Malformed:
        return None
    return parsed if isinstance(parsed, np.ndarray) and parsed.dtype == np.float64 else None


def encode_array(values) -> dict:
    return encode_value(np.asarray(values, dtype=np.float64))


def parse_outcome(call_id: str, raw) -> ProbeOutcome:
    if not isinstance(raw, dict) or raw.get("status") not in OUTCOME_STATUSES:
        return ProbeOutcome(call_id, "invalid", reason={"code": "malformed-answer"})
    outcome = ProbeOutcome(call_id, raw["status"], grad_error=text(raw.get("grad_error")),
                           error_type=text(raw.get("error_type")), error_message=text(raw.get("error_message")),
                           traceback=text(raw.get("traceback")), seconds=seconds(raw.get("seconds")),
                           reason=reason(raw.get("reason")), grad_reason=reason(raw.get("grad_reason")))
    unset = raw.get("unset_parameters")
    if isinstance(unset, list) and len(unset) <= 64:
        outcome.unset_parameters = tuple(text(name) for name in unset if isinstance(name, str))
    grads = raw.get("grads")
    if isinstance(grads, dict) and len(grads) <= 64:
        try:
            outcome.grads = {text(str(k)[:200]): _gradient(v) for k, v in grads.items()}
        except Malformed:
            outcome.grads, outcome.grad_reason = {}, {"code": "malformed-value"}
    if outcome.status == "ok":
        try:
            outcome.value = parse_value(raw.get("value"))
        except Malformed:
            return ProbeOutcome(call_id, "invalid", reason={"code": "malformed-value"}, seconds=outcome.seconds)
    return outcome


def _gradient(node) -> np.ndarray:
    value = parse_value(node)
    if not is_numbers(value):
        raise Malformed("gradient")
    return np.asarray(value, dtype=np.float64)


def reason(raw) -> dict | None:
    """A reason code with short text parameters (grader.reasons puts it into words), or None."""
    if not isinstance(raw, dict) or not isinstance(raw.get("code"), str) or len(raw) > 8:
        return None
    return {text(str(k)[:40]): text(v) if isinstance(v, str) else v for k, v in raw.items()
            if isinstance(v, (str, int)) and not isinstance(v, bool)}


def outcome_to_json(outcome: ProbeOutcome) -> dict:
    data = {"status": outcome.status}
    for key in ("grad_error", "error_type", "error_message", "traceback", "seconds", "reason", "grad_reason"):
        if getattr(outcome, key) is not None:
            data[key] = getattr(outcome, key)
    if outcome.unset_parameters:
        data["unset_parameters"] = list(outcome.unset_parameters)
    if outcome.grads:
        data["grads"] = {k: encode_value(v) for k, v in outcome.grads.items()}
    if outcome.status == "ok":
        data["value"] = encode_value(outcome.value)
    return data


def checked_outcome(raw) -> dict:
    """A kernel's outcome object, re-encoded from its checked fields only (the worker keeps nothing else)."""
    return outcome_to_json(parse_outcome("", raw))


def parse_cell(raw) -> CellRun | None:
    if not isinstance(raw, dict) or raw.get("status") not in CELL_STATUSES or not isinstance(raw.get("index"), int):
        return None
    return CellRun(index=raw["index"], status=raw["status"], seconds=seconds(raw.get("seconds")) or 0.0,
                   error_name=text(raw.get("error_name")), error_value=text(raw.get("error_value")),
                   source_head=text(raw.get("source_head")) or "", output_truncated=raw.get("output_truncated") is True,
                   oom_killed=raw.get("oom_killed") is True, memory_limit_hit=raw.get("memory_limit_hit") is True)
