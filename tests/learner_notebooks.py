"""Notebooks written the way learners of the book write them, and the verdict a careful grader gives each.

They import the book's package and plot with it, keep a pip cell at the top, add a stabilising
epsilon to sigma^2, use the book's 1/2 in the squared loss, train the width by per-sample SGD,
compute in float32, or come from Colab with large SVG outputs. Each entry: the notebook, the
score a careful grader gives, and words the report must say before the first exercise.
"""

from __future__ import annotations

import base64

import nbformat

from assignments.attention_pooling.build_notebooks import DATA, SOLUTION

v4 = nbformat.v4

D2L_PLOTS = '''\
d2l.set_figsize((4, 2.5))
d2l.plot(x_val, [f(x_val), nw_regress(x_train, y_train, x_val, 0.5)], "x", "y", legend=["truth", "NW, sigma=0.5"])
d2l.show_heatmaps(gaussian_attention(x_val[:10, None], x_train[:12, None], 0.5)[None, None], xlabel="keys",
                  ylabel="queries")
'''

EPSILON = {  # the kernel "made safe" with sigma^2 + 1e-5, as in many learners' notebooks
    "ex1": '''\
EPS = 1e-5  # avoid dividing by zero


def kernel(queries, keys, sigma):
    return torch.exp(-((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1) / (2 * (sigma**2 + EPS)))


def parzen_density(queries, keys, sigma):
    return kernel(queries, keys, sigma).mean(1)


def parzen_class_score(queries, keys, labels, sigma):
    return (kernel(queries, keys, sigma) * labels).sum(1) / len(keys)


def nw_classify(queries, keys, labels, sigma):
    alpha = kernel(queries, keys, sigma)
    return alpha @ labels / alpha.sum(1)
''',
    "ex2": '''\
def nw_regress(x_train, y_train, x_query, sigma):
    alpha = torch.exp(-(x_query[:, None] - x_train[None, :]) ** 2 / (2 * (sigma**2 + EPS)))
    return alpha / alpha.sum(1, keepdim=True) @ y_train


def train_loss(x, y, sigma):
    return ((nw_regress(x, y, x, sigma) - y) ** 2).mean()


def loo_loss(x, y, sigma):
    alpha = torch.exp(-(x[:, None] - x[None, :]) ** 2 / (2 * (sigma**2 + EPS))) * (1 - torch.eye(len(x)))
    return ((alpha / alpha.sum(1, keepdim=True) @ y - y) ** 2).mean()
''' + SOLUTION["ex2"][SOLUTION["ex2"].index("def fit_width"):],
    "ex3": '''\
def gaussian_attention(queries, keys, sigma):
    return torch.softmax(-((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1) / (2 * (sigma**2 + EPS)), dim=1)


def dot_product_attention(queries, keys, sigma):
    return torch.softmax(queries @ keys.T / (sigma**2 + EPS), dim=1)
''',
    "ex4": "def squared_distances(queries, keys):\n    return ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)\n\n\n"
           + SOLUTION["ex4"],
}

FLOAT32 = {  # everything converted with .float(), as learners do after copying the book's float32 code
    "ex1": '''\
def kernel(queries, keys, sigma):
    q, k = torch.as_tensor(queries).float(), torch.as_tensor(keys).float()
    return torch.exp(-((q[:, None, :] - k[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))


def parzen_density(queries, keys, sigma):
    return kernel(queries, keys, sigma).mean(1)


def parzen_class_score(queries, keys, labels, sigma):
    return (kernel(queries, keys, sigma) * labels.float()).sum(1) / len(keys)


def nw_classify(queries, keys, labels, sigma):
    alpha = kernel(queries, keys, sigma)
    return alpha @ labels.float() / alpha.sum(1)
''',
    "ex2": '''\
def nw_regress(x_train, y_train, x_query, sigma):
    x_train, y_train, x_query = x_train.float(), y_train.float(), x_query.float()
    return torch.softmax(-(x_query[:, None] - x_train[None, :]) ** 2 / (2 * sigma**2), dim=1) @ y_train


def train_loss(x, y, sigma):
    return ((nw_regress(x, y, x, sigma) - y.float()) ** 2).mean()


def loo_loss(x, y, sigma):
    x, y = x.float(), y.float()
    logits = -(x[:, None] - x[None, :]) ** 2 / (2 * sigma**2)
    logits = logits.masked_fill(torch.eye(len(x), dtype=torch.bool), float("-inf"))
    return ((torch.softmax(logits, dim=1) @ y - y) ** 2).mean()


def fit_width(x, y, leave_one_out, sigma0=1.0):
    log_sigma = torch.tensor(math.log(sigma0), requires_grad=True)  # float32, like the book
    optimizer = torch.optim.Adam([log_sigma], lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        (loo_loss if leave_one_out else train_loss)(x, y, log_sigma.exp()).backward()
        optimizer.step()
    return log_sigma.exp().item()
''',
    "ex3": '''\
def gaussian_attention(queries, keys, sigma):
    q, k = queries.float(), keys.float()
    return torch.softmax(-((q[:, None, :] - k[None, :, :]) ** 2).sum(-1) / (2 * sigma**2), dim=1)


def dot_product_attention(queries, keys, sigma):
    return torch.softmax(queries.float() @ keys.float().T / sigma**2, dim=1)
''',
    "ex4": "def squared_distances(queries, keys):\n    queries, keys = queries.float(), keys.float()\n"
           "    return ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)\n\n\n"
           + SOLUTION["ex4"].replace("return ((weights @ y - y) ** 2).mean().item()",
                                     "return ((weights @ y.float() - y.float()) ** 2).mean().item()"),
}

