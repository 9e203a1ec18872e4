"""Runs inside the student's kernel: call a student's function (or build a student's class and call
it), and display what came back as JSON.

This file is sent to the kernel as source text, after the student's cells ran, and must stay
self-contained (standard library, NumPy, and torch when the student's code uses it). It never
sees an expected value: it gets inputs and calls, and displays each outcome as one output of
the MIME type ``OUTCOME``; all judging happens in the grader process. Whatever a hostile
notebook does to this module can only change the numbers it reports, which are judged like
any other numbers.

The values it sends and receives are those of ``grader.wireformat`` (the wire's one definition, loaded
into the kernel from the same file just before this one). The grader imports this module too, to
call its reference exactly as a student's code is called (``invoke``).

Reasons a value or a gradient is unusable cross as codes with parameters (``grader.reasons``).
"""

import json
import sys
import time
import traceback

try:  # the grader's and the worker's import
    from . import wireformat
except ImportError:  # in the kernel, exec'd without its package: grader.worker loaded the same file under this name
    import _probe_wireformat as wireformat

WIRE, Unreadable, encode_value = wireformat.WIRE, wireformat.Unreadable, wireformat.encode_value
OUTCOME = wireformat.OUTCOME_MIME
MAX_VALUE_ELEMENTS = WIRE["max_elements"]
MAX_TRACEBACK_CHARS = 2000


def _torch():
    try:
        import torch
    except ImportError:  # a NumPy-only kernel
        return None
    return torch


# --------------------------------------------------------------------------- values: wire -> Python (kernel side)


def decode_value(node, arrays="torch"):
    """A wire value from the grader as the student's code gets it: arrays as torch tensors (float64, int64,
    bool) or, with ``arrays="numpy"``, as ndarrays; numbers as Python numbers; lists and tuples as such. Read by
    the schema's own parser, as the grader reads what comes back."""
    return _as_arguments(wireformat.parse_value(node), arrays)


def _as_arguments(value, arrays):
    import numpy as np

    if isinstance(value, (list, tuple)):
        return type(value)(_as_arguments(item, arrays) for item in value)
    if isinstance(value, np.generic):
        return value.item()  # a Python float, int or bool, as a check's plain number is
    if isinstance(value, np.ndarray) and arrays != "numpy":
        torch = _torch()
        return torch.from_numpy(value) if torch is not None else value  # the parser's array is its own
    return value


def has_arrays(nodes):
    return any(n["kind"] == "array" and n["shape"] != [] or n["kind"] in ("list", "tuple") and has_arrays(n["items"])
               for n in nodes)


# --------------------------------------------------------------------------- calls


def _library_roots():
    """Where installed code lives (the interpreter's, site-packages, the grader's own package): not the student's."""
    import os

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    roots |= {entry for entry in sys.path if entry and os.path.isabs(entry) and entry != os.getcwd()}
    grader = sys.modules.get("grader")
    if grader is not None and getattr(grader, "__file__", None):
        roots.add(os.path.dirname(grader.__file__))
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots)


def _student_frame(frame, roots) -> bool:
    import os

    name = frame.filename
    if name.startswith("<"):  # <probe>, <frozen ...>, <string>; a cell of an old IPython is <ipython-input-...>
        return name.startswith("<ipython-input")
    return not os.path.join(os.path.realpath(name), "").startswith(roots)


def _short_traceback(exc):
    """The student's own frames of the exception (the cells' code), then the exception: no library's or the
    grader's frames, whose file names would show the grader's install."""
    roots = _library_roots()
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _student_frame(f, roots)]
    text = "".join(traceback.format_list(frames[-6:])) + "".join(traceback.format_exception_only(type(exc), exc))
    return text[-MAX_TRACEBACK_CHARS:]


def _require_grad(value):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value.detach().clone().to(torch.float64 if not value.is_floating_point() else value.dtype) \
            .requires_grad_(True)
    return torch.tensor(float(value), dtype=torch.float64, requires_grad=True)


