"""The hostile tests' own soundness, checked without a sandbox: no parametrised case without an expectation;
and malformed notebook files, which never reach a kernel, each an invalid notebook with a reason.

tests/test_hostile.py needs bubblewrap and a long batch; what it expects of each corpus entry is data,
checked here on every machine, so a case that cannot fail is caught where it is written.
"""

import pytest

from grader.load import NotebookRejected, load_notebook
from grader.model import ErrorKind
from grader.pipeline import GradingOptions, grade_submission
from tests import test_hostile
from tests.hostile_corpus import corpus, malformed_notebooks


ENTRIES = corpus([], [], [])


@pytest.mark.parametrize("name", test_hostile.REPORTED)
def test_every_parametrised_case_expects_an_error_kind_or_words(name):
    _, kinds, words = ENTRIES[name]
    assert kinds or words, f"{name}: an empty expectation passes whatever the grader does"
    assert all(word.strip() for word in words), f"{name}: an empty word is in every report"


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_corpus_entry_is_held_to_some_expectation(name):
    covering = test_hostile.COVERED_ELSEWHERE.get(name)
    assert name in test_hostile.REPORTED or name in test_hostile.FULL_MARKS or covering, name
    assert covering is None or callable(getattr(test_hostile, covering, None)), covering


def test_the_expectations_name_only_corpus_entries():
    assert set(test_hostile.FULL_MARKS) | set(test_hostile.COVERED_ELSEWHERE) <= set(ENTRIES)


MALFORMED = malformed_notebooks()


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_notebooks_are_invalid_notebooks_with_a_reason(name, tmp_path, assignment):
    """Whatever a file holds, loading ends in NotebookRejected (never another exception, never grader-failed)."""
    path = tmp_path / f"{name}.ipynb"
    path.write_text(MALFORMED[name], encoding="utf-8", errors="surrogatepass")  # a lone \ud800 is written escaped
    with pytest.raises(NotebookRejected) as rejected:
        load_notebook(path)
    assert str(rejected.value) and "Error" not in str(rejected.value).split("(")[0]
    result = grade_submission(path, assignment, GradingOptions(secret="s"))
    assert [e.kind for e in result.errors] == [ErrorKind.INVALID_NOTEBOOK] and result.score == 0


@pytest.mark.parametrize("name, words", [("deep_cells", "levels deep"), ("deep_metadata", "levels deep"),
                                         ("deep_objects", "levels deep"), ("long_number", "digits"),
                                         ("lone_surrogate_in_source", "not valid Unicode")])
def test_the_reason_is_said_in_words(name, words, tmp_path):
    path = tmp_path / f"{name}.ipynb"
    path.write_text(MALFORMED[name], encoding="utf-8")
    with pytest.raises(NotebookRejected, match=words):
        load_notebook(path)
