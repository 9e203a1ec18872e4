"""Lets torchvision import where its C++ operators cannot load (a CPU torch beside PyPI's torchvision).

Self-contained on purpose: install.sh copies this file into site-packages as
``_torchvision_shim`` and a .pth file calls :func:`install_import_hooks` at every interpreter
start, the sandboxed kernel's included (which never sees the ``grader`` package). It imports
nothing heavy until torchvision itself is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

# torchvision declares these two operators' fake (meta) kernels without first checking that
# its C++ library loaded (every other registration is guarded), so with its ops missing its
# import raises "operator torchvision::nms does not exist" (pytorch/vision#9077).
TORCHVISION_UNGUARDED_OPS = ("nms", "qnms")
NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


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
