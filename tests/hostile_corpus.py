"""Hostile and broken submissions. Most are the correct solution plus one bad cell or function.

Each entry: the file's content (a notebook or raw bytes), the error kinds its result must
report, and the words its report must contain. Hostile cells that try to see what they
must not (the secret, the reference, the network) report what they found through
``predicted_exponent``: it stays right, and scores, only if they found nothing.
"""

import nbformat

from assignments.attention_pooling.build_notebooks import SOLUTION, build_notebook, with_changes

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


def _reporting(prelude: str, found_name: str):
    """The solution whose predicted_exponent goes wrong if ``found_name`` is non-empty after ``prelude``."""
    functions = with_changes(SOLUTION, {"ex4": ("def predicted_exponent(d):\n    return -1 / (d + 4)",
                                                 f"def predicted_exponent(d):\n    return -1 / (d + 4) if not {found_name} else 1.0")})
    return build_notebook(functions, extra_cells={"ex1": [prelude]})


def corpus(reference_paths: list[str], socket_targets: list[tuple[str, int]], write_targets: list[str]) -> dict:
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
        "nbformat3": (__import__("json").dumps(nb3), {"notebook-upgraded"}, ["nbformat 3"]),
        "huge_image": (big_image, set(), []),
    }
