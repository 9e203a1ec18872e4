"""Student submissions the engine tests grade: right ones written three ways, and known mistakes.

Each mistaken notebook has at most one mistake per exercise, so that a test can hold every
mistake to its own exercise: that exercise loses points with the mistake named, the
others keep full marks.
"""

from assignments.attention_pooling.build_notebooks import SOLUTION, STUBS, build_notebook
from grader.notebooks import with_changes

NUMPY_WAY = {
    "ex1": '''\
import numpy as np


def _sq(queries, keys):
    q, k = np.asarray(queries), np.asarray(keys)
    return ((q[:, None, :] - k[None, :, :]) ** 2).sum(-1)


def parzen_density(queries, keys, sigma):
    return np.exp(-_sq(queries, keys) / (2 * float(sigma) ** 2)).mean(axis=1)


def parzen_class_score(queries, keys, labels, sigma):
    a = np.exp(-_sq(queries, keys) / (2 * float(sigma) ** 2))
    return a @ np.asarray(labels) / a.shape[1]


def nw_classify(queries, keys, labels, sigma):
    a = np.exp(-_sq(queries, keys) / (2 * float(sigma) ** 2))
    return (a @ np.asarray(labels)) / a.sum(axis=1)
''',
    "ex2": SOLUTION["ex2"],  # must be differentiable in sigma: torch it is
    "ex3": '''\
def _softmax_rows(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def gaussian_attention(queries, keys, sigma):
    return _softmax_rows(-_sq(queries, keys) / (2 * float(sigma) ** 2))


def dot_product_attention(queries, keys, sigma):
    return _softmax_rows(np.asarray(queries) @ np.asarray(keys).T / float(sigma) ** 2)
''',
    "ex4": '''\
def loo_optimal_width(x, y):
    x, y = np.asarray(x), np.asarray(y)
    d2 = _sq(x, x)
    np.fill_diagonal(d2, np.inf)

    def loss(s):
        w = _softmax_rows(-d2 / (2 * s**2))
        return float(((w @ y - y) ** 2).mean())

    grid = np.geomspace(1e-3, 30, 200)
    best = grid[int(np.argmin([loss(s) for s in grid]))]
    fine = np.geomspace(best / 1.06, best * 1.06, 60)
    return float(fine[int(np.argmin([loss(s) for s in fine]))])


def predicted_exponent(d):
    return -1.0 / (d + 4.0)
''',
}

LOOPS_WAY = {
    "ex1": '''\
def _alpha(q, k, sigma):
    return math.exp(-sum((float(a) - float(b)) ** 2 for a, b in zip(q, k)) / (2 * float(sigma) ** 2))


def parzen_density(queries, keys, sigma):
    return [sum(_alpha(q, k, sigma) for k in keys) / len(keys) for q in queries]


def parzen_class_score(queries, keys, labels, sigma):
    out = []
    for q in queries:
        plus = sum(_alpha(q, k, sigma) for k, y in zip(keys, labels) if y > 0)
        minus = sum(_alpha(q, k, sigma) for k, y in zip(keys, labels) if y < 0)
        out.append((plus - minus) / len(keys))
    return out


def nw_classify(queries, keys, labels, sigma):
    out = []
    for q in queries:
        weights = [_alpha(q, k, sigma) for k in keys]
        out.append(sum(w * float(y) for w, y in zip(weights, labels)) / sum(weights))
    return out
''',
    "ex2": '''\
def nw_regress(x_train, y_train, x_query, sigma):
    rows = []
    for q in x_query:
        logits = -(q - x_train) ** 2 / (2 * sigma**2)
        rows.append(torch.softmax(logits, dim=0) @ y_train)
    return torch.stack(rows)


def train_loss(x, y, sigma):
    total = 0
    for i in range(len(x)):
        total = total + (nw_regress(x, y, x[i:i + 1], sigma)[0] - y[i]) ** 2
    return total / len(x)


def loo_loss(x, y, sigma):
    total = 0
    for i in range(len(x)):
        others = torch.cat([torch.arange(i), torch.arange(i + 1, len(x))])
        total = total + (nw_regress(x[others], y[others], x[i:i + 1], sigma)[0] - y[i]) ** 2
    return total / len(x)


def fit_width(x, y, leave_one_out, sigma0=1.0):
    log_sigma = torch.tensor(math.log(sigma0), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([log_sigma], lr=0.1)
    for _ in range(150):
        optimizer.zero_grad()
        (loo_loss if leave_one_out else train_loss)(x, y, log_sigma.exp()).backward()
        optimizer.step()
    return float(log_sigma.exp())
''',
    "ex3": '''\
def _softmax(values):
    top = max(values)
    e = [math.exp(v - top) for v in values]
    return [v / sum(e) for v in e]


def gaussian_attention(queries, keys, sigma):
    return [_softmax([-sum((float(a) - float(b)) ** 2 for a, b in zip(q, k)) / (2 * float(sigma) ** 2) for k in keys])
            for q in queries]


def dot_product_attention(queries, keys, sigma):
    return [_softmax([sum(float(a) * float(b) for a, b in zip(q, k)) / float(sigma) ** 2 for k in keys])
            for q in queries]
''',
    "ex4": '''\
def loo_optimal_width(x, y):
    x, y = np.asarray(x), np.asarray(y)
    n = len(x)
    d2 = np.array([[((x[i] - x[j]) ** 2).sum() if i != j else np.inf for j in range(n)] for i in range(n)])

    def loss(s):
        total = 0.0
        for i in range(n):
            logits = -d2[i] / (2 * s * s)
            w = np.exp(logits - logits.max())
            total += (w @ y / w.sum() - y[i]) ** 2
        return total / n

    lo, hi = math.log(1e-3), math.log(30.0)
    for _ in range(3):  # three rounds of a coarse grid, zooming in
        grid = np.linspace(lo, hi, 12)
        best = int(np.argmin([loss(math.exp(g)) for g in grid]))
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, 11)]
    return math.exp((lo + hi) / 2)


def predicted_exponent(d):
    return -1 / (d + 4)
''',
}

