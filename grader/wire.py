"""What crosses between the grader and the kernel, and how each side checks it.

Grader -> kernel: a probe call's arguments as JSON (``encode_argument``). Kernel -> worker:
one display output per call, of MIME type ``OUTCOME_MIME``, whose content is a flat JSON
object (``grader.probe_runtime`` writes it; it is kept self-contained and mirrors the shape
documented here). Worker -> grader: the same objects inside worker-result.json.

Every field is read with its type checked; arrays are rebuilt here from ``{"shape", "data"}``
with non-finite numbers spelled "nan", "inf", "-inf" (the kernel's message encoder refuses
bare NaN). Anything malformed becomes an ``invalid`` outcome: never an exception, and no
nesting is ever recursed into.
"""

from __future__ import annotations

import math

import numpy as np

from .model import CellRun, ProbeOutcome

# The worker's job folder (grader.execute writes the first two, grader.worker the others); kept here, not in
# grader.worker, so that the grader can start a worker without importing nbclient first.
SETTINGS_NAME, JOB_NAME, RESULT_NAME, LOG_NAME = "settings.json", "job.json", "worker-result.json", "kernel.log"
PROTOCOL_PREFIX = "protocol:"  # a cell record's error_value when the kernel broke the protocol
OUTCOME_MIME = "application/vnd.attention-grader.outcome+json"
OUTCOME_STATUSES = ("ok", "error", "missing", "timeout", "kernel-died", "invalid", "not-run")
CELL_STATUSES = ("ok", "error", "timeout", "kernel-died")
MAX_TEXT = 4000
MAX_ELEMENTS = 1_000_000
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode_argument(value):
    if isinstance(value, np.ndarray):
        return {"__array__": value.astype(np.float64).tolist(), "shape": list(value.shape)}
    if hasattr(value, "detach"):  # a torch tensor built by a check
        return encode_argument(value.detach().cpu().numpy())
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"probe argument of type {type(value).__name__} cannot be sent to the kernel")


def text(value) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) else None


def number(value) -> float | None:
    if isinstance(value, str):
        return NON_FINITE.get(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def array(value) -> np.ndarray | None:
    """{"shape": [...], "data": [...]} -> float64 ndarray, or None if anything about it is off."""
    if not isinstance(value, dict):
        return None
    shape, data = value.get("shape"), value.get("data")
    if not isinstance(shape, list) or len(shape) > 32 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        return None
    if not isinstance(data, list) or len(data) != math.prod(shape) or len(data) > MAX_ELEMENTS:
        return None
    numbers = [number(v) for v in data]
    if any(v is None for v in numbers):
        return None
    return np.asarray(numbers, dtype=np.float64).reshape(shape)


def encode_array(values: np.ndarray) -> dict:
    def spelled(v: float):
        return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))

    return {"shape": list(values.shape), "data": [spelled(float(v)) for v in values.ravel()]}


def parse_outcome(call_id: str, raw) -> ProbeOutcome:
    if not isinstance(raw, dict) or raw.get("status") not in OUTCOME_STATUSES:
        return ProbeOutcome(call_id, "invalid", error_message="the probe's answer was malformed")
    outcome = ProbeOutcome(call_id, raw["status"], grad=number(raw.get("grad")), grad_error=text(raw.get("grad_error")),
                           error_type=text(raw.get("error_type")), error_message=text(raw.get("error_message")),
                           traceback=text(raw.get("traceback")), seconds=number(raw.get("seconds")))
    if outcome.status == "ok":
        outcome.value = array(raw.get("value"))
        if outcome.value is None:
            return ProbeOutcome(call_id, "invalid", error_message="the returned value was malformed")
    return outcome


def outcome_to_json(outcome: ProbeOutcome) -> dict:
    data = {"status": outcome.status}
    for key in ("grad_error", "error_type", "error_message", "traceback", "seconds"):
        if getattr(outcome, key) is not None:
            data[key] = getattr(outcome, key)
    if outcome.grad is not None:
        data["grad"] = encode_array(np.asarray(outcome.grad))["data"][0]
    if outcome.value is not None:
        data["value"] = encode_array(outcome.value)
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
