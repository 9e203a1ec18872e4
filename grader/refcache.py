"""Reference work computed once: in memory for a run, on disk across runs, once under concurrency.

An assignment memoises its expensive reference work (the reference's learned widths, its
optimal widths on a study's data sets) with ``functools.lru_cache`` on module-level
functions. ``adopt_memoised`` swaps each of those for a ``ReferenceMemo``, which keeps the
in-memory cache and adds:

- a file per result in a ``ReferenceStore``: a folder keyed by the assignment's content
  hash, the grader's version and a hash of the seed material (the secret), so a second run
  with the same secret computes nothing, and a new secret, assignment or grader does;
- a lock per result (a thread lock and a file lock), so two jobs, threads or processes,
  that want the same result compute it once: the second waits and reads it;
- a ``ReferenceLedger`` per submission: what was computed and read, and the seconds spent,
  for result.json's timing.

Results are written as tagged JSON (numbers, strings, lists, tuples, dicts, float arrays),
never pickled; a result of another kind stays in memory only. The store lives in the
grader's own cache folder (``default_cache_root``), never inside anything the sandbox shows.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import NotStorable, UnsafeCacheLocation  # one family of the grader's failures

CACHE_VARIABLE = "GRADER_CACHE_DIR"
CACHE_FORMAT = 1  # bump when the file layout changes


def default_cache_root() -> Path:
    """$GRADER_CACHE_DIR, else $XDG_CACHE_HOME/attention-grader, else ~/.cache/attention-grader."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "attention-grader"


def check_private(root: Path) -> Path:
    """``root`` resolved, refused when the sandbox shows it: hidden references must stay hidden."""
    from .i18n import _
    from .sandbox import python_prefixes, shown_system

    resolved = root.expanduser().resolve()
    for shown in sorted({p.resolve() for p in [*shown_system(), *python_prefixes()]}):
        if resolved == shown or shown in resolved.parents:
            raise UnsafeCacheLocation(_("the reference cache %(folder)s lies inside %(shown)s, which the sandbox "
                                        "shows; choose a folder outside it (%(variable)s or --cache-dir)",
                                        folder=resolved, shown=shown, variable=CACHE_VARIABLE),
                                      folder=resolved, shown=shown)
    return resolved


# --------------------------------------------------------------------------- values as tagged JSON

def encode(value) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if not isinstance(value, np.generic) else value.item()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: encode(v) for k, v in value.items()}}
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        return {"array": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    raise NotStorable(type(value).__name__)


def decode(data) -> Any:
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "tuple" in data:
        return tuple(decode(v) for v in data["tuple"])
    if "dict" in data:
        return {k: decode(v) for k, v in data["dict"].items()}
    return np.asarray(data["array"], dtype=np.dtype(data["dtype"])).reshape(data["shape"])


# --------------------------------------------------------------------------- stores and ledgers

@dataclass
class ReferenceLedger:
    """One submission's share of reference work."""

    computed: int = 0
    from_disk: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, computed: bool, seconds: float) -> None:
        with self.lock:
            if computed:
                self.computed += 1
                self.seconds += seconds
            else:
                self.from_disk += 1


