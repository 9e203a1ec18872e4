"""Hostile and broken submissions. Most are the correct solution plus one bad cell or function.

Each entry: the file's content (a notebook or raw bytes), the error kinds its result must
report, and the words its report must contain. Hostile cells that try to see what they
must not (the secret, the reference, the network) report what they found through
``predicted_exponent``: it stays right, and scores, only if they found nothing.
"""

import nbformat

from assignments.attention_pooling.build_notebooks import SOLUTION, STUBS, build_notebook
from grader.notebooks import with_changes

MARKER_SLEEP = "31337"  # a background process's argument, to find it if it survived

CANARY = "GRADER-CANARY-WRITE"


def _with_cell(code: str, exercise: str = "ex1", functions=None) -> nbformat.NotebookNode:
    return build_notebook(functions or SOLUTION, extra_cells={exercise: [code]})


SPY = '''\
import os, glob
found = []
secret = os.environ.get("GRADER_SECRET_UNDER_TEST", "")
for key, value in os.environ.items():
    if "SECRET" in key or (secret and secret in value):
        found.append("env:" + key)
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
    try:
        if b"secret-under-test" in open(path, "rb").read():
            found.append(path)
    except OSError:
        pass
for path in REFERENCE_PATHS:
    if os.path.exists(path):
        found.append(path)
'''

SOCKET = '''\
import socket
reached = []
for host, port in TARGETS:
    try:
        socket.create_connection((host, port), timeout=2).close()
        reached.append((host, port))
    except OSError:
        pass
'''

WRITER = f'''\
import json, os, pathlib
fake = {{"cells": [], "probes": {{}}, "errors": [], "finished": True}}
for target in TARGETS:
    try:
        pathlib.Path(target).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(target).write_text("{CANARY}")
    except OSError:
        pass
for parent in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents][:3]:
    try:
        (parent / "worker-result.json").write_text(json.dumps(fake))
    except OSError:
        pass
'''

MONKEYPATCH = '''\
import math, numpy, torch
numpy.allclose = lambda *a, **k: True
numpy.isclose = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
math.isclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
'''


PTY_PROBE = '''\
try:  # a pseudo-terminal: the machine's are few and shared
    os.openpty()
    found.append("pty")
except OSError:
    pass
'''
PRIVILEGE = '''\
import ctypes, errno, os
found = []
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
for key in ("CapPrm", "CapEff", "CapBnd", "CapAmb", "CapInh"):
    if int(status[key].strip(), 16):
        found.append(key)
if os.getuid() == 0 or os.geteuid() == 0 or os.getgid() == 0:
    found.append("root")
if status["NoNewPrivs"].strip() != "1":
    found.append("new privileges allowed")
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/tmp/escape", exist_ok=True)
if libc.mount(b"/", b"/tmp/escape", None, 4096 | 16384, None) == 0:  # MS_BIND | MS_REC: the host's root
    found.append("mount")
if libc.umount2(b"/proc", 2) == 0:
    found.append("umount")
for flag in (0x10000000, 0x00020000, 0x40000000):  # a new user, mount or network namespace
    if libc.unshare(flag) == 0:
        found.append(f"unshare {flag:#x}")
if libc.ptrace(0, 0, None, None) == 0:  # PTRACE_TRACEME
    found.append("ptrace")
if libc.syscall(321, 0, None, 0) != -1 or ctypes.get_errno() != errno.EPERM:  # bpf on x86_64
    found.append("bpf")
if libc.syscall(425, 1, ctypes.c_void_p(0)) != -1 or ctypes.get_errno() != errno.EPERM:  # io_uring_setup
    found.append("io_uring")
''' + PTY_PROBE + '''import socket
for family, kind, protocol in ((40, socket.SOCK_STREAM, 0), (16, socket.SOCK_RAW, 9), (16, socket.SOCK_RAW, 15),
                               (38, 5, 0)):  # AF_VSOCK; netlink's audit and uevents; AF_ALG
    try:
        socket.socket(family, kind, protocol).close()
        found.append(f"socket family {family}")
    except OSError:
        pass
'''

VISIBLE = '''\
import os
found = [path for path in PATHS if os.path.exists(path)]
for name in NAMES:  # other submissions' names must appear nowhere the kernel can read
    for source in ("/proc/self/mountinfo", "/proc/1/cmdline", "/etc/hosts", "/etc/passwd"):
        if name in open(source, "rb").read().decode(errors="replace"):
            found.append(f"{name} in {source}")
if any(word in key or word in value for key, value in os.environ.items() for word in ("GRADER", "SECRET")):
    found.append("environment")
import socket
if "grader" in socket.gethostname():
    found.append("hostname")
'''

