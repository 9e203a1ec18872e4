"""Checks of "Masked attention weights", the authoring kit's example assignment (docs/authoring.md).

Written with the kit alone: the reference is imported by file, the checks are data, the texts are translated in
locale/, the notebooks are declared in build_notebooks.py. Valid lengths are drawn in 1..keys - 1, so the mask
always matters and no row is fully masked.
"""

from pathlib import Path

from grader.assignment import Assignment, Exercise
from grader.checks import Case, Misconception, ValueCheck
from grader.i18n import N_, Message
from grader.kit import load_reference, unit_scale

HERE = Path(__file__).resolve().parent
ref = load_reference(HERE.parent / "reference" / "masked_weights.py")

READ = "Section 11.3.2 (Convenience Functions: masked softmax operation)"
ZERO_MASK = Misconception(
    "masked with 0", "The masked scores were set to 0 instead of a large negative number: exp(0) = 1, so the padding "
    "still takes attention weight. Give them -1e6 before the softmax.",
    lambda *args: (ref.attention_weights if len(args) == 3 else ref.masked_softmax)(*args, mask_value=0.0))


def softmax_cases(rng):
    cases = []
    for batch, queries, keys in ((2, 3, 5), (3, 2, 6), (2, 4, 4)):
        X, lengths = rng.normal(0, 1.5, (batch, queries, keys)), rng.integers(1, keys, batch)
        cases.append(Case(Message(N_("scores of shape %(shape)s, valid lengths %(lengths)s"), shape=str(X.shape),
                                  lengths=str(lengths.tolist())), (X, lengths)))
    return cases


def attention_cases(rng):
    cases = []
    for batch, queries, keys, d in ((2, 3, 5, 4), (2, 2, 6, 8)):
        q, k = rng.normal(size=(batch, queries, d)), rng.normal(size=(batch, keys, d))
        cases.append(Case(Message(N_("d=%(d)s, %(queries)s queries, %(keys)s keys"), d=d, queries=queries, keys=keys),
                          (q, k, rng.integers(1, keys, batch))))
    return cases


ASSIGNMENT = Assignment(
    name="masked_weights", title="Masked attention weights", template="masked_weights.ipynb",
    contract=("masked_softmax", "attention_weights"),
    exercises=[Exercise("ex1", "Masked softmax", ("answer:ex1",), READ),
               Exercise("ex2", "Scaled dot-product attention weights", (), READ)],
    checks=[
        ValueCheck(id="ex1.masked_softmax", exercise="ex1", title="masked_softmax masks past the valid length",
                   points=2, function="masked_softmax", cases=softmax_cases, expected=ref.masked_softmax, rtol=1e-5,
                   scale=unit_scale, misconceptions=(ZERO_MASK,), read=READ,
                   hint="Give the positions j >= valid_len a score of -1e6, then softmax over the last axis."),
        ValueCheck(id="ex2.attention_weights", exercise="ex2", title="attention_weights: softmax(QK^T / sqrt(d))",
                   points=2, function="attention_weights", cases=attention_cases, expected=ref.attention_weights,
                   rtol=1e-5, scale=unit_scale, misconceptions=(ZERO_MASK,), read=READ,
                   hint="Divide Q K^T by the square root of the feature size d, then apply your masked_softmax."),
    ],
    preload=("numpy", "torch"),
    hidden_paths=(Path(ref.__file__).parent,),
)
