"""The wire's typed values and outcomes, without a kernel: every dtype and structure both ways, and what a
hostile kernel could send instead (malformed, oversized, deep), which must become ``invalid``, never an
exception. Also the calls themselves (grader.probe_runtime.call_and_encode) on functions, classes, NumPy
code and gradients, run here in-process as the kernel runs them."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
import torch

from grader import probe_runtime
from grader.checks import Call, reference_value
from grader.compare import compare_values, value_error
from grader.model import Construct, ProbeCall
from grader.probe_runtime import WIRE, call_and_encode, decode_value, encode_value
from grader.wire import (Malformed, call_json, checked_outcome, encode_argument, parse_outcome, parse_value,
                         to_value)


def through_json(node):
    return json.loads(json.dumps(node))


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and bool(
            np.array_equal(a, b, equal_nan=a.dtype == np.float64))
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


VALUES = [
    np.array([[1.5, np.nan], [np.inf, -np.inf]]),
    np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array([True, False, True]),
    np.zeros((0, 3)),
    np.array(2.5),
    (np.ones(2), np.array([3, 4])),
    [np.array(1.0), (np.array([True]), None), "text"],
    None,
    (),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__ + str(getattr(v, "dtype", "")))
def test_every_dtype_and_structure_round_trips(value):
    assert same(parse_value(through_json(encode_value(value))), value)


def test_numbers_and_tensors_keep_their_kind_on_the_way_to_the_kernel():
    node = encode_argument((np.arange(3), np.array([0.5, 1.0]), np.array([True]), 2, 0.5, True, None, "x"))
    ints, floats, bools, two, half, flag, nothing, text = decode_value(through_json(node))
    assert ints.dtype == torch.int64 and floats.dtype == torch.float64 and bools.dtype == torch.bool
    assert (two, half, flag, nothing, text) == (2, 0.5, True, None, "x")
    assert type(two) is int and type(half) is float and type(flag) is bool  # numbers stay numbers
    as_numpy = decode_value(through_json(node), arrays="numpy")
    assert as_numpy[0].dtype == np.int64 and isinstance(as_numpy[1], np.ndarray)
    # A tensor a check builds travels like the array it holds; a 0-d tensor stays a tensor.
    assert same(parse_value(encode_argument(torch.tensor([1, 2]))), np.array([1, 2]))
    assert isinstance(decode_value(encode_argument(torch.tensor(1.5))), torch.Tensor)


def test_results_of_every_kind_are_read_with_their_dtype():
    results = {"float tensor": torch.tensor([1.0, 2.0]), "float32": torch.tensor([0.5], dtype=torch.float32),
               "half": torch.tensor([0.5], dtype=torch.float16), "int tensor": torch.tensor([1, 2]),
               "bool mask": torch.tensor([True, False]), "python float": 0.25, "numpy float": np.float32(0.5),
               "tuple": (torch.ones(2), torch.zeros(1, 2)), "list of floats": [0.1, 0.2]}
    read = {name: to_value(value) for name, value in results.items()}
    assert read["float tensor"].dtype == np.float64 and read["float32"].dtype == np.float64
    assert read["half"].dtype == np.float64 and read["int tensor"].dtype == np.int64
    assert read["bool mask"].dtype == np.bool_ and read["python float"].shape == ()
    assert isinstance(read["tuple"], tuple) and read["tuple"][1].shape == (1, 2)
    assert isinstance(read["list of floats"], list)


@pytest.mark.parametrize("value, code", [
    (torch.tensor([1j]), "complex"), (object(), "wrong-type"), ({"a": 1}, "wrong-type"),
    (np.array([object()], dtype=object), "not-numbers"),
    (torch.zeros(WIRE["max_elements"] + 1), "too-many"), ([[0.0]] * (WIRE["max_items"] + 1), "too-many"),
])
def test_unreadable_results_have_a_reason_code(value, code):
    with pytest.raises(probe_runtime.Unreadable) as caught:
        encode_value(value)
    assert caught.value.reason["code"] == code


def test_nesting_beyond_the_limit_is_refused_on_both_sides():
    nested: list = [1.0]
    for _ in range(WIRE["max_depth"] + 1):
        nested = [nested]
    with pytest.raises(probe_runtime.Unreadable) as caught:
        encode_value(nested)
    assert caught.value.reason == {"code": "too-deep", "limit": WIRE["max_depth"]}
    # A kernel sending it anyway, and far deeper than Python's recursion limit: invalid, no RecursionError.
    node: dict = {"kind": "none"}
    for _ in range(5000):
        node = {"kind": "list", "items": [node]}
    with pytest.raises(Malformed):
        parse_value(node)
    assert parse_outcome("c#0", {"status": "ok", "value": node}).status == "invalid"


def array_node(dtype: str, shape, data: bytes, **extra) -> dict:
    return {"kind": "array", "dtype": dtype, "shape": shape, "data": base64.b64encode(data).decode(), **extra}


F8 = np.array([1.0, 2.0]).astype("<f8").tobytes()
# Each hostile node, and the words of the refusal that says what is wrong with it.
MALFORMED_VALUES = [
    (None, "JSON object"), ([], "JSON object"), ("ok", "JSON object"), ({"kind": "set"}, "kind 'set'"),
    ({"kind": "array"}, "dtype"),
    (array_node("object", [2], F8), "dtype"), (array_node("<V8", [2], F8), "dtype"),
    (array_node("complex128", [1], F8), "dtype"), (array_node("float32", [4], F8), "dtype"),
    (array_node("float64", [-1], b""), "shape"), (array_node("float64", [True, 2], F8), "shape"),
    (array_node("float64", [2.0], F8), "shape"), (array_node("float64", [math.nan], F8), "shape"),
    (array_node("float64", [2**64, 0], b""), "shape"), (array_node("float64", [1] * 33, F8[:8]), "shape"),
    (array_node("float64", "2", F8), "shape"),
    (array_node("float64", [1000, 1000, 1000], b""), "too many numbers"),  # refused before any data is read
    (array_node("float64", [3], F8), "data"), (array_node("float64", [1], F8), "data"),  # lying shapes
    (array_node("int64", [4], F8), "data"), (array_node("bool", [2], b"\x01"), "data"),
    ({"kind": "array", "dtype": "float64", "shape": [2], "data": [1.0, 2.0]}, "data"),  # numbers as a list
    ({"kind": "array", "dtype": "float64", "shape": [2], "data": "!" * 24}, "base64"),  # 16 bytes' length
    ({"kind": "array", "dtype": "float64", "shape": [2], "data": "\u00e9" * 24}, "base64"),  # right length, not base64
    (array_node("bool", [2], b"\x01\x02"), "bool"),  # a byte NumPy would read as True, and compare as 2
    (array_node("float64", [2], F8, scalar=True), "scalar"), (array_node("float64", [], F8[:8], scalar=1), "scalar"),
    ({"kind": "tuple", "items": "ab"}, "items"), ({"kind": "str", "text": 3}, "text"),
    ({"kind": "str", "text": "\ud800"}, "Unicode"),  # the JSON escape \ud800: a lone surrogate
    ({"kind": "list", "items": [{"kind": "none"}] * (WIRE["max_items"] + 1)}, "too many items"),
    ({"kind": "list", "items": [array_node("float64", [WIRE["max_elements"] // 2 + 1], bytes(4_000_008)),
                                array_node("float64", [WIRE["max_elements"] // 2 + 1], b"")]},
     "too many numbers"),  # the budget counts every array of the value, the second refused before its data
]


@pytest.mark.parametrize("node, words", MALFORMED_VALUES, ids=range(len(MALFORMED_VALUES)))
def test_malformed_values_make_an_invalid_outcome_never_an_exception(node, words):
    with pytest.raises(Malformed, match=words):
        parse_value(node)
    outcome = parse_outcome("c#0", {"status": "ok", "value": node})
    assert outcome.status == "invalid" and outcome.reason == {"code": "malformed-value"}
    assert checked_outcome({"status": "ok", "value": node})["status"] == "invalid"  # the worker's reading


def test_arrays_cross_as_bytes_with_their_dtype_and_shape():
    node = encode_value(np.arange(6, dtype=np.int32).reshape(2, 3).T)  # a view, not contiguous, int32
    assert node == array_node("int64", [3, 2], np.arange(6).reshape(2, 3).T.astype("<i8").tobytes())
    assert json.dumps(encode_value(np.array([np.nan, np.inf]))) == json.dumps(
        array_node("float64", [2], np.array([np.nan, np.inf]).astype("<f8").tobytes()))  # no NaN in the JSON
    big_endian = parse_value(array_node("float64", [2], F8))  # little-endian on the wire, native once read
    assert big_endian.dtype == np.float64 and big_endian.flags.writeable and list(big_endian) == [1.0, 2.0]
    assert same(parse_value(encode_value(np.array([1.5, -2.0], dtype=">f8"))), np.array([1.5, -2.0]))


@pytest.mark.parametrize("limit, fits, beyond", [
    ("max_depth", lambda n: nested(n - 1), lambda n: nested(n)),
    ("max_items", lambda n: [None] * n, lambda n: [None] * (n + 1)),
    ("max_elements", lambda n: np.zeros(n), lambda n: (np.zeros(n - 1), np.zeros(2))),
    ("max_dims", lambda n: np.zeros((1,) * n), lambda n: np.zeros((1,) * (n + 1))),
])
def test_each_limit_holds_on_both_sides(limit, fits, beyond):
    n = WIRE[limit]
    assert same(parse_value(through_json(encode_value(fits(n)))), fits(n))
    with pytest.raises(probe_runtime.Unreadable):
        encode_value(beyond(n))
    with pytest.raises(Malformed):  # a kernel that sends it anyway
        parse_value(forged(beyond(n)))


def nested(depth):
    value: list = [1.0]
    for _ in range(depth):
        value = [value]
    return value


def forged(value):
    """``value`` as a wire value, encoded without the encoder's limits (what a hostile kernel can send)."""
    if isinstance(value, (list, tuple)):
        return {"kind": "tuple" if isinstance(value, tuple) else "list", "items": [forged(v) for v in value]}
    if value is None:
        return {"kind": "none"}
    array = np.asarray(value)
    return array_node({"f": "float64", "i": "int64", "b": "bool"}[array.dtype.kind], list(array.shape),
                      array.astype({"f": "<f8", "i": "<i8", "b": "|b1"}[array.dtype.kind]).tobytes())


