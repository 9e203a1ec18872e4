"""The authoring kit: what an assignment is written with, so that it writes only what is its own.

An assignment writes its reference (a module of plain functions and classes), its checks as data
(grader.checks: ValueCheck, Case, Misconception, ...; checks.py's ``ASSIGNMENT``), its texts (the
notebook's statements and prompts, its catalogs) and its template. The engine gives the rest:

- ``AssignmentNotebooks`` (grader.kit.notebooks): the template and the solution built from the texts,
  the stubs and the solution's code, and written where the assignment commits them;
- ``assignment_texts`` / ``write_template`` (grader.kit.catalog): what its catalogs must translate, and its
  ``locale/messages.pot`` (``python -m grader.kit catalog FOLDER``);
- ``draw_seed``, ``numpy_of``, ``linear_weight``, ``linear_params``, ``unit_scale`` (grader.kit.objects) and
  ``with_pairs`` (grader.checks): inputs, objects' parameters and misconceptions made together;
- ``load_reference`` (grader.kit.reference): a reference kept outside the repository's ``reference/``;
- validation when it loads (grader.kit.contract, grader.assignment.load_assignment): a contract, template
  or catalog that does not match the declaration is refused once, naming the assignment and what is wrong.

docs/authoring.md is the author's guide.
"""

from ..checks import with_pairs
from ..notebooks import NotebookText, with_changes, write_notebook
from .catalog import assignment_texts, write_template
from .contract import contract_of, defined_names
from .notebooks import PLACEHOLDER, AssignmentNotebooks
from .objects import draw_seed, linear_params, linear_weight, numpy_of, unit_scale
from .reference import load_reference

__all__ = ["AssignmentNotebooks", "NotebookText", "PLACEHOLDER", "assignment_texts", "contract_of", "defined_names",
           "draw_seed", "linear_params", "linear_weight", "load_reference", "numpy_of", "unit_scale", "with_changes",
           "with_pairs", "write_notebook", "write_template"]
