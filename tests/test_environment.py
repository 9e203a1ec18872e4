"""The grading environment: the book's package imports and plots headless; shell lines are skipped at load."""

import os
import subprocess
import sys

import nbformat
import pytest

from grader.load import load_notebook, skip_shell_lines

D2L_SCRIPT = """
import matplotlib
from d2l import torch as d2l
import torch
d2l.set_figsize((3, 2))
x = torch.arange(0, 5, 0.1)
d2l.plot(x, [torch.sin(x), torch.cos(x)], "x", "y", legend=["sin", "cos"])
d2l.show_heatmaps(torch.rand(1, 1, 4, 5), xlabel="keys", ylabel="queries")
assert matplotlib.get_backend().lower() == "agg", matplotlib.get_backend()
assert d2l.plt.get_fignums(), "no figure drawn"
from torchvision.ops import nms
try:
    nms(torch.rand(3, 4), torch.rand(3), 0.5)
except RuntimeError as exc:
    print("nms:", str(exc)[:40])
print("ok")
"""


def test_the_books_package_imports_and_its_plotting_helpers_run_headless(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "MPLBACKEND": "agg",
           "MPLCONFIGDIR": str(tmp_path / "mpl"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", D2L_SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "ok"


@pytest.mark.parametrize("source, commands, kept", [
    ("!pip install d2l==1.0.3\nimport torch", ["!pip install d2l==1.0.3"], "import torch"),
    ("%pip install -q d2l\n%matplotlib inline", ["%pip install -q d2l"], "%matplotlib inline"),
    ("import sys\nif 'google.colab' in sys.modules:\n    !pip install d2l \\\n        torch\nx = 1",
     ["!pip install d2l torch"], "    pass  # not run by the grader"),
    ("files = !ls\nprint(files)", ["!ls"], "files = []"),
    ("%%bash\npip install d2l\nls", ["%%bash", "pip install d2l", "ls"], "pass  # not run by the grader: %%bash"),
    ("%%capture\n!pip install d2l\nimport math", ["!pip install d2l"], "import math"),
    ('s = """\n!not a command\n"""\na = 7 % 2', [], '!not a command'),
    ("%%writefile helper.py\n!x", [], "!x"),
])
def test_shell_lines_become_no_ops_and_python_lines_stay(source, commands, kept):
    found = skip_shell_lines(source)
    assert found.commands == commands
    assert kept in found.source
    if commands and not source.startswith("%%bash"):  # a line for a line: tracebacks keep the student's line numbers
        assert len(found.source.splitlines()) == len(source.splitlines())
    if commands:
        compile(found.source.replace("%%capture", "").replace("%matplotlib inline", ""), "<cell>", "exec")


def test_load_reports_each_cell_with_shell_lines(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("!pip install d2l"),
                                         nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("%conda install numpy\ny = 2")])
    nbformat.write(nb, tmp_path / "n.ipynb")
    loaded = load_notebook(tmp_path / "n.ipynb")
    assert [(n.kind, n.cell) for n in loaded.notices] == [("shell-skipped", 0), ("shell-skipped", 2)]
    assert "d2l 1.0.3" in loaded.notices[0].message and "torch" in loaded.notices[0].message
    assert loaded.notebook.cells[2].source.endswith("y = 2")


def test_self_check_lines_do_not_run_when_graded(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('from grader import self_check; self_check("ex1")\nx = 1'),
        nbformat.v4.new_code_cell("if True:\n    self_check('ex2')\ny = 2"),
        nbformat.v4.new_code_cell("def my_self_check_helper():\n    pass")])
    nbformat.write(nb, tmp_path / "n.ipynb")
    loaded = load_notebook(tmp_path / "n.ipynb")
    kinds = [(n.kind, n.cell) for n in loaded.notices if n.kind == "self-check-skipped"]
    assert kinds == [("self-check-skipped", 0), ("self-check-skipped", 1)]
    for cell in loaded.notebook.cells:
        compile(cell.source, "<cell>", "exec")
    assert "grader" not in loaded.notebook.cells[0].source.split("#")[0] and "x = 1" in loaded.notebook.cells[0].source
    assert loaded.notebook.cells[1].source.startswith("if True:\n    pass")
    assert loaded.notebook.cells[2].source == "def my_self_check_helper():\n    pass"


def test_a_skipped_self_check_line_is_a_note_in_the_report_not_an_error(tmp_path):
    """Issue 22, item 5: grading leaves self_check() lines out, which is not the student's error: the report shows
    it as a note; a cell that raised stays an error."""
    import re

    from grader.model import GradeError, SubmissionResult
    from grader.report import render_report

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('from grader import self_check\nself_check()')])
    nbformat.write(nb, tmp_path / "n.ipynb")
    notice = load_notebook(tmp_path / "n.ipynb").notices[0]
    raised = GradeError("cell-error", "Cell 2 raised `ValueError`", cell=1)
    result = SubmissionResult(submission="n", assignment="attention_pooling", score=0.0, max_score=1.0,
                              exercises=[], errors=[notice, raised], seed_kind="secret")
    page = render_report(result.to_json())
    boxes = re.findall(r'<div class="(error[^"]*)">\s*<strong>([^<]*)</strong>', page)
    assert boxes == [("error note", "Self-check lines left out, as in every grading"),
                     ("error", "A cell raised an exception")], boxes
