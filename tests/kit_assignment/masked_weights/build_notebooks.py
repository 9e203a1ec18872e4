"""The notebooks of "Masked attention weights": python -m grader.kit notebooks tests/kit_assignment/masked_weights"""

from grader.kit import PLACEHOLDER, AssignmentNotebooks, NotebookText

INTRO = """\
# Masked attention weights

Two functions of Section 11.3 of *Dive into Deep Learning*. The grader calls them on inputs it draws itself:
scores, queries and keys are `torch.float64` tensors, valid lengths `torch.int64` tensors of shape `(batch,)`.
"""
SETUP = "import math\nimport torch\n"
EX1 = """\
## Exercise 1: masked softmax

`masked_softmax(X, valid_lens)`: `X` has shape `(batch, queries, keys)`; the keys at positions $j \\ge \\ell_b$ of
sequence $b$ get the score $-10^6$, then the softmax runs over the last axis.
"""
EX2 = """\
## Exercise 2: attention weights

`attention_weights(queries, keys, valid_lens)`: the masked softmax of $\\mathbf{Q}\\mathbf{K}^\\top / \\sqrt{d}$.
"""
STUBS = {"ex1": "def masked_softmax(X, valid_lens):\n    raise NotImplementedError\n",
         "ex2": "def attention_weights(queries, keys, valid_lens):\n    raise NotImplementedError\n"}
SOLUTION = {"ex1": '''\
def masked_softmax(X, valid_lens):
    inside = torch.arange(X.shape[-1]) < valid_lens.reshape(-1, 1, 1)
    return torch.softmax(X.masked_fill(~inside, -1e6), dim=-1)
''', "ex2": '''\
def attention_weights(queries, keys, valid_lens):
    return masked_softmax(queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1]), valid_lens)
'''}
PROMPTS = {"answer:ex1": "**Your answer (Exercise 1):** why -1e6 and not 0 for the masked scores?"}
ANSWERS = {"answer:ex1": "exp(0) = 1 would still weigh the padding; exp(-1e6) is 0 after the softmax."}

NOTEBOOKS = AssignmentNotebooks(
    NotebookText("masked_weights", INTRO, SETUP, (("ex1", EX1, ("answer:ex1",)), ("ex2", EX2, ())), PROMPTS,
                 PLACEHOLDER), STUBS, SOLUTION, ANSWERS)
