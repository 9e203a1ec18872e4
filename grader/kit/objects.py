"""Helpers an assignment's checks build their inputs and objects with: the pieces every assignment wrote again.

A check draws everything from the generator the engine passes it (grader.assignment.rng_for), so these take
that generator and nothing else random. The students' objects themselves are described by
``grader.model.Construct`` (built and parametrised in the kernel by grader.probe_runtime); what is here draws
their parameters the way the book's layers initialise them.
"""

from __future__ import annotations

import math

import numpy as np


def draw_seed(rng: np.random.Generator) -> int:
    """A seed for a data generator of the reference (its data sets are made from a seed, so a call's context can
    name them and the reference cache can key on it)."""
    return int(rng.integers(0, 2**31 - 1))


def numpy_of(value) -> np.ndarray:
    """A tensor or array-like as a float64 NumPy array: what a Case's arguments are (they travel as JSON)."""
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return np.asarray(value, dtype=np.float64)


def linear_weight(rng: np.random.Generator, out_features: int, in_features: int) -> np.ndarray:
    """A weight of ``nn.Linear(in_features, out_features)``, drawn with the spread of its own initialisation
    (1/sqrt(fan-in)), so the scores a student's layer computes stay in the range the book's do."""
    return rng.normal(0, 1 / math.sqrt(in_features), (out_features, in_features))


def linear_params(rng: np.random.Generator, layers: dict[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """The ``params`` of a Construct whose layers are bias-free ``nn.Linear``s: name -> (out, in) gives
    ``name.weight``, by ``named_parameters()`` name."""
    return {f"{name}.weight": linear_weight(rng, out, inp) for name, (out, inp) in layers.items()}


def unit_scale(*args, **kwargs) -> float:
    """A check's ``scale`` for results that are weights in [0, 1] or weighted means of standard normal values:
    errors are measured against 1."""
    return 1.0
