"""The one definition of a value on the wire, for every side: the kernel, the worker and the grader.

The kernel loads this very file (``grader.worker.kernel_modules``: it cannot import the grader's package in
the sandbox), the worker and the grader import it. It needs the standard library and NumPy only, and
torch only when the value is a tensor (where torch is already imported: the worker never imports it).

A value is one JSON object:

    {"kind": "array", "dtype": "float64" | "int64" | "bool", "shape": [2, 3], "data": "<base64>"}
        a tensor or an ndarray: its numbers as raw little-endian bytes (C order), base64-encoded; a
        Python or NumPy number has shape [] and "scalar": true. Only these three dtypes exist: no
        object, void, string or complex array can be sent or rebuilt. NaN and infinities are numbers
        like the others (a result that holds them is judged, not refused).
    {"kind": "list" | "tuple", "items": [value, ...]}
    {"kind": "none"}
    {"kind": "str", "text": "..."}

``encode_value`` makes one (or raises ``Unreadable`` with a reason code of grader.reasons);
``parse_value`` rebuilds one from untrusted JSON, every field checked, without recursion, within
``WIRE``'s limits (or raises ``Malformed`` saying what is wrong): the byte length must be exactly
shape x itemsize, a bool must be a byte 0 or 1, text must be valid Unicode.
"""

import base64
import binascii
import math
import sys

import numpy as np

OUTCOME_MIME = "application/vnd.attention-grader.outcome+json"  # the kernel's display output of one outcome

WIRE = {
    "kinds": ("array", "list", "tuple", "none", "str"),
    "dtypes": ("float64", "int64", "bool"),
    "max_depth": 6,  # lists and tuples within lists and tuples
    "max_items": 10_000,  # values in all lists and tuples of one value
    "max_elements": 1_000_000,  # numbers in all arrays of one value
    "max_dims": 32,  # an array's dimensions (NumPy's own limit is 64)
    "max_text": 4000,
    "int_bound": 2**63,  # ints outside int64 are not numbers the grader compares: they travel as float64
}
# Each dtype's bytes: little-endian whatever the machine, so that both ends read the same numbers.
BYTES = {"float64": "<f8", "int64": "<i8", "bool": "|b1"}
_SENT = {name: np.dtype(code) for name, code in BYTES.items()}
_NATIVE = {name: dtype.newbyteorder("=") for name, dtype in _SENT.items()}
try:  # Python 3.11+: validates as it decodes
    binascii.a2b_base64(b"", strict_mode=True)

    def _from_base64(text):
        return binascii.a2b_base64(text, strict_mode=True)
except TypeError:
    def _from_base64(text):
        return base64.b64decode(text, validate=True)


class Unreadable(Exception):
    """A value that cannot cross the wire; ``reason`` is the code and parameters of grader.reasons."""

    def __init__(self, code, **params):
        super().__init__(code)
        self.reason = {"code": code, **params}


class Malformed(ValueError):
    """Received JSON that is not a value of this schema; the message says which field and why."""


# --------------------------------------------------------------------------- encoding: Python -> JSON


def _numpy_of_tensor(value):
    """A torch tensor as the ndarray of its numbers (float16/bfloat16 widened, sparse made dense)."""
    torch = sys.modules["torch"]
    value = value.detach().cpu()
    if value.is_complex():
        raise Unreadable("complex")
    try:
        if value.layout != torch.strided:
            value = value.to_dense()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.to(torch.float64)
        return value.resolve_conj().resolve_neg().numpy()
    except (TypeError, RuntimeError):  # a tensor subclass, a quantised or meta tensor, ...
        raise Unreadable("not-numbers") from None


def _array_node(array, scalar, budget):
    kind = array.dtype.kind
    if kind == "b":
        dtype = "bool"
    elif kind in "iu":
        inside = not array.size or (int(array.max()) < WIRE["int_bound"] and int(array.min()) >= -WIRE["int_bound"])
        dtype = "int64" if inside else "float64"
    elif kind == "f":
        dtype = "float64"
    elif kind == "c":
        raise Unreadable("complex")
    else:  # object, void, strings, dates: not numbers
        raise Unreadable("not-numbers")
    if array.ndim > WIRE["max_dims"]:
        raise Unreadable("too-deep", limit=WIRE["max_dims"])
    budget["elements"] += array.size
    if budget["elements"] > WIRE["max_elements"] or any(n > WIRE["max_elements"] for n in array.shape):
        raise Unreadable("too-many", size=int(budget["elements"]), limit=WIRE["max_elements"])
    data = np.ascontiguousarray(array, dtype=_SENT[dtype]).tobytes()
    node = {"kind": "array", "dtype": dtype, "shape": list(array.shape),
            "data": binascii.b2a_base64(data, newline=False).decode()}
    if scalar:
        node["scalar"] = True  # a Python or NumPy number: the student's code gets a number back
    return node