def _argument_names(func, count):
    """The names of the first ``count`` positional parameters, for messages ("sigma"), else "argument i"."""
    import inspect

    try:
        names = [p.name for p in inspect.signature(func).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"argument {i + 1}" for i in range(count)]


class ConstructionFailed(Exception):
    """No constructor call the check accepts built the object: ``called`` says what was called, ``cause`` what the
    first call raised."""

    def __init__(self, called, cause):
        super().__init__(f"{called}: {type(cause).__name__}: {cause}")
        self.called, self.cause = called, cause


def _spelled_argument(node):
    """A constructor argument as the call's text shows it: numbers and words as Python writes them."""
    kind = node.get("kind")
    if kind == "array" and node.get("scalar"):
        return repr(decode_value(node, "numpy"))
    if kind == "array":
        return "array of shape (" + ", ".join(map(str, node["shape"])) + ")"
    if kind == "str":
        return repr(node["text"][:40])
    return "None" if kind == "none" else kind


def _spelled_call(name, args, kwargs):
    return f"{name}(" + ", ".join([_spelled_argument(a) for a in args]
                                   + [f"{k}={_spelled_argument(v)}" for k, v in kwargs.items()]) + ")"


def _takes(cls, args, kwargs):
    """False when ``cls``'s signature cannot take these arguments; True when it can or cannot be read."""
    import inspect

    try:
        inspect.signature(cls).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # a signature inspect cannot read: the call itself will tell
        return True
    return True


def build(cls, construct, arrays="torch"):
    """The student's (or the reference's) object: built, in eval mode.

    The contract's constructor call and the check's ``alternatives`` (other editions of the book) are tried in that
    order among those the class's signature can take (all of them when it takes none); the first that builds the
    object is the one kept. When none does, ``ConstructionFailed`` names each call made.
    """
    options = [(construct.get("init_args", []), construct.get("init_kwargs", {}))]
    options += [(other.get("init_args", []), other.get("init_kwargs", {}))
                for other in construct.get("alternatives", [])]
    decoded = [([decode_value(a, arrays) for a in args], {k: decode_value(v, arrays) for k, v in kwargs.items()})
               for args, kwargs in options]
    fitting = [i for i, (args, kwargs) in enumerate(decoded) if _takes(cls, args, kwargs)] or range(len(options))
    called, first_error = [], None
    for index in fitting:
        args, kwargs = decoded[index]
        try:
            obj = cls(*args, **kwargs)
        except Exception as exc:
            called.append(_spelled_call(getattr(cls, "__name__", "class"), *options[index]))
            first_error = first_error or exc
            continue
        if hasattr(obj, "eval"):
            obj.eval()  # dropout off: the probe compares numbers
        return obj
    raise ConstructionFailed("; ".join(called), first_error)


def _kept_result(obj, value, kept):
    """``(value, obj.<attribute>, ...)`` when a call returned one value and the object keeps the rest (the book's
    ``self.attention_weights``); else the value as it came."""
    if not kept or isinstance(value, (tuple, list)):
        return value
    extras = [getattr(obj, name, None) for name in kept]
    return value if any(extra is None for extra in extras) else (value, *extras)


def _set_parameters(obj, params, warm_up, arrays):
    """Copy the given parameters into ``obj`` by name, in float64; the names of its parameters left as they were.

    A torch module's parameters are found by their ``named_parameters()`` names (lazy ones materialised by
    ``warm_up()`` first) and the module is made float64 throughout; any other name (a NumPy class's layer
    ``W_q.weight``) is set as an attribute along its dotted path, as the arrays of this attempt.
    """
    torch = _torch()
    is_module = torch is not None and isinstance(obj, torch.nn.Module)
    named = dict(obj.named_parameters()) if is_module else {}
    if params and any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in named.values()):
        with torch.no_grad():
            warm_up()
        named = dict(obj.named_parameters())
    if is_module and not any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in named.values()):
        obj.double()  # a float32 layer built despite the default (dtype=...) would refuse float64 inputs
        named = dict(obj.named_parameters())
    folded = {}
    for known in named:  # a layer spelled in another case (W_v for the book's w_v) is the same layer
        folded.setdefault(known.lower(), []).append(known)
    for name, node in (params or {}).items():
        if name not in named and len(folded.get(name.lower(), [])) == 1:
            name = folded[name.lower()][0]
        if name in named:
            value = torch.as_tensor(decode_value(node, "torch"), dtype=named[name].dtype)
            if tuple(value.shape) != tuple(named[name].shape):
                raise ValueError(f"parameter {name!r} has shape {tuple(named[name].shape)}, "
                                 f"the grader sets {tuple(value.shape)}")
            with torch.no_grad():
                named[name].copy_(value)
            continue
        *path, last = name.split(".")
        owner = obj
        for part in path:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, last):
            known = ", ".join(named) if named else "none by that name"
            raise AttributeError(f"{type(obj).__name__} has no parameter {name!r} (its parameters: {known})")
        setattr(owner, last, decode_value(node, arrays))
    given = {name.lower() for name in params or {}}
    return [name for name in named if name.lower() not in given]


