"""One configuration and validated plug-ins: settings resolution, which assignment, catalog order, enums,
and assignments refused at load (before anyone is graded). No kernel is started here."""

import json
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

import grader.assignment as assignment_module
import grader.cli as cli
import grader.commands as commands
import grader.installed as installed
from grader.assignment import Assignment, Exercise, load_assignment
from grader.installed import infer_assignment
from grader.checks import Case, CustomCheck, Misconception, ValueCheck
from grader.config import ENGINE_LIMITS, command_line_limits, resolve_limits
from grader.errors import AssignmentInvalid, AssignmentUnknown, GraderError
from grader.figures import Figure
from grader.i18n import catalog
from grader.model import (UNGRADABLE, AnswerStatus, CellStatus, CheckResult, CheckStatus, ErrorKind, GradeError,
                          OutcomeStatus, ProbeOutcome)
from grader.pipeline import GradingOptions, judge_check, plan_probes
from grader.wording import ERROR_TITLES


def double_check(**changes) -> ValueCheck:
    fields = dict(id="ex1.double", exercise="ex1", title="double", points=2, function="double",
                  cases=lambda rng: [Case("a", (np.array([1.0, 2.0]) + rng.random(),)),
                                     Case("b", (np.array([3.0]) + rng.random(),))],
                  expected=lambda x: 2 * x)
    return ValueCheck(**{**fields, **changes})


def tiny(**changes) -> Assignment:
    fields = dict(name="tiny", title="Tiny", exercises=[Exercise("ex1", "One", ("answer:ex1",))],
                  checks=[double_check()], answer_points={"answer:ex1": 1})
    return Assignment(**{**fields, **changes})


# --------------------------------------------------------------------------- plug-ins validated at load

def subjects(error: AssignmentInvalid) -> list[str]:
    return [p.subject for p in error.problems]


def test_a_sound_assignment_has_no_problems():
    assert tiny().problems() == [] and tiny().reference_problems() == []
    assert load_assignment("attention_pooling").problems() == []


@pytest.mark.parametrize("changes, subject, words", [
    (dict(checks=[double_check(expected=None)]), "ex1.double", "no reference"),
    (dict(checks=[double_check(misconceptions=(Misconception("m", "wrong"),))]), "ex1.double", "exactly one of"),
    (dict(checks=[CustomCheck(id="ex1.custom", exercise="ex1", title="c", points=1)]), "ex1.custom", "make_data"),
    (dict(checks=[double_check(), double_check()]), "ex1.double", "more than one check"),
    (dict(checks=[double_check(exercise="ex9")]), "ex1.double", "ex9"),
    (dict(answer_points={"answer:ex1": 1, "answer:ex7": 2}), "answer:ex7", "no exercise declares"),
    (dict(figures=[Figure("f1", "ex1", "t"), Figure("f1", "ex1", "t")]), "f1", "more than one figure"),
    (dict(figures=[Figure("f2", "ex5", "t")]), "f2", "ex5"),
    (dict(limits={"cell_timout": 3}), "limits", "cell_timout"),
])
def test_each_unusable_declaration_is_refused_naming_the_assignment_and_what(changes, subject, words):
    with pytest.raises(AssignmentInvalid) as refused:
        tiny(**changes).validate()
    assert refused.value.assignment == "tiny" and subject in subjects(refused.value)
    assert "tiny" in str(refused.value) and words in str(refused.value)


def test_every_problem_is_reported_at_once():
    broken = tiny(checks=[double_check(expected=None), double_check(id="ex1.other", exercise="ex2")],
                  answer_points={"answer:zz": 1})
    with pytest.raises(AssignmentInvalid) as refused:
        broken.validate()
    assert set(subjects(refused.value)) == {"ex1.double", "ex1.other", "answer:zz"}


def test_a_reference_that_fails_on_the_public_inputs_is_found():
    def broken(x):
        raise ZeroDivisionError("the instructor's bug")

    problems = tiny(checks=[double_check(expected=broken)]).reference_problems()
    assert [p.subject for p in problems] == ["ex1.double"] and "ZeroDivisionError" in problems[0].message


BROKEN_CHECKS = textwrap.dedent('''
    import numpy as np
    from grader.assignment import Assignment, Exercise
    from grader.checks import Case, ValueCheck

    def reference(x):
        raise ValueError("not written yet")

    ASSIGNMENT = Assignment(name="broken", title="Broken", exercises=[Exercise("ex1", "One")], checks=[
        ValueCheck(id="ex1.double", exercise="ex1", title="double", points=1, function="double",
                   cases=lambda rng: [Case("a", (np.array([rng.random()]),))], expected=reference)])
''')