def test_texts_of_an_outcome_are_cut_and_made_valid():
    raw = {"status": "error", "error_message": "bad \ud800 text" + "x" * 10_000, "seconds": math.nan,
           "reason": {"code": "x", "\udcff": "\ud800"}, "error_type": "E"}
    outcome = parse_outcome("c#0", through_json(raw))
    assert outcome.error_message.startswith("bad ? text") and len(outcome.error_message) == WIRE["max_text"]
    assert outcome.seconds is None  # a NaN duration is no duration
    assert outcome.reason == {"code": "x", "?": "?"}
    json.dumps(checked_outcome(raw), ensure_ascii=False).encode("utf-8")  # writable as UTF-8 everywhere


def test_a_worker_result_that_is_not_utf8_is_a_crash_report(tmp_path):
    from grader.execute import read_worker_result
    from grader.model import ErrorKind, SandboxTier

    path = tmp_path / "worker-result.json"
    path.write_bytes(b'{"finished": true, "probes": {"c": {"status": "error", "error_message": "\xff\xfe"}}}')
    errors: list = []
    run = read_worker_result(path, [ProbeCall("c", "f", ())], SandboxTier.NONE, errors, 0, 1.0)
    assert [e.kind for e in errors] == [ErrorKind.WORKER_FAILED] and run.probes["c"].status == "not-run"