class _Float64Defaults:
    """While a student's object is built and called, new tensors default to float64: the probe's inputs are
    float64, and a module's float32 parameters (nn.Linear's default) would refuse them."""

    def __enter__(self):
        torch = _torch()
        self.previous = torch.get_default_dtype() if torch is not None else None
        if torch is not None:
            torch.set_default_dtype(torch.float64)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            _torch().set_default_dtype(self.previous)
        return False


def invoke(target, call, arrays="torch", notes=None):
    """Call ``target`` as ``call`` says: (result, the differentiated leaves by name, their display names).

    ``call``: {"args": [...], "kwargs": {...}, "construct": {...} or None, "grad_wrt": [int | str, ...]}.
    With ``construct``, ``target`` is a class: the object is built (float64 by default), its parameters
    set, then called (``method`` "forward" calls the object itself, so hooks run). ``notes`` (a dict), when
    given, gets "unset": the object's parameters the call did not set.
    """
    args = [decode_value(a, arrays) for a in call.get("args", [])]
    kwargs = {k: decode_value(v, arrays) for k, v in (call.get("kwargs") or {}).items()}
    wrt = call.get("grad_wrt") or []
    leaves, names = {}, {}
    for index in (w for w in wrt if isinstance(w, int)):
        args[index] = leaves[str(index)] = _require_grad(args[index])
    construct = call.get("construct")
    if not construct:
        if wrt:
            names.update(zip(map(str, range(len(args))), _argument_names(target, len(args))))
        return target(*args, **kwargs), leaves, names
    with _Float64Defaults():
        obj = build(target, construct, arrays)
        method = construct.get("method") or "forward"
        bound = obj if method == "forward" else getattr(obj, method)
        unset = _set_parameters(obj, construct.get("params"), lambda: bound(*args, **kwargs), arrays)
        if notes is not None:
            notes["unset"] = unset
        for name in construct.get("kept") or []:  # what a warm-up call kept must not stand in for this call's
            try:
                delattr(obj, name)
            except AttributeError:
                pass
        for name in (w for w in wrt if isinstance(w, str)):
            parameters = dict(obj.named_parameters()) if hasattr(obj, "named_parameters") else {}
            if name not in parameters:
                raise AttributeError(f"{type(obj).__name__} has no parameter {name!r}")
            leaves[name] = parameters[name]
            names[name] = f"{type(obj).__name__}.{name}"
        if wrt:
            names.update(zip(map(str, range(len(args))), _argument_names(getattr(obj, method), len(args))))
        return _kept_result(obj, bound(*args, **kwargs), construct.get("kept")), leaves, names


def _gradients(value, leaves, names):
    """d sum(result) / d each leaf (the result's first item when it is a tuple or list)."""
    torch = _torch()
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    target = ", ".join(f"`{names[k]}`" for k in leaves)
    if not isinstance(value, torch.Tensor) or value.grad_fn is None:
        return {"grad_reason": {"code": "not-connected", "target": target}}
    try:
        grads = torch.autograd.grad(value.sum(), list(leaves.values()), allow_unused=True)
    except Exception as exc:
        return {"grad_reason": {"code": "backward-failed", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}}
    unreached = [names[k] for k, g in zip(leaves, grads) if g is None]
    if unreached:
        return {"grad_reason": {"code": "not-reached", "target": ", ".join(f"`{n}`" for n in unreached)}}
    return {"grads": {key: encode_value(g) for key, g in zip(leaves, grads)}}