def encode_value(value, _budget=None, _depth=0):
    """A tensor, array, number, None, string, or a list/tuple of these, as a wire value; else Unreadable."""
    budget = _budget if _budget is not None else {"items": 0, "elements": 0}
    torch = sys.modules.get("torch")  # a tensor exists only where torch is imported
    if torch is not None and isinstance(value, torch.Tensor):
        value = _numpy_of_tensor(value)
    if value is None:
        return {"kind": "none"}
    if isinstance(value, str):
        return {"kind": "str", "text": value[:WIRE["max_text"]]}
    if isinstance(value, np.ndarray):
        return _array_node(value, False, budget)
    if isinstance(value, int) and not isinstance(value, bool) and not (
            -WIRE["int_bound"] <= value < WIRE["int_bound"]):
        try:
            value = float(value)  # as an int64 array outside the bound travels
        except OverflowError:
            raise Unreadable("not-numbers") from None
    if isinstance(value, (bool, int, float, np.generic)):
        return _array_node(np.asarray(value), True, budget)
    if isinstance(value, (list, tuple)):
        if _depth >= WIRE["max_depth"]:
            raise Unreadable("too-deep", limit=WIRE["max_depth"])
        budget["items"] += len(value)
        if budget["items"] > WIRE["max_items"]:
            raise Unreadable("too-many", size=int(budget["items"]), limit=WIRE["max_items"])
        return {"kind": "tuple" if isinstance(value, tuple) else "list",
                "items": [encode_value(item, budget, _depth + 1) for item in value]}
    raise Unreadable("wrong-type", type=type(value).__name__)


# --------------------------------------------------------------------------- parsing: untrusted JSON -> Python


def checked_text(text, limit=None):
    """``text`` cut to ``limit`` characters; Malformed when it is not valid Unicode (a lone surrogate, which the
    JSON escape \\ud800 makes, would break every file and page it is written to)."""
    text = text[:WIRE["max_text"] if limit is None else limit]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed("text that is not valid Unicode") from None
    return text


def _parse_array(node: dict, budget: dict):
    dtype, shape, data = node.get("dtype"), node.get("shape"), node.get("data")
    if dtype not in _SENT:
        raise Malformed(f"array dtype {str(dtype)[:20]!r}: the wire carries {', '.join(WIRE['dtypes'])} only")
    if not isinstance(shape, list) or len(shape) > WIRE["max_dims"]:
        raise Malformed(f"array shape: a list of at most {WIRE['max_dims']} lengths")
    for n in shape:
        if type(n) is not int or not 0 <= n <= WIRE["max_elements"]:  # bool, float, NaN, huge, negative
            raise Malformed(f"array shape: lengths are integers from 0 to {WIRE['max_elements']}")
    count = math.prod(shape)  # Python's integers: a huge shape cannot overflow into a small one
    budget["elements"] += count
    if budget["elements"] > WIRE["max_elements"]:
        raise Malformed(f"too many numbers: more than {WIRE['max_elements']} in one value")
    size = count * _SENT[dtype].itemsize
    # Checked before decoding: a lying shape costs nothing, whatever the text's length.
    if not isinstance(data, str) or len(data) != 4 * -(-size // 3):
        raise Malformed(f"array data: {count} numbers of {dtype} are {size} bytes, which the data is not")
    try:
        raw = _from_base64(data)
    except (binascii.Error, ValueError):
        raise Malformed("array data: not base64") from None
    if len(raw) != size:
        raise Malformed(f"array data: {len(raw)} bytes where {count} numbers of {dtype} are {size}")
    if dtype == "bool" and raw.translate(None, b"\x00\x01"):
        raise Malformed("array data: a bool that is not 0 or 1")
    # astype: native byte order, and an array of its own (writable), not a view of the message
    array = np.frombuffer(raw, dtype=_SENT[dtype]).astype(_NATIVE[dtype]).reshape(shape)
    scalar = node.get("scalar", False)
    if scalar is not False and (scalar is not True or shape):
        raise Malformed("array scalar: true for a number of shape [] only")
    return array[()] if scalar else array  # a NumPy scalar: it goes back to a kernel as the number it was


def parse_value(node):
    """A wire value checked field by field, without recursion: its depth and size are bounded by ``WIRE``."""
    budget = {"items": 0, "elements": 0}
    if type(node) is dict and node.get("kind") == "array":  # most values: one array, no structure to walk
        return _parse_array(node, budget)
    root: list = []
    # Each entry: (node, depth, the list its value is appended to).
    pending = [(node, 0, root)]
    tuples = []  # (holder, the list it stands in, its index): frozen once filled
    while pending:
        current, depth, into = pending.pop()
        if not isinstance(current, dict):
            raise Malformed(f"a value is a JSON object, not {type(current).__name__}")
        kind = current.get("kind")
        if kind == "array":
            into.append(_parse_array(current, budget))
        elif kind == "none":
            into.append(None)
        elif kind == "str":
            if not isinstance(current.get("text"), str):
                raise Malformed("str: its text is not a string")
            into.append(checked_text(current["text"]))
        elif kind in ("list", "tuple"):
            items = current.get("items")
            if not isinstance(items, list):
                raise Malformed(f"{kind}: its items are not a list")
            if depth >= WIRE["max_depth"]:
                raise Malformed(f"{kind}: nested more than {WIRE['max_depth']} deep")
            budget["items"] += len(items)
            if budget["items"] > WIRE["max_items"]:
                raise Malformed(f"too many items: more than {WIRE['max_items']} in one value")
            holder: list = []
            into.append(holder)
            if kind == "tuple":
                tuples.append((holder, into, len(into) - 1))
            pending.extend((item, depth + 1, holder) for item in reversed(items))
        else:
            raise Malformed(f"kind {str(kind)[:20]!r}: the wire carries {', '.join(WIRE['kinds'])} only")
    # Inner holders were created after their parents: freeze tuples from the innermost out.
    for holder, into, index in reversed(tuples):
        into[index] = tuple(holder)
    return root[0]
