"""How the grader builds the students' attention classes: the contract's constructor and the book's.

The textbook's editions build the classes differently, and a learner pasting either is right: the older edition
(and this contract) as ``AdditiveAttention(key_size, query_size, num_hiddens, dropout)``, the current one as
``AdditiveAttention(num_hiddens, dropout)`` with lazy layers (the grader's first call sizes them before it sets
the parameters). Both editions' ``forward`` returns the output alone and keeps the weights in
``self.attention_weights``; the contract's returns the pair. The checks and the figures build through here, so
a class is built the same way wherever it is called.
"""

from __future__ import annotations

from grader.model import Construct, ConstructorCall

DROPOUT = 0.2  # in every constructor call: the grader probes in eval mode, where dropout does nothing
KEPT = ("attention_weights",)  # the book's forward keeps its weights here and returns the output alone


def dot_product(dropout: float = DROPOUT) -> Construct:
    return Construct(init_args=(dropout,), kept=KEPT)


def general(query_size: int, key_size: int, params: dict, dropout: float = DROPOUT) -> Construct:
    return Construct(init_args=(query_size, key_size, dropout), params=params, kept=KEPT)


def additive(key_size: int, query_size: int, hiddens: int, params: dict, dropout: float = DROPOUT) -> Construct:
    return Construct(init_args=(key_size, query_size, hiddens, dropout), params=params, kept=KEPT,
                     alternatives=(ConstructorCall((hiddens, dropout)),))