@pytest.fixture
def broken_assignment(tmp_path) -> Path:
    folder = tmp_path / f"broken_{tmp_path.name}"  # a package name of its own (assignment modules are cached)
    folder.mkdir()
    (folder / "checks.py").write_text(BROKEN_CHECKS)
    return folder


def test_loading_an_assignment_whose_reference_fails_refuses_it(broken_assignment):
    with pytest.raises(AssignmentInvalid) as refused:
        load_assignment(broken_assignment)
    assert refused.value.assignment == "broken" and subjects(refused.value) == ["ex1.double"]


LEAKY_VERDICTS_CHECKS = textwrap.dedent('''
    from grader.assignment import Assignment, Exercise
    from grader.checks import Call, CustomCheck
    from .verdicts import VERDICT

    ASSIGNMENT = Assignment(name="leaky", title="Leaky", exercises=[Exercise("ex1", "One")], checks=[
        CustomCheck(id="ex1.custom", exercise="ex1", title="custom", points=1,
                    make_calls=lambda rng: [Call("f", (rng.random(),))], make_data=lambda calls: None,
                    verdict=VERDICT)])
''')
LEAKY_VERDICTS = textwrap.dedent('''
    from grader.checks import CustomVerdict, Verdict
    from . import answers  # the instructor's module, which a student's package would then hold
    VERDICT = CustomVerdict("leaky", type(None), lambda data, outcomes: Verdict(1.0, "ok"))
    VERDICTS = (VERDICT,)
''')


def test_a_verdicts_module_importing_the_instructors_code_is_refused_before_it_runs(tmp_path):
    folder = tmp_path / f"leaky_{tmp_path.name}"
    folder.mkdir()
    (folder / "checks.py").write_text(LEAKY_VERDICTS_CHECKS)
    (folder / "verdicts.py").write_text(LEAKY_VERDICTS)
    (folder / "answers.py").write_text("raise AssertionError('imported: the answers would have shipped')\n")
    with pytest.raises(AssignmentInvalid) as refused:
        load_assignment(folder)
    assert refused.value.assignment == folder.name and ".answers" in str(refused.value)


def test_grade_refuses_an_invalid_assignment_before_grading_anyone(monkeypatch, tmp_path, broken_assignment, capsys):
    notebook = tmp_path / "student.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    code = cli.main(["grade", str(notebook), "--out", str(tmp_path / "out"), "--public", "--assignment",
                     str(broken_assignment), "--sandbox", "off"])
    assert code == cli.EXIT_USAGE
    message = capsys.readouterr().err
    assert "broken" in message and "ex1.double" in message and "not written yet" in message
    assert not (tmp_path / "out").exists(), "nobody was graded"


# --------------------------------------------------------------------------- one configuration

def test_limits_come_from_the_command_line_then_the_assignment_then_the_engine():
    assignment = {"cell_timeout": 30.0, "budget": 900.0}
    said = command_line_limits(cell_timeout=5.0)
    limits = resolve_limits(assignment, said)
    assert (limits.cell_timeout, limits.budget, limits.call_timeout) == (5.0, 900.0, ENGINE_LIMITS.call_timeout)
    assert resolve_limits() == ENGINE_LIMITS
    assert repr(resolve_limits({"cell_timeout": 120, "budget": 600})) == repr(ENGINE_LIMITS)  # 600 is 600.0
    assert resolve_limits(None, command_line_limits(memory_gib=2)).memory_bytes == 2 * 2**30
    with pytest.raises(ValueError, match="no such limit"):
        resolve_limits({"budgett": 1})


def parse(*argv):
    return cli.build_parser().parse_args(["grade", "x.ipynb", "--out", "o", *argv])


def test_the_command_line_says_nothing_unless_told_so_an_assignments_settings_apply():
    args = parse()
    assert (args.assignment, args.cell_timeout, args.call_timeout, args.budget, args.memory) == (None,) * 5
    assignment = tiny(cell_timeout=33.0, budget=77.0, limits={"output_cap": 1234})
    limits = commands.execution_options(commands.settings_from(args), assignment).limits
    assert (limits.cell_timeout, limits.budget, limits.output_cap) == (33.0, 77.0, 1234)
    limits = commands.execution_options(commands.settings_from(parse("--budget", "9")), assignment).limits
    assert (limits.cell_timeout, limits.budget) == (33.0, 9.0)
    assert commands.execution_options(commands.settings_from(args), tiny()).limits == ENGINE_LIMITS


