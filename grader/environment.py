"""What the grading kernel provides to a student's notebook, and the one shim it needs for that.

Learners of the book write ``from d2l import torch as d2l``, usually after a
``!pip install d2l==...`` cell. The graded kernel has no network, so shell and pip cells are
not run (``grader.load``); the environment provides the book's package instead: install.sh
installs ``d2l`` without its own (years-old) pins, beside what its torch module imports
(the ``kernel`` extra of pyproject.toml: torchvision, pandas, scipy, requests).

Imported at every interpreter start of the grading environment (install.sh writes a .pth
file that calls :func:`install_import_hooks`), so this module imports nothing heavy itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from importlib import metadata

# What a report names when it tells a student what the grading kernel already has.
PROVIDED = ("d2l", "torch", "numpy", "matplotlib", "pandas", "scipy", "torchvision")

# torchvision declares these two operators' fake (meta) kernels without first checking that
# its C++ library loaded (every other registration is guarded), so with its ops missing its
# import raises "operator torchvision::nms does not exist" (pytorch/vision#9077).
TORCHVISION_UNGUARDED_OPS = ("nms", "qnms")
NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


def provided_packages() -> str:
    """'d2l 1.0.3, torch 2.13.0, ...': the packages of PROVIDED that are installed, with their versions."""
    found = []
    for name in PROVIDED:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


_torchvision_fragment = None  # the torch.library fragment that declares the missing operators; kept alive


def declare_missing_torchvision_ops() -> None:
    """Declare torchvision's unguarded operators when its C++ library did not load.

    That happens with a CPU-only torch and the PyPI torchvision (a CUDA build). Declared
    without a kernel, the operators still raise torchvision's own "Couldn't load custom C++
    ops" when called; everything else in torchvision (datasets, transforms) works.
    """
    global _torchvision_fragment
    import torch
    import torchvision.extension

    if torchvision.extension._has_ops() or _torchvision_fragment is not None:
        return
    _torchvision_fragment = torch.library.Library("torchvision", "FRAGMENT")
    for name in TORCHVISION_UNGUARDED_OPS:
        _torchvision_fragment.define(name + NMS_SCHEMA)


class _DeclareOpsFirst(importlib.abc.Loader):
    """Runs ``declare_missing_torchvision_ops`` right before torchvision's meta registrations."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        declare_missing_torchvision_ops()
        self.loader.exec_module(module)


class _TorchvisionWithoutOps(importlib.abc.MetaPathFinder):
    TARGET = "torchvision._meta_registrations"

    def find_spec(self, name, path, target=None):
        if name != self.TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _DeclareOpsFirst(spec.loader)
        return spec


def install_import_hooks() -> None:
    if not any(isinstance(finder, _TorchvisionWithoutOps) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionWithoutOps())
