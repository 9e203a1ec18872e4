"""What crosses between the grader and the kernel, and how each side checks it.

Grader -> kernel: a probe call (``call_json``) whose arguments are wire values. Kernel ->
worker: one display output per call, of MIME type ``OUTCOME_MIME``, holding an outcome object.
Worker -> grader: the same objects inside worker-result.json. The values' one definition is
``grader.probe_runtime`` (``WIRE`` and ``encode_value``), the module the kernel runs: this side
encodes arguments with it and checks what comes back against the same limits.

Every field is read with its type checked (``parse_value``, ``parse_outcome``): arrays are
rebuilt with their dtype (float64, int64, bool) and shape, lists and tuples to a bounded depth,
with a bounded number of items and numbers. Anything malformed becomes an ``invalid`` outcome:
never an exception.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np

from .model import OUTCOME_STATUSES, CellRun, CellStatus, ProbeCall, ProbeOutcome, Value, is_numbers
from .probe_runtime import WIRE, Unreadable, encode_value

# The worker's job folder (grader.execute writes the first two, grader.worker the others); kept here, not in
# grader.worker, so that the grader can start a worker without importing nbclient first.
SETTINGS_NAME, JOB_NAME, RESULT_NAME, LOG_NAME = "settings.json", "job.json", "worker-result.json", "kernel.log"
NOTEBOOK_NAME = "submission.ipynb"  # in the worker's job folder, beside JOB_NAME (the calls)
PROTOCOL_PREFIX = "protocol:"  # a cell record's error_value when the kernel broke the protocol
OUTCOME_MIME = "application/vnd.attention-grader.outcome+json"
CELL_STATUSES = frozenset(CellStatus)
MAX_TEXT = WIRE["max_text"]
MAX_ELEMENTS = WIRE["max_elements"]
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_}

class Malformed(ValueError):
    """A wire value that breaks the schema (wrong field type, too deep, too large)."""


def encode_argument(value) -> dict:
    """A check's argument (array, tensor, number, None, str, list or tuple of these) as a wire value."""
    try:
        return encode_value(value)
    except Unreadable as exc:
        raise TypeError(f"probe argument {type(value).__name__} cannot be sent to the kernel: {exc.reason}") from None


