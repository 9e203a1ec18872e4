"""What the grading kernel provides to a student's notebook, and the one shim it needs for that.

Learners of the book write ``from d2l import torch as d2l``, usually after a
``!pip install d2l==...`` cell. The graded kernel has no network, so shell and pip cells are
not run (``grader.load``); the environment provides the book's package instead: install.sh
installs ``d2l`` without its own (years-old) pins, beside what its torch module imports
(the ``kernel`` extra of pyproject.toml: torchvision, pandas, scipy, requests).

The torchvision shim the kernel needs is ``grader/torchvision_shim.py``: install.sh copies it
into site-packages as a module of its own, because the sandboxed kernel sees site-packages
but never the ``grader`` package.
"""

from __future__ import annotations

from importlib import metadata

from .i18n import join_list

# What a report names when it tells a student what the grading kernel already has.
PROVIDED = ("d2l", "torch", "numpy", "matplotlib", "pandas", "scipy", "torchvision")


def provided_packages() -> str:
    """'d2l 1.0.3, torch 2.13.0, ...': the packages of PROVIDED that are installed, with their versions."""
    found = []
    for name in PROVIDED:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return join_list(found)  # inside a sentence of the run's language: 、 in Chinese and Japanese
