"""A uid of its own for each kernel a root-started grader sandboxes.

The kernel's per-user counts are kept by Linux per uid across the machine: its processes (RLIMIT_NPROC),
signals queued, inotify instances and epoll watches, pipe buffers, POSIX message queues. Were every
submission's kernel the same unprivileged uid (nobody), one submission holding processes would make
another's fork fail, and its grade silently lower. So each sandbox gets a uid no account and no other
process has, from a range systemd leaves unused (``grader.config.SANDBOX_UIDS``), drawn at random so
that graders in other containers of the same host, which cannot see these ones, pick others; taken
ones are remembered by this process and skipped if any process of this machine runs as them. The uid
owns nothing on the host: the kernel writes only to its sandbox's tmpfs, and its connection file is in
the worker's folder, removed with it.
"""

from __future__ import annotations

import pwd
import secrets
import threading

import psutil

from .config import SANDBOX_UIDS

_taken: set[int] = set()
_lock = threading.Lock()


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
    """A uid of SANDBOX_UIDS this process has not handed out and nothing on this machine uses; release() it."""
    with _lock:
        for _ in range(64):
            uid = SANDBOX_UIDS.start + secrets.randbelow(len(SANDBOX_UIDS))
            if uid not in _taken and not in_use(uid):
                _taken.add(uid)
                return uid
    raise RuntimeError(f"no free uid in {SANDBOX_UIDS.start}..{SANDBOX_UIDS.stop - 1} for the kernel")


def release(uid: int) -> None:
    with _lock:
        _taken.discard(uid)