def test_the_gradescope_zip_keeps_only_the_options_given():
    assert cli.run_options_argv(parse("--budget", "100")) == ["--sandbox", "auto", "--budget", "100", "--lang", "en"]


# --------------------------------------------------------------------------- which assignment

def notebook_naming(path: Path, name: str | None) -> Path:
    nb = nbformat.v4.new_notebook()
    if name:
        nb.metadata["grader"] = {"assignment": name}
    nbformat.write(nb, path)
    return path


def test_the_assignment_is_read_from_the_notebooks_metadata(tmp_path, monkeypatch):
    monkeypatch.setattr(installed, "installed_assignments", lambda: ["one", "two"])
    assert infer_assignment([notebook_naming(tmp_path / "a.ipynb", "two"), notebook_naming(tmp_path / "b.ipynb", None)]) == "two"


def test_without_metadata_the_only_installed_assignment_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(installed, "installed_assignments", lambda: ["attention_pooling"])
    assert infer_assignment([notebook_naming(tmp_path / "a.ipynb", None)]) == "attention_pooling"


def test_an_assignment_that_cannot_be_inferred_is_said_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(installed, "installed_assignments", lambda: ["one", "two"])
    plain = notebook_naming(tmp_path / "a.ipynb", None)
    with pytest.raises(AssignmentUnknown) as unknown:
        infer_assignment([plain])
    assert unknown.value.candidates == ("one", "two") and "--assignment" in str(unknown.value)
    with pytest.raises(AssignmentUnknown, match="different assignments in their metadata equally often") as tie:
        infer_assignment([notebook_naming(tmp_path / "b.ipynb", "one"), notebook_naming(tmp_path / "c.ipynb", "two")])
    assert tie.value.candidates == ("one", "two") and "one ×1, two ×1" in str(tie.value)
    assert cli.main(["grade", str(plain), "--out", str(tmp_path / "out"), "--public"]) == cli.EXIT_USAGE
    assert "--assignment" in capsys.readouterr().err and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- catalogs

PO = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n{entries}'


def write_po(folder: Path, entries: dict[str, str]) -> Path:
    po = folder / "zh" / "LC_MESSAGES" / "grader.po"
    po.parent.mkdir(parents=True)
    po.write_text(PO.format(entries="".join(f'msgid "{k}"\nmsgstr "{v}"\n\n' for k, v in entries.items())),
                  encoding="utf-8")
    return folder


def test_an_assignments_catalog_overrides_the_engines_strings(tmp_path):
    engine = write_po(tmp_path / "engine", {"Hint: %(text)s": "engine", "Only the engine's": "engine's own"})
    own = write_po(tmp_path / "assignment", {"Hint: %(text)s": "assignment"})
    merged = catalog("zh", (own, engine))  # use_language's order: the assignment's folder, then the engine's
    assert merged.gettext("Hint: %(text)s") == "assignment"
    assert merged.gettext("Only the engine's") == "engine's own"


# --------------------------------------------------------------------------- enumerated words

def test_statuses_and_kinds_are_enums_that_serialise_as_before():
    result = CheckResult("c", "t", CheckStatus.PASSED, 1.0, 1.0, "m")
    assert json.loads(json.dumps(result.to_json()))["status"] == "passed" and result.passed
    assert CheckStatus("failed") is CheckStatus.FAILED and f"{CellStatus.KERNEL_DIED}" == "kernel-died"
    assert {"timeout": 1}[ErrorKind.TIMEOUT] == 1 and "worker-failed" in UNGRADABLE
    assert GradeError(ErrorKind.CELL_ERROR, "x").to_json() == {"kind": "cell-error", "message": "x"}
    assert [s.value for s in OutcomeStatus] == ["ok", "error", "missing", "timeout", "kernel-died", "invalid", "not-run"]
    assert [s.value for s in AnswerStatus] == ["answered", "empty", "missing"]


def test_every_error_kind_has_a_title():
    assert set(ERROR_TITLES) == set(ErrorKind)


def test_errors_of_the_grader_are_one_family():
    assert issubclass(AssignmentInvalid, GraderError) and issubclass(AssignmentUnknown, GraderError)
    assert assignment_module.AssignmentError is AssignmentInvalid


# --------------------------------------------------------------------------- a misconception's variant that fails