PER_SAMPLE_SGD = dict(SOLUTION, ex2=SOLUTION["ex2"][:SOLUTION["ex2"].index("def fit_width")] + '''\
def fit_width(x, y, leave_one_out, sigma0=1.0):
    """Stochastic gradient descent, one training point per step, on log sigma."""
    log_sigma = torch.tensor(math.log(sigma0), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([log_sigma], lr=0.1)
    order = torch.Generator().manual_seed(0)
    n = len(x)
    for epoch in range(40):
        for i in torch.randperm(n, generator=order).tolist():
            optimizer.zero_grad()
            logits = -(x[i] - x) ** 2 / (2 * log_sigma.exp() ** 2)
            if leave_one_out:
                logits = logits.masked_fill(torch.arange(n) == i, float("-inf"))
            ((torch.softmax(logits, dim=0) @ y - y[i]) ** 2).backward()
            optimizer.step()
    return log_sigma.exp().item()
''')

HALF_LOSS = dict(SOLUTION, ex2=SOLUTION["ex2"]
                 .replace("return ((nw_regress(x, y, x, sigma) - y) ** 2).mean()",
                          "return ((nw_regress(x, y, x, sigma) - y) ** 2 / 2).mean()  # d2l.squared_loss")
                 .replace("return ((torch.softmax(logits, dim=1) @ y - y) ** 2).mean()",
                          "return ((torch.softmax(logits, dim=1) @ y - y) ** 2 / 2).mean()"))

MISSING_PACKAGE = dict(SOLUTION, ex1=SOLUTION["ex1"].replace(
    "    return torch.exp(-squared_distances(queries, keys) / (2 * sigma**2)).mean(dim=1)",
    "    return d2l.gaussian_density(queries, keys, sigma)  # from the course's helper package"))


def svg_output(kilobytes: int) -> dict:
    """A display output as Colab saves a matplotlib figure: an SVG of about this size."""
    path = " ".join(f"L{i % 400} {(i * 7) % 300}" for i in range(kilobytes * 60))
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><path d="M0 0 {path}"/></svg>'
    return v4.new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<Figure size 400x300>"})


def learner_notebook(functions: dict[str, str], head: list[str], after: dict[str, list[str]] | None = None,
                     colab: bool = False):
    """The functions of each exercise in a cell of its own, after the learner's own first cells."""
    cells = [v4.new_code_cell(source) for source in head] + [v4.new_code_cell(DATA)]
    for ex in ("ex1", "ex2", "ex3", "ex4"):
        cells.append(v4.new_code_cell(functions[ex]))
        cells += [v4.new_code_cell(source) for source in (after or {}).get(ex, [])]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if colab:
        nb.metadata["colab"] = {"provenance": [], "name": "attention_pooling.ipynb"}
        nb.metadata["accelerator"] = "GPU"
        for cell in cells:
            cell.metadata["id"] = base64.b32encode(cell.source[:10].encode()).decode()[:12]
            if "d2l.plot" in cell.source:
                cell.outputs = [svg_output(1500), svg_output(1500)]
                cell.execution_count = 7
    return nb


PIP = "!pip install d2l==1.0.3"
COLAB_PIP = "import sys\nif 'google.colab' in sys.modules:\n    !pip install -q d2l==1.0.3\n%matplotlib inline"
D2L_IMPORT = "from d2l import torch as d2l\nimport math\nimport numpy as np\nimport torch\nfrom torch import nn"

# name -> (notebook, score, {words the report says before the first exercise})
LEARNERS = {
    "learner_colab_d2l": (learner_notebook(SOLUTION, [COLAB_PIP, D2L_IMPORT], {"ex3": [D2L_PLOTS]}, colab=True),
                          26, {"not run", "!pip install -q d2l==1.0.3", "d2l 1.0.3"}),
    "learner_epsilon": (learner_notebook(EPSILON, [PIP, D2L_IMPORT], {"ex3": [D2L_PLOTS]}), 26, {"not run"}),
    "learner_float32": (learner_notebook(FLOAT32, [D2L_IMPORT]), 26, set()),
    "learner_sgd": (learner_notebook(PER_SAMPLE_SGD, [D2L_IMPORT]), 26, set()),
    "learner_half_loss": (learner_notebook(HALF_LOSS, [PIP, D2L_IMPORT]), 26 - 0.25 * (1 + 1.5 + 1),
                          {"(y_hat - y)^2 / 2"}),
    "learner_missing_package": (learner_notebook(MISSING_PACKAGE, ["!pip install d2lzh_pytorch",
                                                                   "import d2lzh_pytorch as d2l\nimport math\n"
                                                                   "import numpy as np\nimport torch"]),
                                26 - 2, {"could not import d2lzh_pytorch"}),
}
