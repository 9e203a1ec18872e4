"""ValueCheck's judging without a kernel: structured results (tuples), integer arguments, misconception
matching (a variant that cannot run on an input only goes unrecognised there), partial credit, and the
messages, on outcomes made by the kernel's own code in-process."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import Case, Misconception, ValueCheck
from grader.model import ProbeCall
from grader.probe_runtime import call_and_encode
from grader.wire import call_json, parse_outcome


def masked_mean(x, valid_lens):
    """(means, weights): the mean of each row's first valid_lens entries, and the weights used."""
    x = torch.as_tensor(x)
    mask = torch.arange(x.shape[1])[None, :] < torch.as_tensor(valid_lens)[:, None]
    weights = mask / mask.sum(1, keepdim=True)
    return (weights * x).sum(1), weights


def mean_of_all(x, valid_lens):  # the mask forgotten
    x = torch.as_tensor(x)
    weights = torch.full_like(x, 1 / x.shape[1])
    return (weights * x).sum(1), weights


def fails_on_long_rows(x, valid_lens):  # a variant that can only run on some inputs
    if torch.as_tensor(x).shape[1] > 3:
        raise IndexError("only short rows")
    return mean_of_all(x, valid_lens)


def cases(rng):
    return [Case(f"{n} columns", (rng.normal(size=(2, n)), np.array([1, n]))) for n in (3, 5, 6)]


CHECK = ValueCheck(id="t.masked_mean", exercise="t", title="masked mean", points=2, function="masked_mean",
                   cases=cases, expected=masked_mean, rtol=1e-6, atol=1e-12,
                   misconceptions=(Misconception("short rows only", "a variant that runs on short rows only",
                                                 fails_on_long_rows),
                                   Misconception("mask forgotten", "you averaged every entry", mean_of_all)))


def judged(student):
    calls = CHECK.calls(np.random.default_rng(0))
    outcomes = [parse_outcome(str(i), call_and_encode(student, call_json(
        ProbeCall(str(i), c.function, c.args, kwargs=c.kwargs)))) for i, c in enumerate(calls)]
    return CHECK.judge(calls, outcomes)


def test_a_right_structured_answer_passes_in_torch_and_in_numpy():
    def numpy_way(x, valid_lens):
        mask = np.arange(x.shape[1])[None, :] < valid_lens[:, None]
        weights = mask / mask.sum(1, keepdims=True)
        return [(weights * x).sum(1).tolist(), weights]  # a list where a tuple is expected, lists for arrays

    assert judged(masked_mean).fraction == 1.0
    assert judged(numpy_way).fraction == 1.0


def test_a_misconception_is_named_though_another_variant_cannot_run_on_every_input():
    verdict = judged(mean_of_all)
    assert verdict.fraction == 0.0 and verdict.diagnosis == "you averaged every entry"
    assert "result[0]" in verdict.message  # the first item of the tuple is where it first went wrong


def test_a_partly_right_answer_keeps_the_credit_of_its_right_inputs():
    def right_on_short_rows(x, valid_lens):
        return masked_mean(x, valid_lens) if x.shape[1] <= 3 else mean_of_all(x, valid_lens)

    verdict = judged(right_on_short_rows)
    assert verdict.fraction == 1 / 3 and verdict.diagnosis == "you averaged every entry"


def test_half_an_answer_is_told_what_was_expected():
    verdict = judged(lambda x, valid_lens: masked_mean(x, valid_lens)[0])  # the weights not returned
    assert verdict.fraction == 0.0 and "a tuple of 2 items" in verdict.message
