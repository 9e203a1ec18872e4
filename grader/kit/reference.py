"""An assignment's reference solution, imported from the file the assignment names.

The shipped assignments import theirs as ``reference.<name>`` (the repository's ``reference/`` package). An
assignment kept elsewhere (a course's own repository, a folder an instructor points ``--assignment`` at) has
no such package on the path, so its checks name the file: ``ref = load_reference(HERE.parent / "reference" /
"mine.py")``, and declare its folder in ``hidden_paths`` (the sandbox hides it and the assignment's digest,
which keys the reference cache, covers it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def reference_module_name(path: Path) -> str:
    """One module per file: two assignments' references of the same file name stay apart."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return f"grader_reference_{path.stem}_{digest}"


def load_reference(path: str | Path) -> ModuleType:
    """The reference module at ``path``, imported once (the same module object whoever asks)."""
    path = Path(path).resolve()
    name = reference_module_name(path)
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise FileNotFoundError(f"no reference solution at {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
