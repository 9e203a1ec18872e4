"""Notebooks of the second assignment (attention_scoring) the tests grade: the book-style solution, a second
correct solution in plain NumPy, and one notebook per catalogued misconception.

Each misconception notebook is the book-style solution with one change, and names the check whose diagnosis
must name it (and words that diagnosis must contain).
"""

from assignments.attention_scoring.build_notebooks import SOLUTION, STUBS, build_notebook
from grader.notebooks import with_changes

NUMPY_WAY = {
    "ex1": '''\
import numpy as np


def as_numpy(a):
    """A float64 (or int64) NumPy array from a tensor or an array."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def softmax(X, axis=-1):
    X = X - X.max(axis=axis, keepdims=True)
    e = np.exp(X)
    return e / e.sum(axis=axis, keepdims=True)


def masked_softmax(X, valid_lens):
    X = np.array(as_numpy(X), dtype=np.float64)
    if valid_lens is not None:
        lengths = as_numpy(valid_lens).astype(np.int64)
        if lengths.ndim == 1:
            lengths = np.repeat(lengths[:, None], X.shape[1], axis=1)
        positions = np.arange(X.shape[-1])
        X = np.where(positions[None, None, :] < lengths[:, :, None], X, -1e6)
    return softmax(X, axis=-1)
''',
    "ex2": '''\
class Linear:
    """x W^T without bias; weight of shape (out_features, in_features), as nn.Linear's."""

    def __init__(self, in_features, out_features):
        self.weight = np.random.normal(0, 1 / np.sqrt(in_features), (out_features, in_features))

    def __call__(self, x):
        return as_numpy(x) @ as_numpy(self.weight).T


class DotProductAttention:
    def __init__(self, dropout):
        self.dropout = dropout  # inactive in evaluation, which is how the grader calls it

    def eval(self):
        return self

    def __call__(self, queries, keys, values, valid_lens=None):
        queries, keys, values = as_numpy(queries), as_numpy(keys), as_numpy(values)
        scores = queries @ keys.transpose(0, 2, 1) / np.sqrt(queries.shape[-1])
        weights = masked_softmax(scores, valid_lens)
        return weights @ values, weights


class GeneralAttention:
    def __init__(self, query_size, key_size, dropout):
        self.W_a = Linear(key_size, query_size)
        self.dropout = dropout

    def eval(self):
        return self

    def __call__(self, queries, keys, values, valid_lens=None):
        queries, values = as_numpy(queries), as_numpy(values)
        scores = queries @ self.W_a(keys).transpose(0, 2, 1)
        weights = masked_softmax(scores, valid_lens)
        return weights @ values, weights
''',
    "ex3": '''\
class AdditiveAttention:
    def __init__(self, key_size, query_size, num_hiddens, dropout):
        self.W_k = Linear(key_size, num_hiddens)
        self.W_q = Linear(query_size, num_hiddens)
        self.w_v = Linear(num_hiddens, 1)
        self.dropout = dropout

    def eval(self):
        return self

    def __call__(self, queries, keys, values, valid_lens=None):
        features = np.tanh(self.W_q(queries)[:, :, None, :] + self.W_k(keys)[:, None, :, :])
        scores = self.w_v(features)[..., 0]
        weights = masked_softmax(scores, valid_lens)
        return weights @ as_numpy(values), weights
''',
    "ex4": '''\
def local_monotonic_weights(scores, D):
    scores = as_numpy(scores)
    batch, T, S = scores.shape
    inside = np.abs(np.arange(S)[None, :] - np.arange(T)[:, None]) <= D
    return softmax(np.where(inside[None], scores, -1e6), axis=-1)


def predictive_position(h, W_p, v_p, S):
    h, W_p, v_p = as_numpy(h), as_numpy(W_p), as_numpy(v_p)
    return S / (1 + np.exp(-(np.tanh(h @ W_p.T) @ v_p)))


def local_predictive_weights(scores, p, D):
    scores, p = as_numpy(scores), as_numpy(p)
    distance = np.arange(scores.shape[-1])[None, None, :] - p[:, :, None]
    align = softmax(np.where(np.abs(distance) <= D, scores, -1e6), axis=-1)
    return align * np.exp(-distance**2 / (2 * (D / 2) ** 2))
''',
    "ex5": '''\
def nw_parametric_pool(queries, keys, values, w):
    diffs = as_numpy(queries)[:, None] - as_numpy(keys)[None, :]
    weights = softmax(-((diffs * float(w)) ** 2) / 2, axis=1)
    return weights @ as_numpy(values), weights


def train_parametric_nw(x_train, y_train, epochs, lr):
    """Gradient descent with the gradient worked out by hand: no autograd needed."""
    x, y = as_numpy(x_train), as_numpy(y_train)
    d2 = (x[:, None] - x[None, :]) ** 2
    np.fill_diagonal(d2, np.inf)  # each point left out of its own keys
    w, losses = 1.0, []
    for epoch in range(epochs):
        a = softmax(-(w**2) * d2 / 2, axis=1)  # a_ij, with a_ii = 0
        y_hat = a @ y
        losses.append(float(((y_hat - y) ** 2 / 2).mean()))
        g = -w * np.where(np.isfinite(d2), d2, 0.0)  # d logit_ij / dw
        dy_hat = (a * g) @ y - (a * g).sum(1) * y_hat  # d y_hat_i / dw
        w -= lr * float(((y_hat - y) * dy_hat).mean())
    return w, losses
''',
}

