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


def provided_list() -> tuple[str, ...]:
    """('d2l 1.0.3', 'torch 2.13.0', ...): the packages of PROVIDED that are installed, with their versions."""
    found = []
    for name in PROVIDED:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)


def provided_packages(grading: tuple[str, ...] | None = None) -> str:
    """'d2l 1.0.3, torch 2.13.0, ...': what the grading kernel provides. ``grading``: as a bundle recorded it at
    release (a student's self-check runs elsewhere); None: this environment, which grades."""
    return join_list(provided_list() if grading is None else grading)  # in a sentence: 、 in Chinese and Japanese


def install_command(module: str, grading: tuple[str, ...]) -> str | None:
    """How a student installs a module the grading kernel provides, at grading's version (d2l without its own old
    pins, as install.sh does); None when grading does not provide it."""
    for entry in grading:
        name, _space, version = entry.partition(" ")
        if name == module.split(".")[0]:
            return f"pip install --no-deps d2l=={version}" if name == "d2l" else f"pip install {name}=={version}"
    return None
