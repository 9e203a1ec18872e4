"""Run a command as a container runtime's default profile runs a container's root, on this machine.

    python tests/container_emulation.py [--no-setuid] -- ARGV...

Docker's and Podman's defaults: root without CAP_SYS_ADMIN (dropped from every set, the bounding
set included), and a seccomp filter that refuses unshare, setns, mount and clone with a namespace
flag (EPERM) and clone3 (ENOSYS, so the C library falls back to clone). bubblewrap cannot make
its namespaces there, as in such a container. ``--no-setuid`` also drops CAP_SETUID and
CAP_SETGID (a runtime started with --cap-drop, or a non-root container): no uid can be changed.

``outer_namespace`` gives the command a mount namespace of its own where the folders holding
this machine's Python (pyenv's, under /root, mode 0700 here) are reachable by other uids, as a
container's /usr is; everything else is this machine's own filesystem.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from pathlib import Path

from grader import seccomp
from grader.container import LINUX_CAPABILITY_VERSION_3, PR_CAPBSET_DROP, PR_SET_SECCOMP, SECCOMP_MODE_FILTER
from grader.container import _CapData, _CapHeader, _SockFprog
from grader.sandbox import python_prefixes

CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 6, 7, 21
REFUSED = ("unshare", "setns", "mount", "umount2", "pivot_root")


def runtime_filter(arch: seccomp.Architecture) -> bytes:
    """A runtime's default profile, the part that concerns namespaces."""
    numbers = arch.numbers
    ret_errno = seccomp.RET_ERRNO | errno.EPERM
    insns = [(seccomp.BPF_LD_W_ABS, 0, 0, seccomp.OFFSET_NR)]
    for name in REFUSED:  # each: if nr == X return EPERM
        insns += [(seccomp.BPF_JEQ_K, 0, 1, numbers[name]), (seccomp.BPF_RET_K, 0, 0, ret_errno)]
    insns += [(seccomp.BPF_JEQ_K, 0, 1, numbers["clone3"]), (seccomp.BPF_RET_K, 0, 0, seccomp.RET_ERRNO | errno.ENOSYS),
              (seccomp.BPF_JEQ_K, 0, 3, numbers["clone"]), (seccomp.BPF_LD_W_ABS, 0, 0, seccomp.OFFSET_ARG0),
              (seccomp.BPF_JSET_K, 0, 1, seccomp.CLONE_NAMESPACE_FLAGS), (seccomp.BPF_RET_K, 0, 0, ret_errno),
              (seccomp.BPF_RET_K, 0, 0, seccomp.RET_ALLOW)]
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in insns)


def drop_capabilities(caps: list[int]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in caps:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")
    header, data = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for cap in caps:
        word, bit = divmod(cap, 32)
        for name in ("effective", "permitted", "inheritable"):
            setattr(data[word], name, getattr(data[word], name) & ~(1 << bit))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def enter(no_setuid: bool = False) -> None:
    """This process becomes a default container's root (the filter first: installing it needs CAP_SYS_ADMIN or
    no_new_privs, and runtimes set no no_new_privs)."""
    data = runtime_filter(seccomp.architecture())
    buffer = ctypes.create_string_buffer(data, len(data))
    program = _SockFprog(len(data) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")
    drop_capabilities([CAP_SYS_ADMIN, *([CAP_SETUID, CAP_SETGID] if no_setuid else [])])


def outer_namespace() -> list[str]:
    """bwrap's words for a mount namespace where the root-only folders above Python's prefixes are traversable (the
    caller appends ``--`` and the command). Root keeps every capability in it (--cap-add ALL)."""
    outer = ["bwrap", "--dev-bind", "/", "/", "--cap-add", "ALL"]
    for prefix in python_prefixes():
        closed = [p for p in reversed(prefix.parents) if p != Path("/") and not p.stat().st_mode & 0o001]
        if closed:  # e.g. /root (0700) above pyenv's Python: an empty folder there, the prefix bound back
            outer += ["--perms", "0755", "--tmpfs", str(closed[0])]
            for folder in [p for p in reversed(prefix.parents) if closed[0] in p.parents]:
                outer += ["--perms", "0755", "--dir", str(folder)]
            outer += ["--ro-bind", str(prefix), str(prefix)]
    return outer


def in_container(argv: list[str], no_setuid: bool = False) -> list[str]:
    """``argv`` as a default container's root would run it, Python reachable by other uids."""
    return [*outer_namespace(), "--", sys.executable, os.path.abspath(__file__),
            *(["--no-setuid"] if no_setuid else []), "--", *argv]


if __name__ == "__main__":
    args = sys.argv[1:]
    no_setuid = args[:1] == ["--no-setuid"]
    args = args[1:] if no_setuid else args
    if args[:1] == ["--"]:
        args = args[1:]
    enter(no_setuid)
    os.execvp(args[0], args)
