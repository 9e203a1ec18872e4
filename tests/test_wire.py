"""The wire's typed values and outcomes, without a kernel: every dtype and structure both ways, and what a
hostile kernel could send instead (malformed, oversized, deep), which must become ``invalid``, never an
exception. Also the calls themselves (grader.probe_runtime.call_and_encode) on functions, classes, NumPy
code and gradients, run here in-process as the kernel runs them."""

from __future__ import annotations

import json

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


MALFORMED_VALUES = [
    None, [], "ok", {"kind": "set"}, {"kind": "array"},
    {"kind": "array", "dtype": "float", "shape": [2], "data": [1.0]},  # too few entries
    {"kind": "array", "dtype": "float", "shape": [1], "data": [True]},  # a bool where floats are said
    {"kind": "array", "dtype": "int", "shape": [1], "data": [1.5]},  # a float where ints are said
    {"kind": "array", "dtype": "int", "shape": [1], "data": [2**70]},  # outside int64
    {"kind": "array", "dtype": "bool", "shape": [1], "data": [1]},
    {"kind": "array", "dtype": "float", "shape": [-1], "data": []},
    {"kind": "array", "dtype": "float", "shape": [1], "data": ["NaN"]},  # only nan, inf, -inf are spelled
    {"kind": "array", "dtype": "float", "shape": [1], "data": [[1.0]]},
    {"kind": "array", "dtype": "complex", "shape": [1], "data": [1.0]},
    {"kind": "array", "dtype": "float", "shape": [2_000_000], "data": [0.0] * 2_000_000},
    {"kind": "tuple", "items": "ab"}, {"kind": "str", "text": 3},
    {"kind": "list", "items": [{"kind": "none"}] * (WIRE["max_items"] + 1)},
]


@pytest.mark.parametrize("node", MALFORMED_VALUES, ids=range(len(MALFORMED_VALUES)))
def test_malformed_values_make_an_invalid_outcome_never_an_exception(node):
    with pytest.raises(Malformed):
        parse_value(node)
    outcome = parse_outcome("c#0", {"status": "ok", "value": node})
    assert outcome.status == "invalid" and outcome.reason == {"code": "malformed-value"}


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


@pytest.mark.parametrize("value", VALUES + [torch.tensor([1.5, 2.0], dtype=torch.float16), np.float32(0.5), 7, True,
                                            np.arange(3, dtype=np.uint8), [0.1, (2, None)], torch.tensor(3)],
                         ids=lambda v: type(v).__name__)
def test_the_graders_own_values_are_read_as_the_wire_would_read_them(value):
    """to_value (the reference's results, the grader's arguments) is parse_value(encode_value(...)), only faster."""
    assert same(to_value(value), parse_value(encode_value(value)))


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