@pytest.mark.parametrize("raw", [None, [], "ok", {"status": "fine"}, {"status": 3}])
def test_malformed_outcomes_are_invalid(raw):
    assert parse_outcome("c#0", raw).status == "invalid"


def test_outcomes_are_rebuilt_field_by_field():
    raw = {"status": "ok", "value": encode_value((np.array([1.0, np.nan]), np.array([1, 2]))), "seconds": 0.5,
           "grads": {"2": encode_value(np.array(np.nan)), "W_q.weight": encode_value(np.ones((2, 2)))},
           "unknown": "dropped", "error_message": ["not", "text"], "reason": {"code": "x", "nested": {"a": 1}}}
    outcome = parse_outcome("c#0", through_json(raw))
    assert outcome.status == "ok" and outcome.seconds == 0.5 and outcome.error_message is None
    assert np.isnan(outcome.grads["2"]) and outcome.grads["W_q.weight"].shape == (2, 2)
    assert outcome.reason == {"code": "x"}  # only short plain parameters are kept
    assert same(outcome.value, (np.array([1.0, np.nan]), np.array([1, 2])))
    again = checked_outcome(raw)
    assert "unknown" not in again and same(parse_outcome("c#0", again).value, outcome.value)
    bad_grad = parse_outcome("c#0", {**raw, "grads": {"0": {"kind": "list", "items": []}}})
    assert bad_grad.grads == {} and bad_grad.grad_reason == {"code": "malformed-value"}


# --------------------------------------------------------------------------- calls, as the kernel makes them