def test_a_variant_that_raises_only_means_its_misconception_is_not_recognised():
    def fragile(x):
        if x.size == 1:
            raise IndexError("the variant cannot handle one point")
        return 3 * x

    check = double_check(misconceptions=(Misconception("triples", "tripled", variant=fragile),))
    assignment = tiny(checks=[check])
    planned = plan_probes(assignment, GradingOptions())[0]
    right, wrong = planned.calls
    outcomes = {planned.probe_calls[0].id: ProbeOutcome(planned.probe_calls[0].id, "ok", value=2 * right.args[0]),
                planned.probe_calls[1].id: ProbeOutcome(planned.probe_calls[1].id, "ok", value=5 * wrong.args[0])}
    result = judge_check(planned, outcomes)
    assert result.status == CheckStatus.FAILED and result.score == 1.0, result.message  # one case of two passed
    assert result.diagnosis is None


def test_the_engine_names_no_assignment():
    """No default assignment anywhere in the engine (the CLI's --assignment, self_check): it is named or inferred."""
    engine = Path(cli.__file__).parent
    naming = [str(p.relative_to(engine)) for p in engine.rglob("*.py") if "attention_pooling" in p.read_text()]
    assert naming == []


def test_the_assignment_most_notebooks_name_is_graded_and_one_odd_notebook_stops_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(installed, "installed_assignments", lambda: ["one", "two"])
    notebooks = [notebook_naming(tmp_path / f"{i}.ipynb", name) for i, name in enumerate(["one", "one", "two", None])]
    assert infer_assignment(notebooks) == "one"


@pytest.mark.parametrize("name", ["../elsewhere", "/tmp/evil", "assignments/one", "one.checks", "one/", " one",
                                  "One", "ｏｎｅ", "one\x00", "__init__", ".", ""])
def test_metadata_selects_only_an_installed_assignment_by_its_exact_name(tmp_path, monkeypatch, name):
    """A path, a dotted or padded name, a look-alike: none selects anything, however the folders are named."""
    monkeypatch.setattr(installed, "installed_assignments", lambda: ["one", "two"])
    assert not installed.is_installed(name)
    notebooks = [notebook_naming(tmp_path / "a.ipynb", name), notebook_naming(tmp_path / "b.ipynb", "two")]
    assert infer_assignment(notebooks) == "two"


def test_an_installed_folder_whose_name_is_no_identifier_is_no_assignment(tmp_path, monkeypatch):
    for folder in ("good_one", "not-an-identifier", "dotted.name"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "checks.py").write_text("")
    monkeypatch.setattr(installed, "ASSIGNMENTS_DIR", tmp_path)
    assert installed.installed_assignments() == ["good_one"]


def test_a_notebook_of_another_assignment_says_which_and_what_to_do(monkeypatch):
    monkeypatch.setattr(installed, "installed_assignments", lambda: ["one", "two"])
    assert installed.wrong_assignment(None, "one") is None and installed.wrong_assignment("one", "one") is None
    assert installed.wrong_assignment("two", "one") == (
        "This notebook names assignment two in its metadata, but this run grades one, so it was not graded: hand "
        "in the notebook of one (an instructor grades this one with --assignment two).")
    assert installed.wrong_assignment("/tmp/evil", "one") == (
        "This notebook names '/tmp/evil' as its assignment in its metadata, which is not the name of an installed "
        "assignment (installed: one, two), so it was not graded: hand in the notebook of one, made from its "
        "template.")
    long = installed.wrong_assignment("x" * 500, "one")
    assert "x" * 79 + "…" in long and "x" * 80 not in long


def test_an_installed_name_never_means_a_folder_of_that_name_in_the_current_directory(tmp_path, monkeypatch):
    """The name a notebook selects (or a command line gives) loads the installed assignment, even from a folder
    where a student's folder of that name holds a checks.py; a folder path still names a folder."""
    marker = tmp_path / "IMPORTED"
    impostor = tmp_path / "attention_pooling"
    impostor.mkdir()
    (impostor / "checks.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.chdir(tmp_path)
    assert installed.assignment_dir("attention_pooling") == installed.ASSIGNMENTS_DIR / "attention_pooling"
    assert commands.assignment_dir("attention_pooling") == installed.ASSIGNMENTS_DIR / "attention_pooling"
    assert installed.assignment_dir(str(impostor)) == impostor and installed.assignment_dir("./attention_pooling") \
        == Path("attention_pooling")
    assert assignment_module.load_assignment("attention_pooling", check_references=False).root == \
        (installed.ASSIGNMENTS_DIR / "attention_pooling").resolve()
    assert not marker.exists()
