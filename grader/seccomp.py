"""The seccomp filter the kernel runs under: a classic-BPF program handed to bubblewrap (``--seccomp FD``).

It refuses (EPERM) the system calls a notebook never needs and an escape always does:
mounting and pivoting, namespaces (unshare, setns, clone with a CLONE_NEW* flag), ptrace and
cross-process memory access, the kernel keyring, BPF and perf, modules, kexec, swap, reboot,
clock setting, file handles, TIOCSTI, io_uring (its own path into the kernel, past this filter's view of
the calls it makes). ``clone3`` answers ENOSYS, so the C library falls back to ``clone``, whose flags the
filter can read (clone3 passes them behind a pointer).

Sockets are an allow-list of address families: the kernel's ZeroMQ sockets are AF_UNIX, and AF_INET and
AF_INET6 reach only the sandbox's own loopback (its network namespace has nothing else); netlink only as
NETLINK_ROUTE, which lists that namespace's interfaces (libzmq's getifaddrs() aborts the kernel without it).
Every other family (AF_VSOCK, which reaches the hypervisor past any network namespace; AF_PACKET, AF_ALG,
...) and every other netlink protocol (audit, uevents, ...) answers EAFNOSUPPORT, as on a kernel built
without it. The container tier (grader.container) has no network namespace: its filter (``network=False``)
takes AF_UNIX alone and answers every other family EOPNOTSUPP.

Written out by hand rather than through libseccomp: the program is ~60 instructions, it
needs no compiled dependency, and the tests read it back instruction by instruction.
Numbers come from the kernel's own tables (x86_64: asm/unistd_64.h; aarch64:
asm-generic/unistd.h); tests/test_sandbox_units.py holds them to the system's libseccomp. On another
architecture there is no filter and the sandbox says so.
"""

from __future__ import annotations

import errno
import os
import platform
import struct
from dataclasses import dataclass

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0, OFFSET_ARG1, OFFSET_ARG2 = 0, 4, 16, 24, 32  # an argument's low 32 bits (little-endian)

BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K = 0x15, 0x35, 0x45  # BPF_JMP | op | BPF_K
BPF_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000

CLONE_NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC
                         | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080)  # NEWUSER, NEWPID, NEWNET, NEWTIME
TIOCSTI = 0x5412
X32_SYSCALL_BIT = 0x40000000
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, NETLINK_ROUTE = 1, 2, 10, 16, 0
SOCKET_FAMILIES = (AF_UNIX, AF_INET, AF_INET6)  # socket() and socketpair() take the family as an int, first

DENIED = ("mount", "umount2", "pivot_root", "chroot", "ptrace", "process_vm_readv", "process_vm_writev", "unshare",
          "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "kexec_load", "kexec_file_load",
          "init_module", "finit_module", "delete_module", "swapon", "swapoff", "reboot", "syslog", "acct",
          "userfaultfd", "open_by_handle_at", "name_to_handle_at", "quotactl", "open_tree", "move_mount", "fsopen",
          "fsconfig", "fsmount", "fspick", "mount_setattr", "lookup_dcookie", "settimeofday", "clock_settime",
          "adjtimex", "clock_adjtime", "iopl", "ioperm", "vhangup", "pidfd_getfd", "fanotify_init", "quotactl_fd",
          "io_uring_setup", "io_uring_enter", "io_uring_register", "kcmp", "uselib", "ustat", "sysfs")


@dataclass(frozen=True)
class Architecture:
    audit_arch: int  # AUDIT_ARCH_* as seccomp_data.arch reports it
    numbers: dict[str, int]
    x32_bit: bool = False  # x86_64 also answers the x32 ABI's numbers, which must be refused whole


X86_64 = Architecture(0xC000003E, dict(
    mount=165, umount2=166, pivot_root=155, chroot=161, ptrace=101, process_vm_readv=310, process_vm_writev=311,
    unshare=272, setns=308, keyctl=250, add_key=248, request_key=249, bpf=321, perf_event_open=298, kexec_load=246,
    kexec_file_load=320, init_module=175, finit_module=313, delete_module=176, swapon=167, swapoff=168, reboot=169,
    syslog=103, acct=163, userfaultfd=323, open_by_handle_at=304, name_to_handle_at=303, quotactl=179, open_tree=428,
    move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433, mount_setattr=442, lookup_dcookie=212,
    settimeofday=164, clock_settime=227, adjtimex=159, clock_adjtime=305, iopl=172, ioperm=173, vhangup=153,
    pidfd_getfd=438, fanotify_init=300, quotactl_fd=443, io_uring_setup=425, io_uring_enter=426,
    io_uring_register=427, kcmp=312, uselib=134, ustat=136, sysfs=139, clone=56, clone3=435, ioctl=16, socket=41,
    socketpair=53), x32_bit=True)
AARCH64 = Architecture(0xC00000B7, dict(
    mount=40, umount2=39, pivot_root=41, chroot=51, ptrace=117, process_vm_readv=270, process_vm_writev=271,
    unshare=97, setns=268, keyctl=219, add_key=217, request_key=218, bpf=280, perf_event_open=241, kexec_load=104,
    kexec_file_load=294, init_module=105, finit_module=273, delete_module=106, swapon=224, swapoff=225, reboot=142,
    syslog=116, acct=89, userfaultfd=282, open_by_handle_at=265, name_to_handle_at=264, quotactl=60, open_tree=428,
    move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433, mount_setattr=442, lookup_dcookie=18,
    settimeofday=170, clock_settime=112, adjtimex=171, clock_adjtime=266, vhangup=58, pidfd_getfd=438,
    fanotify_init=262, quotactl_fd=443, io_uring_setup=425, io_uring_enter=426, io_uring_register=427, kcmp=272,
    clone=220, clone3=435, ioctl=29, socket=198, socketpair=199))