def outcome_of(func, call: ProbeCall):
    return parse_outcome(call.id, through_json(call_and_encode(func, call_json(call))))


def test_integer_arguments_reach_the_function_as_integers():
    def first_valid(x, valid_lens):
        assert valid_lens.dtype == torch.int64  # the book indexes and compares with them
        return torch.stack([row[:n].sum() for row, n in zip(x, valid_lens)])

    outcome = outcome_of(first_valid, ProbeCall("c#0", "first_valid", (np.ones((2, 3)), np.array([1, 3]))))
    assert outcome.status == "ok" and same(outcome.value, np.array([1.0, 3.0]))


def test_a_plain_numpy_function_gets_numpy_arrays():
    def numpy_only(x, axis):
        return np.asarray(x).max(axis=axis) / np.sqrt(x.shape[-1])  # torch's max(axis=) returns a pair

    outcome = outcome_of(numpy_only, ProbeCall("c#0", "numpy_only", (np.arange(4.0).reshape(2, 2), 1)))
    assert outcome.status == "ok" and np.allclose(outcome.value, [1 / np.sqrt(2), 3 / np.sqrt(2)])

    def always_fails(x):
        raise ValueError("first")

    failed = outcome_of(always_fails, ProbeCall("c#0", "always_fails", (np.ones(2),)))
    assert failed.status == "error" and failed.error_message == "first"


def test_keyword_arguments_and_returned_tuples():
    def attention(queries, keys, *, scale=True):
        scores = queries @ keys.T / (queries.shape[-1] ** 0.5 if scale else 1)
        return scores, torch.softmax(scores, -1)

    call = ProbeCall("c#0", "attention", (np.eye(2), np.ones((3, 2))), kwargs={"scale": False})
    outcome = outcome_of(attention, call)
    assert isinstance(outcome.value, tuple) and outcome.value[0].shape == (2, 3)
    assert np.allclose(outcome.value[1], 1 / 3)


class Bilinear(torch.nn.Module):
    """The book's style: a lazy layer (float32 by default), dropout, (output, weights) returned."""

    def __init__(self, hidden, dropout):
        super().__init__()
        self.W = torch.nn.LazyLinear(hidden, bias=False)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, queries, keys, values):
        scores = torch.bmm(queries, self.W(keys).transpose(1, 2))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(self.dropout(weights), values), weights


def test_a_class_is_built_parametrised_and_called_like_the_reference():
    rng = np.random.default_rng(1)
    construct = Construct((2,), {"dropout": 0.5}, {"W.weight": rng.normal(size=(2, 3))})
    args = (rng.normal(size=(1, 2, 2)), rng.normal(size=(1, 4, 3)), rng.normal(size=(1, 4, 5)))
    default_dtype = torch.get_default_dtype()
    outcome = outcome_of(Bilinear, ProbeCall("c#0", "Bilinear", args, construct=construct))
    expected = reference_value(Bilinear, Call("Bilinear", args, construct=construct))
    assert outcome.status == "ok" and outcome.value[0].dtype == np.float64  # built in float64, eval mode
    assert compare_values(outcome.value, expected, 1e-12, 0).matches
    weights = expected[1]
    queries, keys = args[0][0], args[1][0] @ construct.params["W.weight"].T
    scores = queries @ keys.T
    assert np.allclose(weights[0], np.exp(scores) / np.exp(scores).sum(-1, keepdims=True))
    assert torch.get_default_dtype() == default_dtype  # restored after the call
    unknown = Construct((2,), {"dropout": 0.0}, {"W_q.weight": np.ones((2, 3))})
    failed = outcome_of(Bilinear, ProbeCall("c#0", "Bilinear", args, construct=unknown))
    assert failed.status == "error" and "W_q.weight" in failed.error_message