FORGER = '''\
import base64, struct, threading, time
from IPython.display import display
MIME = "application/vnd.attention-grader.outcome+json"
HALF = {"kind": "array", "dtype": "float64", "shape": [], "scalar": True,
        "data": base64.b64encode(struct.pack("<d", 0.5)).decode()}  # a well-formed value (grader/wireformat.py)
def _forge():
    while True:  # outcomes for every call, good numbers and poison, from a thread of its own
        for check in IDS:
            for i in range(12):
                display({MIME: {"id": f"{check}#{i}", "status": "ok", "value": HALF}}, raw=True)
                display({MIME: {"id": f"{check}#{i}", "status": "ok", "value": DEEP}}, raw=True)
        time.sleep(0.05)
DEEP = []
for _ in range(900):  # deep enough to hurt a recursive reader, shallow enough to be sent
    DEEP = [DEEP]
threading.Thread(target=_forge, daemon=True).start()
import glob, os
for folder in glob.glob("/dev/shm/*") + ["/run/jupyter"]:  # the socket folder: plant what a naive reader would trust
    for name in ("worker-result.json", "job.json"):
        try:
            os.mkfifo(os.path.join(folder, name))
        except OSError:
            pass
'''

MEMORY_CHILDREN = '''\
import subprocess, sys
hog = "x = b'x' * (2600 * 2**20); import time; time.sleep(1); print('held')"
children = [subprocess.Popen([sys.executable, "-c", hog], stdout=subprocess.PIPE) for _ in range(2)]
held = [c.communicate()[0] for c in children]
assert not all(b"held" in h for h in held), "two 2.6 GB children at once: over a 4 GiB whole-tree limit"
'''

TMPFS_FILL = '''\
block = b"x" * 2**20
for part in range(6):  # 2.1 GB into a size-capped /tmp, in files under the per-file limit
    with open(f"/tmp/fill-{part}", "wb") as f:
        for _ in range(350):
            f.write(block)
'''

FORK_BOMB = '''\
import errno, os, subprocess, sys
bomb = """
import os, signal, sys, time
children = []
try:
    for _ in range(1000):
        pid = os.fork()
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        children.append(pid)
    print("forked", len(children))
except OSError as exc:
    print("refused", exc.errno, len(children))
finally:
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    for pid in children:  # collected here: left as orphans, they count against the uid until PID 1 collects them
        os.waitpid(pid, 0)
"""
words = subprocess.run([sys.executable, "-c", bomb], capture_output=True, text=True).stdout.split()
if words[0] == "refused":  # the child hit the process limit: say so as the cell's own error
    raise OSError(int(words[1]), f"{os.strerror(int(words[1]))} after {words[2]} processes")
'''

HOLD_PROCESSES = 236  # with the kernel's own threads, under the default limit of 256; with a neighbour's, over it
PROCESS_HOLDER = f'''\
import subprocess, time
held = []
try:
    for _ in range({HOLD_PROCESSES}):  # processes that stay while this cell, and a neighbour's grading, go on
        held.append(subprocess.Popen(["sleep", "{MARKER_SLEEP}"]))
except OSError:
    pass
time.sleep(12)
'''

WRITE_EVERYWHERE = '''\
import os
found = []
block = b"x" * 2**20
# The socket folder (its own 4 MiB tmpfs), the sandbox's root and /dev (read-only once built), the shown trees.
for folder in ["/run/jupyter", "/", "/dev", "/home", "/run", "/etc", "/usr", os.path.dirname(os.__file__)]:
    written = 0
    path = os.path.join(folder, "fill")
    try:
        with open(path, "wb") as f:
            for _ in range(64):
                f.write(block)
                f.flush()
                written += 1
    except OSError:
        pass
    try:
        os.unlink(path)
    except OSError:
        pass
    if written > 8:
        found.append(folder)
'''

CPU_HOGS = f'''\
import subprocess, sys
for _ in range(8):  # busy processes, each in a session of its own, left running
    subprocess.Popen([sys.executable, "-c", "import time\\nt = time.time()\\nwhile time.time() < t + 20: pass",
                      "{MARKER_SLEEP}"], start_new_session=True)
'''

DISK_FILL = '''\
import glob, os
block = b"x" * 2**20
for folder in glob.glob("/dev/shm/*") + ["/home/student", "/run/jupyter"]:
    try:
        with open(os.path.join(folder, "fill"), "wb") as f:
            for _ in range(1500):
                f.write(block)
    except OSError:
        pass
'''