def to_value(result) -> Value:
    """A result computed in the grader (the reference's, a variant's) as the grader holds a student's: what
    ``parse_value(encode_value(result))`` gives (tests/test_wire.py holds them equal), without the per-number
    round trip through lists, which the tolerance policy and the fairness studies would pay millions of times."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(result, torch.Tensor):
        try:
            tensor = result.detach().cpu()
            if tensor.layout != torch.strided:
                tensor = tensor.to_dense()
            if tensor.is_complex():
                raise TypeError("a complex tensor")
            if tensor.dtype in (torch.float16, torch.bfloat16):
                tensor = tensor.to(torch.float64)
            result = tensor.resolve_conj().resolve_neg().numpy()
        except RuntimeError as exc:
            raise TypeError(str(exc)) from None
    if isinstance(result, np.ndarray):
        return _native_array(result)
    if result is None or isinstance(result, str):
        return result
    if isinstance(result, (bool, np.bool_)):
        return np.bool_(result)
    if isinstance(result, (int, np.integer)):
        return np.int64(result) if -WIRE["int_bound"] <= int(result) < WIRE["int_bound"] else np.float64(result)
    if isinstance(result, (float, np.floating)):
        return np.float64(result)
    if isinstance(result, (list, tuple)):
        return type(result)(to_value(item) for item in result)
    raise TypeError(f"a {type(result).__name__} is not a value the wire carries")


def _native_array(array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.bool_)
    if kind in "iu":
        inside = not array.size or (int(array.max()) < WIRE["int_bound"] and int(array.min()) >= -WIRE["int_bound"])
        return array.astype(np.int64 if inside else np.float64)
    if kind == "f":
        return array.astype(np.float64)
    raise TypeError(f"an array of dtype {array.dtype} is not numbers the wire carries")


def native_node(value) -> dict:
    """An argument for ``grader.probe_runtime.invoke`` called in the grader: the value as the wire would carry it
    (``to_value``), handed over as it is instead of as JSON lists (see ``probe_runtime.decode_value``)."""
    return {"kind": "native", "value": to_value(value)}


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
    return value[:MAX_TEXT] if isinstance(value, str) else None


def number(value) -> float | None:
    if isinstance(value, str):
        return NON_FINITE.get(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _entry(dtype: str, v):
    if dtype == "float":
        return number(v)
    if dtype == "int":
        return v if isinstance(v, int) and not isinstance(v, bool) and -WIRE["int_bound"] <= v < WIRE["int_bound"] \
            else None
    return v if isinstance(v, bool) else None


def _array(node: dict, budget: dict) -> np.ndarray:
    dtype, shape, data = node.get("dtype"), node.get("shape"), node.get("data")
    if dtype not in DTYPES or not isinstance(shape, list) or len(shape) > 32 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise Malformed("array header")
    if not isinstance(data, list) or len(data) != math.prod(shape):
        raise Malformed("array data")
    budget["elements"] += len(data)
    if budget["elements"] > MAX_ELEMENTS:
        raise Malformed("too many numbers")
    entries = [_entry(dtype, v) for v in data]
    if any(v is None for v in entries):
        raise Malformed("array entry")
    array = np.asarray(entries, dtype=DTYPES[dtype]).reshape(shape)
    if node.get("scalar") is True:
        if shape:
            raise Malformed("a number with a shape")
        return array[()]  # a NumPy scalar: it goes back to a kernel as the number it was
    return array


def array(value) -> np.ndarray | None:
    """{"shape": [...], "data": [...]} -> float64 ndarray, or None if anything about it is off (a bundle's
    float arrays: curves, tables)."""
    if not isinstance(value, dict):
        return None
    try:
        return _array({"dtype": "float", **value}, {"elements": 0})
    except Malformed:
        return None


def encode_array(values: np.ndarray) -> dict:
    node = encode_value(np.asarray(values, dtype=np.float64))
    return {"shape": node["shape"], "data": node["data"]}


def parse_value(node) -> Value:
    """A wire value checked field by field, without recursion: its depth and size are bounded by ``WIRE``."""
    budget = {"items": 0, "elements": 0}
    root: list = []
    # Each entry: (node, depth, the list its value is appended to).
    pending: list[tuple[Any, int, list]] = [(node, 0, root)]
    built: list[tuple[list, list, int]] = []  # tuples' items, filled, then frozen where they stand
    while pending:
        current, depth, into = pending.pop()
        if not isinstance(current, dict):
            raise Malformed("not an object")
        kind = current.get("kind")
        if kind == "array":
            into.append(_array(current, budget))
        elif kind == "none":
            into.append(None)
        elif kind == "str":
            if not isinstance(current.get("text"), str):
                raise Malformed("str")
            into.append(current["text"][:MAX_TEXT])
        elif kind in ("list", "tuple"):
            items = current.get("items")
            if not isinstance(items, list) or depth >= WIRE["max_depth"]:
                raise Malformed("list")
            budget["items"] += len(items)
            if budget["items"] > WIRE["max_items"]:
                raise Malformed("too many items")
            holder: list = []
            into.append(holder)
            if kind == "tuple":
                built.append((holder, into, len(into) - 1))
            pending.extend((item, depth + 1, holder) for item in reversed(items))
        else:
            raise Malformed("kind")
    # Inner holders were created after their parents: freeze tuples from the innermost out.
    for holder, into, index in reversed(built):
        into[index] = tuple(holder)
    return root[0]


def value_json(value: Value) -> dict:
    return encode_value(value)


def parse_outcome(call_id: str, raw) -> ProbeOutcome:
    if not isinstance(raw, dict) or raw.get("status") not in OUTCOME_STATUSES:
        return ProbeOutcome(call_id, "invalid", reason={"code": "malformed-answer"})
    outcome = ProbeOutcome(call_id, raw["status"], grad_error=text(raw.get("grad_error")),
                           error_type=text(raw.get("error_type")), error_message=text(raw.get("error_message")),
                           traceback=text(raw.get("traceback")), seconds=number(raw.get("seconds")),
                           reason=reason(raw.get("reason")), grad_reason=reason(raw.get("grad_reason")))
    unset = raw.get("unset_parameters")
    if isinstance(unset, list) and len(unset) <= 64:
        outcome.unset_parameters = tuple(text(name) for name in unset if isinstance(name, str))
    grads = raw.get("grads")
    if isinstance(grads, dict) and len(grads) <= 64:
        try:
            outcome.grads = {str(k)[:200]: _gradient(v) for k, v in grads.items()}
        except Malformed:
            outcome.grads, outcome.grad_reason = {}, {"code": "malformed-value"}
    if outcome.status == "ok":
        try:
            outcome.value = parse_value(raw.get("value"))
        except (Malformed, RecursionError):
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
    return {str(k)[:40]: text(v) if isinstance(v, str) else v for k, v in raw.items()
            if isinstance(v, (str, int)) and not isinstance(v, bool)}


def outcome_to_json(outcome: ProbeOutcome) -> dict:
    data = {"status": outcome.status}
    for key in ("grad_error", "error_type", "error_message", "traceback", "seconds", "reason", "grad_reason"):
        if getattr(outcome, key) is not None:
            data[key] = getattr(outcome, key)
    if outcome.unset_parameters:
        data["unset_parameters"] = list(outcome.unset_parameters)
    if outcome.grads:
        data["grads"] = {k: value_json(v) for k, v in outcome.grads.items()}
    if outcome.status == "ok":
        data["value"] = value_json(outcome.value)
    return data


def checked_outcome(raw) -> dict:
    """A kernel's outcome object, re-encoded from its checked fields only (the worker keeps nothing else)."""
    return outcome_to_json(parse_outcome("", raw))


def parse_cell(raw) -> CellRun | None:
    if not isinstance(raw, dict) or raw.get("status") not in CELL_STATUSES or not isinstance(raw.get("index"), int):
        return None
    return CellRun(index=raw["index"], status=raw["status"], seconds=number(raw.get("seconds")) or 0.0,
                   error_name=text(raw.get("error_name")), error_value=text(raw.get("error_value")),
                   source_head=text(raw.get("source_head")) or "", output_truncated=raw.get("output_truncated") is True,
                   oom_killed=raw.get("oom_killed") is True)