# The book's own classes, as a learner pastes them: both editions' forward returns the output alone and keeps the
# weights in self.attention_weights; the current edition builds AdditiveAttention(num_hiddens, dropout) with lazy
# layers, the older one (d2l-zh) AdditiveAttention(key_size, query_size, num_hiddens, dropout). Correct, both.
CURRENT_EDITION = with_changes(SOLUTION, {
    "ex2": ("return torch.bmm(self.dropout(self.attention_weights), values), self.attention_weights\n\n\nclass",
            "return torch.bmm(self.dropout(self.attention_weights), values)\n\n\nclass"),
    "ex3": ("""    def __init__(self, key_size, query_size, num_hiddens, dropout):
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)""", """    def __init__(self, num_hiddens, dropout, **kwargs):
        super(AdditiveAttention, self).__init__(**kwargs)
        self.W_k = nn.LazyLinear(num_hiddens, bias=False)
        self.W_q = nn.LazyLinear(num_hiddens, bias=False)
        self.w_v = nn.LazyLinear(1, bias=False)"""),
})
CURRENT_EDITION["ex3"] = CURRENT_EDITION["ex3"].replace(
    "return torch.bmm(self.dropout(self.attention_weights), values), self.attention_weights",
    "return torch.bmm(self.dropout(self.attention_weights), values)")
OLDER_EDITION = with_changes(SOLUTION, {
    "ex3": ("return torch.bmm(self.dropout(self.attention_weights), values), self.attention_weights",
            "return torch.bmm(self.dropout(self.attention_weights), values)"),
})
OLDER_EDITION["ex2"] = CURRENT_EDITION["ex2"]
EDITIONS = {"current_edition": CURRENT_EDITION, "older_edition": OLDER_EDITION}

# name -> (functions, check id whose diagnosis names the mistake, words the diagnosis contains)
MISCONCEPTIONS = {
    "no_scaling": (with_changes(SOLUTION, {
        "ex2": ("scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)",
                "scores = torch.bmm(queries, keys.transpose(1, 2))"),
    }), "ex2.dot_product_attention", "not scaled"),
    "masked_with_zero": (with_changes(SOLUTION, {
        "ex1": ("value=-1e6)", "value=0)"),
    }), "ex1.masked_softmax", "instead of a large negative number"),
    "softmax_wrong_axis": (with_changes(SOLUTION, {
        "ex1": ("return nn.functional.softmax(X.reshape(shape), dim=-1)",
                "return nn.functional.softmax(X.reshape(shape), dim=1)"),
    }), "ex1.masked_softmax", "over the queries"),
    "additive_projections_swapped": (with_changes(SOLUTION, {
        "ex3": ("queries, keys = self.W_q(queries), self.W_k(keys)", "queries, keys = self.W_k(queries), self.W_q(keys)"),
    }), "ex3.additive_attention", "W_q is applied to the keys"),
    "general_k_W_q": (with_changes(SOLUTION, {
        "ex2": ("scores = torch.bmm(queries, self.W_a(keys).transpose(1, 2))",
                "scores = torch.bmm(self.W_a(queries), keys.transpose(1, 2))"),
    }), "ex2.general_attention", "k^T W_a q"),
    "gaussian_width_D": (with_changes(SOLUTION, {
        "ex4": ("sigma = D / 2", "sigma = D"),
    }), "ex4.local_predictive", "Gaussian has width D"),
    "position_rounded": (with_changes(SOLUTION, {
        "ex4": ("return S * torch.sigmoid(torch.tanh(h @ W_p.T) @ v_p)",
                "return torch.round(S * torch.sigmoid(torch.tanh(h @ W_p.T) @ v_p))"),
    }), "ex4.predictive_position", "rounded"),
    "local_p_no_window_renormalised": (with_changes(SOLUTION, {  # two mistakes at once, each named
        "ex4": ("    align = torch.softmax(scores.masked_fill(distance.abs() > D, -1e6), dim=-1)\n    sigma = D / 2\n"
                "    return align * torch.exp(-distance**2 / (2 * sigma**2))",
                "    align = torch.softmax(scores, dim=-1)\n    sigma = D / 2\n"
                "    weights = align * torch.exp(-distance**2 / (2 * sigma**2))\n"
                "    return weights / weights.sum(-1, keepdim=True)"),
    }), "ex4.local_predictive", "several mistakes made together"),
    "w_ran_away": (with_changes(SOLUTION, {
        "ex5": ("loss = ((y_hat - y_train) ** 2 / 2).mean()", "loss = ((y_hat - y_train) ** 2 / 2).sum()"),
    }), "ex5.train_parametric_nw", "ran away"),
}


def scoring_notebooks() -> dict:
    """Every attention_scoring notebook the end-to-end tests grade, by submission name."""
    books = {"book_style": build_notebook(SOLUTION), "plain_numpy": build_notebook(NUMPY_WAY),
             "template": build_notebook(STUBS)}
    books.update({name: build_notebook(functions) for name, functions in EDITIONS.items()})
    books.update({name: build_notebook(functions) for name, (functions, _, _) in MISCONCEPTIONS.items()})
    return books
