"""An autograder for Jupyter notebook exercises.

Kept import-light on purpose: the sandboxed worker imports ``grader.worker`` and must not
pull in the judging side (assignments, reference solutions) with it.
"""

from .version import __version__  # noqa: F401 (the package's public version)


def self_check(exercise=None, **kwargs):
    """Run the public checks of one exercise (or all) against this notebook's live session, judged from the
    assignment's bundle beside the notebook (see :func:`grader.selfcheck.self_check`)."""
    from .selfcheck import self_check as run

    return run(exercise, **kwargs)


def grade_submission(*args, **kwargs):
    """See :func:`grader.pipeline.grade_submission`."""
    from .pipeline import grade_submission as run

    return run(*args, **kwargs)