class ReferenceStore:
    """Reference results for one (assignment, grader version, seed material): memory, then disk (if a folder)."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.memory: dict[str, Any] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def _lock_for(self, key: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(key, threading.Lock())

    def get_or_compute(self, key: str, compute: Callable[[], Any], ledger: ReferenceLedger | None,
                       storable: bool = True) -> Any:
        if key in self.memory:
            return self.memory[key]
        with self._lock_for(key):  # one computation per process ...
            if key in self.memory:
                return self.memory[key]
            if self.folder is None or not storable:
                value = self._compute(compute, ledger)
            else:
                value = self._through_disk(key, compute, ledger)
            self.memory[key] = value
            return value

    def _through_disk(self, key: str, compute: Callable[[], Any], ledger: ReferenceLedger | None) -> Any:
        from filelock import FileLock

        path = self.folder / f"{key}.json"
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(str(path) + ".lock"):  # ... and one across processes (jobs, shards, Dask workers on one disk)
            try:
                value = decode(json.loads(path.read_text()))
                if ledger:
                    ledger.add(computed=False, seconds=0.0)
                return value
            except (OSError, ValueError, KeyError, TypeError):
                pass  # absent or unreadable: computed again and rewritten
            value = self._compute(compute, ledger)
            try:
                text = json.dumps(encode(value))
            except NotStorable:
                return value
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
            return value

    @staticmethod
    def _compute(compute: Callable[[], Any], ledger: ReferenceLedger | None) -> Any:
        started = time.monotonic()
        value = compute()
        if ledger:
            ledger.add(computed=True, seconds=time.monotonic() - started)
        return value


_stores: dict[Path | None, ReferenceStore] = {}
_stores_lock = threading.Lock()


def reference_store(assignment_digest: str, seed_material: str, cache_root: Path | None) -> ReferenceStore:
    """The store for these keys: one object per folder per process (so its memory and locks are shared)."""
    from .version import __version__

    folder = base = None
    if cache_root is not None:
        base = Path(cache_root) / f"reference-v{CACHE_FORMAT}"
        seed_tag = hashlib.sha256(f"attention-grader reference\0{seed_material}".encode()).hexdigest()[:24]
        folder = base / f"{assignment_digest[:24]}-grader-{__version__}" / seed_tag
    with _stores_lock:
        if folder not in _stores:
            if base is not None:
                check_private(base).mkdir(parents=True, exist_ok=True)
                base.chmod(0o700)  # what it holds derives from the secret: the grader's user alone reads it
            _stores[folder] = ReferenceStore(folder)
        return _stores[folder]


_MEMORY_ONLY = ReferenceStore(None)  # outside any grading (a self-check, a direct call): the lru_cache behaviour
_current: contextvars.ContextVar[tuple[ReferenceStore, ReferenceLedger | None]] = contextvars.ContextVar(
    "reference_store", default=(_MEMORY_ONLY, None))


@contextlib.contextmanager
def using(store: ReferenceStore | None, ledger: ReferenceLedger | None):
    """Reference work in this block (this thread or task) goes to ``store`` (None: memory only), counted on ``ledger``."""
    token = _current.set((store or _MEMORY_ONLY, ledger))
    try:
        yield
    finally:
        _current.reset(token)


# --------------------------------------------------------------------------- the memo

class ReferenceMemo:
    """Stands in for an assignment's ``functools.lru_cache`` function: the same calls, cached in the active store."""

    def __init__(self, function: Callable, name: str):
        functools.update_wrapper(self, function)
        self.function, self.name = function, name

    def key(self, args: tuple, kwargs: dict) -> tuple[str, bool]:
        """The result's name in a store, and whether it may go to disk (arguments the format can spell)."""
        try:
            spelled = json.dumps([encode(args), encode(dict(sorted(kwargs.items())))])
        except NotStorable:  # e.g. a tensor: hashed by identity, as lru_cache would, and kept in memory only
            return f"{self.name}-memory-{hash((args, tuple(sorted(kwargs.items()))))}", False
        return f"{self.name}-{hashlib.sha256(spelled.encode()).hexdigest()[:32]}", True

    def __call__(self, *args, **kwargs):
        store, ledger = _current.get()
        key, storable = self.key(args, kwargs)
        return store.get_or_compute(key, lambda: self.function(*args, **kwargs), ledger, storable)


def adopt_memoised(package: str) -> list[str]:
    """Swap the lru_cache functions of every loaded module of ``package`` for ReferenceMemos; their names."""
    adopted = []
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == package or module_name.startswith(package + ".")):
            continue
        for attribute, value in list(vars(module).items()):
            if isinstance(value, functools._lru_cache_wrapper) and getattr(value, "__module__", None) == module_name:
                name = f"{module_name}.{attribute}"
                setattr(module, attribute, ReferenceMemo(value.__wrapped__, name))
                adopted.append(name)
    return sorted(adopted)