def call_and_encode(func, call):
    """Call the student's ``func`` as ``call`` says and describe the outcome as a JSON-ready dict.

    A function that raises on torch tensors is called again with NumPy arrays (a plain-NumPy solution);
    the first error is the one reported when both fail.
    """
    started = time.perf_counter()
    construct = call.get("construct") or {}
    sent = call.get("args", []) + list((call.get("kwargs") or {}).values()) + construct.get("init_args", []) \
        + list(construct.get("init_kwargs", {}).values()) + list(construct.get("params", {}).values())
    attempts = ["torch", "numpy"] if has_arrays(sent) and not call.get("grad_wrt") and _torch() is not None \
        else ["torch" if _torch() is not None else "numpy"]
    first_error, notes = None, {}
    for arrays in attempts:
        try:
            value, leaves, names = invoke(func, call, arrays, notes)
            break
        except BaseException as exc:  # a probe must survive anything short of the process dying
            if isinstance(exc, (KeyboardInterrupt, CallTimeout)):
                raise
            first_error = first_error or exc
    else:
        exc = first_error
        built = {}
        if isinstance(exc, ConstructionFailed):  # the student's error, and the call that met it
            built = {"reason": {"code": "construct-failed", "called": exc.called[:1000]}}
            exc = exc.cause
        return {"status": "error", "error_type": type(exc).__name__, "error_message": str(exc)[:1000],
                "traceback": _short_traceback(exc), "seconds": time.perf_counter() - started, **built}
    seconds = time.perf_counter() - started
    outcome = {"status": "ok", "seconds": seconds}
    if notes.get("unset"):
        outcome["unset_parameters"] = [str(name)[:200] for name in notes["unset"][:64]]
    try:
        outcome["value"] = encode_value(value)
    except Unreadable as exc:
        return {"status": "invalid", "reason": exc.reason, "seconds": seconds}
    except Exception:  # an object whose conversion itself fails (a hostile __array__, ...)
        return {"status": "invalid", "reason": {"code": "wrong-type", "type": type(value).__name__[:100]},
                "seconds": seconds}
    if leaves:
        try:
            outcome.update(_gradients(value, leaves, names))
        except Unreadable as exc:
            outcome["grad_reason"] = exc.reason
    return outcome


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


def call_with_limit(func, call, limits):
    """``call_and_encode`` stopped after the call's ``timeout`` seconds (inside ``CallLimits``)."""
    import signal

    started = time.perf_counter()
    if limits.enforced:
        signal.setitimer(signal.ITIMER_REAL, call["timeout"])
    try:
        return call_and_encode(func, call)
    except CallTimeout:
        return {"status": "timeout", "seconds": time.perf_counter() - started}
    finally:
        if limits.enforced:
            signal.setitimer(signal.ITIMER_REAL, 0)


def run_calls(calls, namespace, emit):
    """Each call's outcome, passed to ``emit`` as soon as it exists; after a timeout the rest are not made
    (the worker does not call a function that hung again)."""
    with CallLimits() as limits:
        for call in calls:
            func = namespace.get(call["function"])
            outcome = call_with_limit(func, call, limits) if callable(func) else {"status": "missing"}
            outcome["id"] = call["id"]
            emit(outcome)
            if outcome["status"] == "timeout":
                break


def run_batch(calls_json, namespace=None):
    """Worker entry point: several calls of one function in one execution (a kernel round trip saved per
    call), each displayed as one output of our MIME type."""
    from IPython.display import display

    if namespace is None:
        namespace = get_ipython().user_ns  # noqa: F821 - defined in every IPython kernel
    run_calls(json.loads(calls_json), namespace, lambda outcome: display({OUTCOME: outcome}, raw=True))