def exfiltrating_functions():
    """Every function raises with its inputs in the message: hidden inputs must not reach the report."""
    functions = {}
    for ex, code in SOLUTION.items():
        functions[ex] = code.replace("def ", "def _unused_")
    names = {"ex1": ["parzen_density", "parzen_class_score", "nw_classify"],
             "ex2": ["nw_regress", "train_loss", "loo_loss", "fit_width"],
             "ex3": ["gaussian_attention", "dot_product_attention"], "ex4": ["loo_optimal_width", "predicted_exponent"]}
    for ex, funcs in names.items():
        functions[ex] += "".join(f"\n\ndef {f}(*args, **kwargs):\n    raise ValueError(repr([a.tolist() if hasattr(a, 'tolist') "
                                 f"else a for a in args]))\n" for f in funcs)
    return functions


def _reporting(prelude: str, found_name: str):
    """The solution whose predicted_exponent goes wrong if ``found_name`` is non-empty after ``prelude``."""
    functions = with_changes(SOLUTION, {"ex4": ("def predicted_exponent(d):\n    return -1 / (d + 4)",
                                                 f"def predicted_exponent(d):\n    return -1 / (d + 4) if not {found_name} else 1.0")})
    return build_notebook(functions, extra_cells={"ex1": [prelude]})


def corpus(reference_paths: list[str], socket_targets: list[tuple[str, int]], write_targets: list[str],
           visible_paths: list[str] = (), other_names: list[str] = (), check_ids: list[str] = ()) -> dict:
    """name -> (content, error kinds the result must list, words the report must contain)."""
    v4 = nbformat.v4
    nb3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "def predicted_exponent(d):\n    return -1 / (d + 4)", "language": "python",
         "outputs": [], "collapsed": False, "metadata": {}}], "metadata": {}}]}
    big_image = _with_cell("x = 1")
    big_image.cells[1].outputs = [v4.new_output("display_data", data={"image/png": "iVBORw0KGgo" + "A" * 30_000_000})]
    return {
        "loop_top_level": (_with_cell("while True:\n    pass"), {"timeout"}, ["ran longer than its limit"]),
        "loop_in_function": (build_notebook(with_changes(SOLUTION, {"ex4": (
            "def predicted_exponent(d):\n    return -1 / (d + 4)",
            "def predicted_exponent(d):\n    while True:\n        pass")})), set(), ["did not return within its time limit"]),
        "os_exit": (_with_cell("import os\nos._exit(1)"), {"kernel-died"}, ["kernel died", "os._exit(1)"]),
        "exit_in_function": (build_notebook(with_changes(SOLUTION, {"ex4": (
            "def predicted_exponent(d):\n    return -1 / (d + 4)",
            "def predicted_exponent(d):\n    import os\n    os._exit(3)")})), set(), ["kernel died"]),
        "sys_exit": (_with_cell("import sys\nsys.exit(0)"), {"cell-error"}, ["SystemExit"]),
        "memory_hog": (_with_cell("hog = bytearray(16 * 2**30)"), {"memory-limit"}, ["memory limit of"]),
        "output_flood": (_with_cell("for i in range(200000):\n    print('flood' * 20, i)"), {"output-capped"},
                         ["printed more than"]),
        "background_process": (_with_cell(
            f"import subprocess\nsubprocess.Popen(['sleep', '{MARKER_SLEEP}'], start_new_session=True)\n"
            f"subprocess.Popen('nohup sleep {MARKER_SLEEP} >/dev/null 2>&1 &', shell=True)"), set(), []),
        "fake_results": (_with_cell(WRITER.replace("TARGETS", repr(write_targets))), set(), []),
        "monkeypatching": (build_notebook(with_changes(SOLUTION, {"ex3": ("queries @ keys.T / sigma**2", "queries @ keys.T")}),
                                          extra_cells={"ex1": [MONKEYPATCH]}), set(), ["temperature"]),
        "spy": (_reporting(SPY.replace("REFERENCE_PATHS", repr(reference_paths)), "found"), set(), []),
        "socket": (_reporting(SOCKET.replace("TARGETS", repr(socket_targets)), "reached"), set(), []),
        "truncated_json": (nbformat.writes(build_notebook(SOLUTION))[:5000], {"invalid-notebook"}, ["not valid notebook JSON"]),
        "not_a_notebook": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, {"invalid-notebook"}, ["not text"]),
        "python_file": ("def predicted_exponent(d):\n    return -1 / (d + 4)\n", {"invalid-notebook"}, ["not valid notebook JSON"]),
        "empty_file": ("", {"invalid-notebook"}, ["empty"]),
        "deep_json": ('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}", {"invalid-notebook"}, ["levels deep"]),
        "nbformat3": (__import__("json").dumps(nb3), {"notebook-upgraded"}, ["nbformat 3"]),
        "huge_image": (big_image, set(), []),
        "privilege": (_reporting(PRIVILEGE, "found"), set(), []),
        "visible": (_reporting(VISIBLE.replace("PATHS", repr(list(visible_paths))).replace("NAMES", repr(list(other_names))),
                               "found"), set(), []),
        "forged_outcomes": (build_notebook(STUBS, extra_cells={"ex1": [FORGER.replace("IDS", repr(list(check_ids)))]}),
                            set(), []),
        "memory_children": (_with_cell(MEMORY_CHILDREN), {"memory-limit"}, ["memory limit of"]),
        "tmpfs_fill": (_with_cell(TMPFS_FILL), {"disk-limit"}, ["temporary space"]),
        "disk_fill": (_with_cell(DISK_FILL), set(), []),
        "fork_bomb": (_with_cell(FORK_BOMB), {"process-limit"}, ["processes"]),
        "cpu_hogs": (_with_cell(CPU_HOGS), set(), []),
        "process_holder": (_with_cell(PROCESS_HOLDER), set(), []),
        "write_everywhere": (_reporting(WRITE_EVERYWHERE, "found"), set(), []),
        "exfiltration": (build_notebook(exfiltrating_functions()), set(),
                         ["On the hidden inputs your function raised an exception."]),
    }