def test_gradients_with_respect_to_arguments_and_parameters():
    rng = np.random.default_rng(2)
    construct = Construct((2,), {"dropout": 0.0}, {"W.weight": rng.normal(size=(2, 3))})
    args = (rng.normal(size=(1, 2, 2)), rng.normal(size=(1, 4, 3)), rng.normal(size=(1, 4, 5)))
    call = ProbeCall("c#0", "Bilinear", args, grad_wrt=("W.weight", 0), construct=construct)
    outcome = outcome_of(Bilinear, call)
    assert set(outcome.grads) == {"W.weight", "0"} and outcome.grads["W.weight"].shape == (2, 3)
    expected = reference_value(Bilinear, Call("Bilinear", args, grad_wrt=("W.weight", 0), construct=construct))
    assert np.allclose(outcome.grads["W.weight"], expected[0]) and np.allclose(outcome.grads["0"], expected[1])

    def cut(x, sigma):
        return torch.tensor(float(sigma.detach()) * x.sum().item())  # a new tensor: the graph is cut

    broken = outcome_of(cut, ProbeCall("c#0", "cut", (np.ones(2), 0.5), grad_wrt=1))
    assert broken.grads == {} and broken.grad_reason == {"code": "not-connected", "target": "`sigma`"}
    assert "`sigma`" in broken.describe_gradient_failure()  # named from the student's own signature

    def ignores(x, sigma):
        return (x * 2).sum()

    unreached = outcome_of(ignores, ProbeCall("c#0", "ignores", (np.ones(2), 0.5), grad_wrt=(0, 1)))
    assert unreached.grad_reason == {"code": "not-reached", "target": "`sigma`"}


def test_structures_are_compared_item_by_item():
    expected = (np.array([1.0, 2.0]), np.array([[0.5, 0.5]]))
    assert compare_values([[1.0, 2.0], [[0.5, 0.5]]], expected, 1e-9, 0).matches  # lists where arrays are
    wrong = compare_values((np.array([1.0, 2.0]), np.array([[0.4, 0.6]])), expected, 1e-9, 0)
    assert not wrong.matches and wrong.reason.startswith("result[1]:") and wrong.worst[0]["item"] == 1
    only_output = compare_values(np.array([1.0, 2.0]), expected, 1e-9, 0)
    assert not only_output.matches and "a tuple of 2 items" in only_output.reason
    assert "return" in compare_values(None, expected, 1e-9, 0).reason
    assert compare_values(np.array([1, 0]), np.array([True, False]), 0, 0).matches  # numbers, whatever the dtype
    assert value_error((np.array([1.0]), np.array([2.2])), (np.array([1.0]), np.array([2.0]))) == pytest.approx(0.1)
    assert value_error(np.array([1.0]), expected) == float("inf")


class NumpyBilinear:
    """A plain-NumPy class with the book's layer names: no named_parameters, weights as attributes."""

    class Layer:
        def __init__(self, rows, cols):
            self.weight = np.zeros((rows, cols))

    def __init__(self, hidden, keys):
        self.W = self.Layer(hidden, keys)

    def __call__(self, queries, keys, values):
        scores = np.asarray(queries) @ (np.asarray(keys) @ self.W.weight.T).transpose(0, 2, 1)
        weights = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
        return weights @ np.asarray(values), weights


class Float32Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.W = torch.nn.Linear(3, 2, bias=False, dtype=torch.float32)  # float32 whatever the default

    def forward(self, x):
        return self.W(x)


def test_numpy_classes_and_float32_layers_are_graded_like_the_books():
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(2, 3))
    args = (rng.normal(size=(1, 2, 2)), rng.normal(size=(1, 4, 3)), rng.normal(size=(1, 4, 5)))
    expected = reference_value(Bilinear, Call("Bilinear", args, construct=Construct((2, 0.0), {}, {"W.weight": weight})))
    numpy_call = ProbeCall("c#0", "NumpyBilinear", args, construct=Construct((2, 3), {}, {"W.weight": weight}))
    outcome = outcome_of(NumpyBilinear, numpy_call)
    assert outcome.status == "ok" and compare_values(outcome.value, expected, 1e-12, 1e-12).matches
    missing = outcome_of(NumpyBilinear, ProbeCall("c#0", "NumpyBilinear", args,
                                                  construct=Construct((2, 3), {}, {"W_k.weight": weight})))
    assert missing.status == "error" and "W_k.weight" in missing.error_message
    layer = outcome_of(Float32Layer, ProbeCall("c#0", "Float32Layer", (rng.normal(size=(4, 3)),),
                                               construct=Construct(params={"W.weight": weight})))
    assert layer.status == "ok" and layer.value.dtype == np.float64


