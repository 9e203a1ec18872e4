"""The hostile tests' own soundness, checked without a sandbox: no parametrised case without an expectation.

tests/test_hostile.py needs bubblewrap and a long batch; what it expects of each corpus entry is data,
checked here on every machine, so a case that cannot fail is caught where it is written.
"""

import pytest

from tests import test_hostile
from tests.hostile_corpus import corpus


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