ARCHITECTURES = {"x86_64": X86_64, "amd64": X86_64, "aarch64": AARCH64, "arm64": AARCH64}


def architecture() -> Architecture | None:
    return ARCHITECTURES.get(platform.machine().lower())


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return code, jt, jf, k


def program(arch: Architecture, network: bool = True) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions; jumps are resolved against the four exits at its end.
    ``network=False`` (no network namespace): socket() and socketpair() take AF_UNIX alone."""
    body: list[tuple] = []  # entries: ("insn", code, k) or ("jump", code, k, target_if_true, target_if_false)
    body.append(("insn", BPF_LD_W_ABS, OFFSET_ARCH))
    body.append(("jump", BPF_JEQ_K, arch.audit_arch, None, "deny"))  # another ABI (i386 on x86_64): refused whole
    body.append(("insn", BPF_LD_W_ABS, OFFSET_NR))
    if arch.x32_bit:
        body.append(("jump", BPF_JGE_K, X32_SYSCALL_BIT, "deny", None))
    for name in DENIED:
        if name in arch.numbers:
            body.append(("jump", BPF_JEQ_K, arch.numbers[name], "deny", None))
    body.append(("jump", BPF_JEQ_K, arch.numbers["clone3"], "enosys", None))
    body.append(("jump", BPF_JEQ_K, arch.numbers["clone"], "clone", None))
    body.append(("jump", BPF_JEQ_K, arch.numbers["socket"], "socket", None))
    body.append(("jump", BPF_JEQ_K, arch.numbers["socketpair"], "socket", None))
    body.append(("jump", BPF_JEQ_K, arch.numbers["ioctl"], "ioctl", "allow"))
    labels = {"clone": len(body)}
    body.append(("insn", BPF_LD_W_ABS, OFFSET_ARG0))  # clone's flags (their low 32 bits hold every CLONE_NEW*)
    body.append(("jump", BPF_JSET_K, CLONE_NAMESPACE_FLAGS, "deny", "allow"))
    labels["socket"] = len(body)
    body.append(("insn", BPF_LD_W_ABS, OFFSET_ARG0))  # the address family
    if network:
        for family in SOCKET_FAMILIES:
            body.append(("jump", BPF_JEQ_K, family, "allow", None))
        body.append(("jump", BPF_JEQ_K, AF_NETLINK, None, "no_family"))
        body.append(("insn", BPF_LD_W_ABS, OFFSET_ARG2))  # netlink's protocol
        body.append(("jump", BPF_JEQ_K, NETLINK_ROUTE, "allow", "no_family"))
    else:  # no network namespace: ZeroMQ's IPC sockets only
        body.append(("jump", BPF_JEQ_K, AF_UNIX, "allow", "no_family"))
    labels["ioctl"] = len(body)
    body.append(("insn", BPF_LD_W_ABS, OFFSET_ARG1))  # ioctl's request
    body.append(("jump", BPF_JEQ_K, TIOCSTI, "deny", "allow"))
    # A refused family: EAFNOSUPPORT, as a kernel built without it, where the kernel has a network namespace (libzmq
    # copes); without one (the container tier), EOPNOTSUPP, which libzmq takes for "no interfaces" where
    # getifaddrs' netlink socket fails (EPERM or EAFNOSUPPORT there abort libzmq inside ipykernel).
    refused = errno.EAFNOSUPPORT if network else errno.EOPNOTSUPP
    labels.update(allow=len(body), deny=len(body) + 1, enosys=len(body) + 2, no_family=len(body) + 3)
    exits = [_insn(BPF_RET_K, RET_ALLOW), _insn(BPF_RET_K, RET_ERRNO | errno.EPERM),
             _insn(BPF_RET_K, RET_ERRNO | errno.ENOSYS), _insn(BPF_RET_K, RET_ERRNO | refused)]
    insns = []
    for index, entry in enumerate(body):
        if entry[0] == "insn":
            insns.append(_insn(entry[1], entry[2]))
            continue
        _, code, k, if_true, if_false = entry

        def offset(target):
            distance = 0 if target is None else labels[target] - index - 1
            if not 0 <= distance <= 255:
                raise ValueError("seccomp program too long for an 8-bit jump")
            return distance

        insns.append(_insn(code, k, offset(if_true), offset(if_false)))
    return insns + exits


def compiled(arch: Architecture, network: bool = True) -> bytes:
    """struct sock_filter[]: u16 code, u8 jt, u8 jf, u32 k, native byte order, as bwrap reads it."""
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in program(arch, network))


def filter_fd() -> int | None:
    """A readable fd holding this machine's filter (bwrap reads it to the end), or None without one."""
    arch = architecture()
    if arch is None:
        return None
    read, write = os.pipe()
    data = compiled(arch)
    os.write(write, data)  # ~500 bytes: well inside a pipe's buffer
    os.close(write)
    return read
