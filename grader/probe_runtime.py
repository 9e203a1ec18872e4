"""Runs inside the student's kernel: call one student function, display what it returned as JSON.

This file is sent to the kernel as source text, after the student's cells ran, and must stay
self-contained (standard library, NumPy, and torch when the student's code uses it). It
never sees an expected value: it gets inputs, calls, and displays each outcome as one
output of the MIME type ``OUTCOME`` (the shape is documented in ``grader.wire``); all judging
happens in the grader process. Whatever a hostile notebook does to this module can only
change the numbers it reports, which are judged like any other numbers.
"""

import json
import math
import time
import traceback

OUTCOME = "application/vnd.attention-grader.outcome+json"  # grader.wire.OUTCOME_MIME

MAX_VALUE_ELEMENTS = 1_000_000
MAX_TRACEBACK_CHARS = 2000


def decode_argument(arg):
    """JSON argument -> float64 torch tensor (arrays) or plain Python value."""
    if isinstance(arg, dict) and "__array__" in arg:
        import torch

        return torch.tensor(arg["__array__"], dtype=torch.float64).reshape(arg["shape"])
    return arg


def encode_value(value):
    """A returned tensor / array / number / list as {"shape", "data"} of float64, or raise TypeError."""
    import numpy as np

    try:
        import torch
    except ImportError:  # a NumPy-only kernel
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_complex():
            raise TypeError("returned a complex tensor")
        array = value.to(torch.float64).numpy()
    elif isinstance(value, (bool, int, float)) or type(value).__module__ == "numpy":
        array = np.asarray(value, dtype=np.float64)
    elif isinstance(value, (list, tuple)):
        try:  # numbers, nested lists, arrays
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, RuntimeError):  # e.g. a list of tensors that require grad
            if torch is None:
                raise TypeError("returned a list the grader cannot turn into numbers") from None
            array = torch.stack([torch.as_tensor(v) for v in value]).detach().to(torch.float64).numpy()
    else:
        raise TypeError(f"returned a {type(value).__name__}; expected a tensor, array, float or list")
    if array.size > MAX_VALUE_ELEMENTS:
        raise TypeError(f"returned {array.size} numbers, more than the {MAX_VALUE_ELEMENTS} the grader reads")
    return {"shape": list(array.shape), "data": [_spelled(float(v)) for v in array.ravel()]}


def _spelled(v):
    """Non-finite numbers as strings: the kernel's message encoder refuses bare NaN."""
    return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))


def _short_traceback(exc):
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # drop this module's own frame
    text = "".join(traceback.format_list(frames[-6:])) + "".join(traceback.format_exception_only(type(exc), exc))
    return text[-MAX_TRACEBACK_CHARS:]


def call_and_encode(func, args, grad_wrt=None):
    """Call ``func(*args)`` and describe the outcome as a JSON-ready dict."""
    args = [decode_argument(a) for a in args]
    if grad_wrt is not None:
        import torch

        args[grad_wrt] = torch.tensor(float(args[grad_wrt]), dtype=torch.float64, requires_grad=True)
    started = time.perf_counter()
    try:
        value = func(*args)
    except BaseException as exc:  # a probe must survive anything short of the process dying
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, CallTimeout):
            return {"status": "timeout", "seconds": time.perf_counter() - started}
        return {"status": "error", "error_type": type(exc).__name__, "error_message": str(exc)[:1000],
                "traceback": _short_traceback(exc), "seconds": time.perf_counter() - started}
    seconds = time.perf_counter() - started
    outcome = {"status": "ok", "seconds": seconds}
    try:
        outcome["value"] = encode_value(value)
    except Exception as exc:
        return {"status": "invalid", "error_type": type(exc).__name__, "error_message": str(exc)[:1000],
                "seconds": seconds}
    if grad_wrt is not None:
        outcome.update(_gradient(value, args[grad_wrt]))
    return outcome


def _gradient(value, wrt):
    import torch

    if not isinstance(value, torch.Tensor) or value.grad_fn is None:
        return {"grad_error": "the result is not connected to sigma by autograd "
                              "(a float(), .item(), NumPy step or a new tensor cut the graph)"}
    try:
        value.sum().backward()
    except Exception as exc:
        return {"grad_error": f"backward() failed: {type(exc).__name__}: {str(exc)[:300]}"}
    if wrt.grad is None:
        return {"grad_error": "backward() did not reach sigma"}
    return {"grad": _spelled(float(wrt.grad))}


class CallTimeout(BaseException):
    """Raised inside a probed call when its own time limit passes (a BaseException: fewer
    student ``except Exception`` blocks swallow it)."""


def _on_alarm(signum, frame):
    raise CallTimeout()


class CallLimits:
    """Within it, ``call_with_limit`` stops a call at its time limit (SIGALRM). Only the main thread receives
    signals: elsewhere calls run unlimited, and ``enforced`` says so."""

    def __enter__(self):
        import signal

        try:
            self.previous = signal.signal(signal.SIGALRM, _on_alarm)
            self.enforced = True
        except ValueError:  # not the main thread
            self.enforced = False
        return self

    def __exit__(self, *exc):
        import signal

        if self.enforced:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def call_with_limit(func, args, grad_wrt, timeout, limits):
    """``call_and_encode`` stopped after ``timeout`` seconds (inside ``CallLimits``): a hung call is a timeout."""
    import signal

    if limits.enforced:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return call_and_encode(func, args, grad_wrt)
    except CallTimeout:  # the limit passed outside the student's code
        return {"status": "timeout"}
    finally:
        if limits.enforced:
            signal.setitimer(signal.ITIMER_REAL, 0)


def run_batch(calls_json, namespace=None):
    """Worker entry point: run several calls of one function, each with its own time limit.

    One execution for many calls saves a kernel round trip per call. Each outcome is
    displayed as soon as it exists; after a timeout the batch stops (the worker does not
    call a function that hung again).
    """
    from IPython.display import display

    if namespace is None:
        namespace = get_ipython().user_ns  # noqa: F821 - defined in every IPython kernel
    with CallLimits() as limits:
        for call in json.loads(calls_json):
            func = namespace.get(call["function"])
            if not callable(func):
                outcome = {"status": "missing"}
            else:
                outcome = call_with_limit(func, call["args"], call.get("grad_wrt"), call["timeout"], limits)
            outcome["id"] = call["id"]
            display({OUTCOME: outcome}, raw=True)
            if outcome["status"] == "timeout":
                break