@pytest.mark.parametrize("value, expected", [
    (torch.tensor([1.5, 2.0], dtype=torch.float16), np.array([1.5, 2.0])),
    (torch.tensor([1.5], dtype=torch.bfloat16), np.array([1.5])), (torch.tensor([[1, 2]], dtype=torch.int32), np.array([[1, 2]])),
    (torch.tensor([True]), np.array([True])), (torch.tensor(3), np.array(3)), (torch.ones(2, 3).T, np.ones((3, 2))),
    (np.float32(0.5), np.float64(0.5)), (np.int8(-3), np.int64(-3)), (np.bool_(False), np.bool_(False)),
    (7, np.int64(7)), (True, np.bool_(True)), (0.25, np.float64(0.25)), (2**70, np.float64(2.0**70)),
    (np.arange(3, dtype=np.uint8), np.arange(3)), (np.array([2**63], dtype=np.uint64), np.array([2.0**63])),
    (np.array([1.0, 2.0, 3.0, 4.0])[::2], np.array([1.0, 3.0])), (np.zeros((0, 3), dtype=np.int16), np.zeros((0, 3), np.int64)),
    ([0.1, (2, None, "s")], [np.float64(0.1), (np.int64(2), None, "s")]), ("x" * 5000, "x" * WIRE["max_text"]),
], ids=lambda v: type(v).__name__)
def test_every_kind_of_python_value_becomes_its_wire_value(value, expected):
    """What a student's code or the reference returns, as the grader holds it: dtypes widened to the wire's three,
    numbers as NumPy scalars, structures kept (to_value is the wire's own encoder and parser)."""
    got = to_value(value)
    assert same(got, expected) and type(got) is type(expected)
    if isinstance(expected, (np.ndarray, np.generic)):
        assert got.dtype == expected.dtype


@pytest.mark.parametrize("value, code", [
    (np.array(["a"]), "not-numbers"), (np.zeros(2, dtype="V8"), "not-numbers"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "not-numbers"), (np.zeros(2, dtype=[("a", "<f8")]), "not-numbers"),
    (np.zeros(2, dtype=np.complex64), "complex"), (10**400, "not-numbers"), (b"bytes", "wrong-type"),
])
def test_only_numbers_of_safe_dtypes_are_sent(value, code):
    with pytest.raises(probe_runtime.Unreadable) as caught:
        encode_value(value)
    assert caught.value.reason["code"] == code
    with pytest.raises(TypeError):
        to_value(value)


def test_the_kernel_reads_its_arguments_with_the_same_parser():
    with pytest.raises(Malformed, match="data"):
        decode_value(array_node("float64", [3], F8))


def test_the_kernel_loads_the_schema_from_its_file_without_the_graders_package(tmp_path):
    """The kernel cannot import grader: the worker's code gives it grader/wireformat.py as a module of its own, and
    the probe runtime finds it there."""
    import subprocess
    import sys

    from grader.worker import kernel_modules_code

    call = call_json(ProbeCall("c#0", "f", (np.arange(3.0), 2)))
    script = ("import sys\nsys.modules['grader'] = None  # no import of the package can succeed\n"
              + kernel_modules_code()
              + "import json, _probe\nout = []\n"
              + f"_probe.run_calls([json.loads({json.dumps(call)!r})], {{'f': lambda x, k: x * k}}, out.append)\n"
              + "print(json.dumps(out[0]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    outcome = parse_outcome("c#0", json.loads(done.stdout))
    assert outcome.status == "ok" and same(outcome.value, np.array([0.0, 2.0, 4.0]))


def test_the_reference_gets_its_arguments_as_a_students_function_does():
    seen = {}

    def spy(*args):
        seen["reference"] = args
        return 0.0

    args = (np.arange(3), np.ones(2, dtype=np.float32), 0.5, 2, None, (np.array([True]), "x"))
    reference_value(spy, Call("spy", args))
    seen["student"] = decode_value(through_json(encode_argument(args)))
    for ours, theirs in zip(seen["reference"], seen["student"]):
        assert type(ours) is type(theirs)
        if isinstance(ours, torch.Tensor):
            assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)


def test_the_worker_checks_outcomes_without_importing_torch():
    """The worker re-encodes every outcome it checks; importing torch for that cost 1.5 s and 200 MiB per
    submission on the critical path. A tensor exists only where torch is imported, so the encoder never needs to."""
    import subprocess
    import sys

    outcomes = [{"id": "a", "status": "ok", "seconds": 0.1, "value": encode_value(v)} for v in (
        np.arange(6.0).reshape(2, 3), np.array([1, 2]), np.array([True]), 3.5, None, "text",
        (np.zeros(2), [1, (2.0, None)]))]
    outcomes.append({"id": "b", "status": "error", "error_type": "ValueError", "error_message": "no"})
    script = ("import json, sys\nimport grader.worker\nfrom grader.wire import checked_outcome\n"
              f"checked = [checked_outcome(o) for o in json.loads({json.dumps(outcomes)!r})]\n"
              "assert all(c['status'] in ('ok', 'error') for c in checked), checked\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
