"""The reference solution of the kit's example assignment, "Masked attention weights" (tests/kit_assignment).

Kept apart from the assignment's folder, as the shipped assignments keep theirs under reference/: the checks
import it by file (grader.kit.load_reference) and the sandbox hides its folder (the assignment's hidden_paths).
"""

import math

import torch

MASK_VALUE = -1e6  # the book's: exp(-1e6 - max) is exactly 0 in float64


def masked_softmax(X, valid_lens, mask_value=MASK_VALUE):
    """Softmax over the last axis of X (batch, queries, keys), the keys at or past each sequence's length masked."""
    X = torch.as_tensor(X, dtype=torch.float64)
    inside = torch.arange(X.shape[-1]) < torch.as_tensor(valid_lens).reshape(-1, 1, 1)
    return torch.softmax(torch.where(inside, X, torch.full_like(X, mask_value)), dim=-1)


def attention_weights(queries, keys, valid_lens, mask_value=MASK_VALUE):
    """Scaled dot-product attention weights: the masked softmax of Q K^T / sqrt(d)."""
    q, k = torch.as_tensor(queries, dtype=torch.float64), torch.as_tensor(keys, dtype=torch.float64)
    return masked_softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), valid_lens, mask_value)
