"""An assignment checked against its own parts when it loads: its contract, its template, its catalogs.

``Assignment.problems`` holds the declaration to itself (ids, exercises, references). What is here holds it to
the files beside it, the way pluggy holds a plug-in's hooks to their specification at registration:
- the contract (``Assignment.contract``: the functions and classes a student defines; when not declared, what
  the template defines) names every function a check or a figure calls;
- the template exists, defines every contract name, carries the answer cells the exercises declare, and names
  this assignment in its metadata (a student's notebook made from it must select this assignment, issue 20.2);
- its catalogs translate every text it shows (grader.kit.catalog).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from ..errors import Problem
from ..i18n import _, join_list


@functools.lru_cache(maxsize=16)
def _template(path: Path, mtime: float):
    from ..load import load_notebook

    return load_notebook(path)


def template_notebook(assignment):
    """The assignment's template as grader.load reads a submission (None: it declares none, or there is none)."""
    path = assignment.root / assignment.template if assignment.template else None
    if path is None or not path.is_file():
        return None
    return _template(path, path.stat().st_mtime)


def defined_names(sources) -> set[str]:
    """The functions and classes the code cells define at their top level (a cell that does not parse defines
    nothing)."""
    names = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names |= {node.name for node in tree.body
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return names


def template_definitions(assignment) -> set[str]:
    loaded = template_notebook(assignment)
    if loaded is None:
        return set()
    return defined_names(cell.source for cell in loaded.notebook.cells if cell.cell_type == "code")


def contract_of(assignment) -> frozenset[str]:
    """What a student defines: the declared contract, else what the template defines (empty: unknown)."""
    return frozenset(assignment.contract) or frozenset(template_definitions(assignment))


def not_in_contract(assignment, subject: str, functions) -> list[Problem]:
    """A problem for each function ``subject`` calls that the contract does not name."""
    contract = contract_of(assignment)
    if not contract:
        return []
    return [Problem(subject, _("calls %(function)s, which is not in the assignment's contract (%(contract)s)",
                               function=name, contract=join_list(sorted(contract))))
            for name in sorted(set(functions) - contract)]


def template_problems(assignment) -> list[Problem]:
    from ..installed import metadata_assignment

    if not assignment.template:
        return []
    path = assignment.root / assignment.template
    if not path.is_file():
        return [Problem("template", _("no template notebook at %(file)s", file=path))]
    loaded = template_notebook(assignment)
    problems = []
    missing = sorted(set(assignment.contract) - template_definitions(assignment))
    if missing:
        problems.append(Problem("template", _("%(file)s does not define %(names)s, which the contract names",
                                              file=path.name, names=join_list(missing))))
    declared = {tag for exercise in assignment.exercises for tag in exercise.answer_tags}
    if set(loaded.answers) != declared:
        problems.append(Problem("template", _(
            "%(file)s has the answer cells %(found)s, but the exercises declare %(declared)s", file=path.name,
            found=join_list(sorted(loaded.answers)) or "-", declared=join_list(sorted(declared)) or "-")))
    named = metadata_assignment(loaded.notebook.metadata)
    if named != assignment.name:
        problems.append(Problem("template", _(
            "%(file)s names assignment %(named)s in its metadata, not %(name)s: every notebook made from it would "
            "be refused as another assignment's", file=path.name, named=repr(named), name=assignment.name)))
    return problems


def folder_problems(assignment) -> list[Problem]:
    """Everything wrong between the declaration and the files beside it (its root must be set)."""
    from .catalog import catalog_problems

    problems = template_problems(assignment)
    problems += [p for check in assignment.checks if getattr(check, "function", "")
                 for p in not_in_contract(assignment, check.id, [check.function])]
    return problems + catalog_problems(assignment)