# name -> (functions, {check id: words its diagnosis must contain})
MISTAKES = {
    "mistakes_a": (with_changes(SOLUTION, {
        "ex1": ("(alpha * (labels == -1)).sum(1) / n", "(alpha * (labels == 0)).sum(1) / n"),
        "ex2": ('float("-inf"))', "0.0)"),
        "ex3": ("return torch.softmax(-squared_distances(queries, keys) / (2 * sigma**2), dim=1)",
                "return torch.softmax(-squared_distances(queries, keys) / (2 * sigma**2), dim=0)"),
        "ex4": ("return -1 / (d + 4)", "return -1 / (d + 2)"),
    }), {"ex1.parzen_class_score": "0/1", "ex2.loo_loss": "still includes each point",
         "ex3.gaussian_attention": "over the queries", "ex4.predicted_exponent": "-1/(d+2)"}),
    "mistakes_b": (with_changes(SOLUTION, {
        "ex1": ("return torch.exp(-squared_distances(queries, keys) / (2 * sigma**2)).mean(dim=1)",
                "d = keys.shape[1]\n    return torch.exp(-squared_distances(queries, keys) / (2 * sigma**2)).mean(dim=1)"
                " / (math.sqrt(2 * math.pi) * sigma) ** d"),
        "ex2": ("logits = -(x_query[:, None] - x_train[None, :]) ** 2 / (2 * sigma**2)",
                "logits = -(x_query[:, None] - x_train[None, :]) ** 2 / (2 * sigma)"),
        "ex3": ("queries @ keys.T / sigma**2", "queries @ keys.T"),
        "ex4": ("return -1 / (d + 4)", "return -0.2"),
    }), {"ex1.parzen_density": "normalised Gaussian density", "ex2.nw_regress": "sigma^2",
         "ex3.dot_product_attention": "temperature", "ex4.predicted_exponent": "does not depend on the dimension"}),
    "mistakes_c": (with_changes(SOLUTION, {
        "ex1": ("torch.exp(-squared_distances(queries, keys) / (2 * sigma**2)).mean(dim=1)",
                "torch.exp(-squared_distances(queries, keys) / (2 * sigma**2)).sum(dim=1)"),
        "ex2": ("loss_fn = loo_loss if leave_one_out else train_loss", "loss_fn = train_loss"),
        "ex3": ("return torch.softmax(-squared_distances(queries, keys) / (2 * sigma**2), dim=1)",
                "e = torch.exp(-squared_distances(queries, keys) / (2 * sigma**2))\n    return e / e.sum(1, keepdim=True)"),
        "ex4": ('    d2.fill_diagonal_(float("inf"))\n', ""),
    }), {"ex1.parzen_density": "1/n is missing", "ex2.fit_width": "fit_width ignores its leave_one_out flag",
         "ex3.gaussian_attention_stable": "0/0", "ex4.shrinking_study": "self-included"}),
    "mistakes_d": (with_changes(SOLUTION, {
        "ex1": ("return (alpha * (labels == 1)).sum(1) / n - (alpha * (labels == -1)).sum(1) / n",
                "return (alpha * (labels == 1)).sum(1) / (labels == 1).sum() - "
                "(alpha * (labels == -1)).sum(1) / (labels == -1).sum()"),
        "ex2": ("return ((nw_regress(x, y, x, sigma) - y) ** 2).mean()", "return ((nw_regress(x, y, x, sigma) - y) ** 2).sum()"),
        "ex3": ("return torch.softmax(queries @ keys.T / sigma**2, dim=1)",
                "return gaussian_attention(queries, keys, sigma)"),
    }), {"ex1.parzen_class_score": "class-conditional", "ex2.train_loss": "summed",
         "ex3.dot_product_attention": "Gaussian weights"}),
    "mistakes_e": (with_changes(SOLUTION, {
        "ex1": ("weights = torch.softmax(-squared_distances(queries, keys) / (2 * sigma**2), dim=1)",
                "weights = torch.softmax(-squared_distances(queries, keys) / (2 * sigma**2), dim=0)"),
        "ex2": ("def loo_loss(x, y, sigma):\n", "def loo_loss(x, y, sigma):\n    sigma = sigma.item() if "
                "torch.is_tensor(sigma) else sigma\n"),
    }), {"ex1.nw_classify": "over the queries", "ex2.loo_gradient": "No gradient reaches sigma"}),
    "mistakes_f": (with_changes(SOLUTION, {
        "ex2": ("return log_sigma.exp().item()", "return log_sigma.item()"),
    }), {"ex2.fit_width": "log sigma"}),
}


def notebooks() -> dict:
    """Every notebook the engine tests grade, by submission name."""
    books = {
        "right_vectorised": build_notebook(SOLUTION),
        "right_numpy": build_notebook(NUMPY_WAY),
        "right_loops": build_notebook(LOOPS_WAY),
        "template": build_notebook(STUBS),
    }
    books.update({name: build_notebook(functions) for name, (functions, _) in MISTAKES.items()})
    return books
