"""A uid of its own for each kernel a root-started grader runs: bubblewrap's, or the container tier's.

The kernel's per-user counts are kept by Linux per uid across the machine: its processes (RLIMIT_NPROC),
signals queued, inotify instances and epoll watches, pipe buffers, POSIX message queues. Were every
submission's kernel the same unprivileged uid (nobody), one submission holding processes would make
another's fork fail, and its grade silently lower. So each kernel gets a uid no account and no other
process has, from a range systemd leaves unused (``grader.config.SANDBOX_UIDS``) or, in a user namespace
that maps only 65536 uids (rootless container runtimes), from the top of the 16-bit range below nobody
(``SANDBOX_UIDS_16BIT``); only uids this namespace maps are drawn. Drawn at random, so that graders in other
containers of the same host, which cannot see these ones, pick others; taken ones are remembered by this
process and skipped if any process of this machine runs as them. The uid owns nothing on the host but the
kernel's own folders, removed with its worker.
"""

from __future__ import annotations

import pwd
import secrets
import threading
from pathlib import Path

import psutil

from .config import SANDBOX_UIDS, SANDBOX_UIDS_16BIT

RANGES = (SANDBOX_UIDS, SANDBOX_UIDS_16BIT)  # best first
_taken: set[int] = set()
_lock = threading.Lock()


def mapped_uids() -> list[range]:
    """The uids this process's user namespace maps (all of them outside any namespace)."""
    try:
        lines = Path("/proc/self/uid_map").read_text().splitlines()
    except OSError:
        return [range(0, 2**32 - 1)]
    spans = []
    for line in lines:
        inside, _, count = (int(word) for word in line.split())
        spans.append(range(inside, inside + count))
    return spans


def in_use(uid: int) -> bool:
    """Whether an account has ``uid`` or a process runs as it (a survivor of another grader, say)."""
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        pass
    for process in psutil.process_iter(["uids"]):
        uids = process.info.get("uids")
        if uids is not None and uid in (uids.real, uids.effective, uids.saved):
            return True
    return False


def allocate() -> int:
    """A uid of RANGES, mapped here, that this process has not handed out and nothing on this machine uses;
    release() it (OSError: none could be found)."""
    with _lock:
        for wanted in RANGES:
            spans = [range(max(wanted.start, span.start), min(wanted.stop, span.stop)) for span in mapped_uids()]
            spans = [span for span in spans if len(span)]
            for _ in range(64 if spans else 0):
                span = spans[secrets.randbelow(len(spans))]
                uid = span.start + secrets.randbelow(len(span))
                if uid not in _taken and not in_use(uid):
                    _taken.add(uid)
                    return uid
    raise OSError(f"no free uid for the kernel in {' or '.join(f'{r.start}..{r.stop - 1}' for r in RANGES)}")


def release(uid: int) -> None:
    with _lock:
        _taken.discard(uid)