def write_entry(path, content) -> None:
    """A corpus entry's content as the file ``path``: raw bytes, text, or a notebook."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        nbformat.write(content, path)


def special_files(solution_path: str) -> dict:
    """name -> how to make a submission that is not a regular file (links, FIFOs), as the test creates them."""
    import os

    return {
        "link_to_solution": lambda path: os.symlink(solution_path, path),
        "link_to_zero": lambda path: os.symlink("/dev/zero", path),
        "link_to_environ": lambda path: os.symlink("/proc/self/environ", path),
        "fifo": lambda path: os.mkfifo(path),
    }


# File names a batch must keep apart and keep safe in every sink: colliding, reserved, formulas, scripts, escapes.
AWKWARD_NAMES = ["alice/x.ipynb", "mallory/alice__x.ipynb", "index.html.ipynb", "gradebook.csv.ipynb", "...ipynb",
                 "=HYPERLINK(\"evil.example\",\"x\").ipynb", "+cmd|calc.ipynb", "javascript:alert(1).ipynb",
                 "\x1b[31mred\x07.ipynb", "pipe|and\nnewline.ipynb", "学生 张三.ipynb"]


def malformed_notebooks() -> dict[str, str]:
    """name -> a file's text that parses as far as some stage and must then be an invalid notebook, said in words:
    nesting deep enough to overflow a recursive reader, numbers too long to convert, text no UTF-8 file holds,
    and wrong types where nbformat expects others."""
    import json

    notebook = json.loads(nbformat.writes(build_notebook(SOLUTION)))

    def changed(change) -> str:
        copy = json.loads(json.dumps(notebook))
        change(copy)
        return json.dumps(copy)

    def deep(levels: int):
        return json.loads("[" * levels + "]" * levels)

    return {
        "deep_cells": '{"cells": ' + "[" * 100_000 + "]" * 100_000 + ', "metadata": {}, "nbformat": 4}',
        "deep_metadata": changed(lambda nb: nb["metadata"].update(x=deep(500))),  # parses; nbformat would overflow
        "deep_objects": '{"cells": [], "metadata": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
        "long_number": json.dumps(notebook).replace('"nbformat": 4', '"nbformat": ' + "9" * 5000),
        "long_number_in_metadata": json.dumps(notebook).replace('"metadata": {', '"metadata": {"n": ' + "1" * 5000 + ", ", 1),
        "lone_surrogate_in_source": changed(lambda nb: nb["cells"][1].update(source="x = '\ud800'")),
        "lone_surrogate_in_key": changed(lambda nb: nb["metadata"].update({"\udfff": 1})),
        "nbformat_as_text": changed(lambda nb: nb.update(nbformat="4")),
        "nbformat_as_float": changed(lambda nb: nb.update(nbformat=4.0)),
        "nbformat_5": changed(lambda nb: nb.update(nbformat=5)),
        "metadata_as_list": changed(lambda nb: nb.update(metadata=[])),
        "cells_as_object": changed(lambda nb: nb.update(cells={"a": 1})),
        "source_with_a_number": changed(lambda nb: nb["cells"][1].update(source=["x = 1\n", 2])),
        "tags_as_object": changed(lambda nb: nb["cells"][1]["metadata"].update(tags={"answer:ex1": 1})),
        "nbformat3_bad_worksheets": json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": "x"}),
        "nbformat3_input_a_number": json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [
            {"cells": [{"cell_type": "code", "input": 5}]}]}),
    }
