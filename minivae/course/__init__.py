"""The course machinery: feedback for exercises, the exercise generator and the grader.

- :mod:`minivae.course.feedback`: checks that graded test cells call; each failure raises an
  :class:`~minivae.course.feedback.ExerciseError` whose message says, in a learner's words,
  what is wrong ("your KL has the wrong sign", "expected shape (4, 3), got (3, 4)"), and
  :func:`~minivae.course.feedback.call`, which runs a learner's function on copies of its inputs
  ("your function changed its argument `mu` in place") with the course's version of any earlier
  exercise it relies on.
- ``minivae.course.chNN_name`` (one module per problem set): the graded checks of chapter NN —
  the reference maths, the usual slips recognised from the numbers, and one
  ``check_<exercise>(fn, ...)`` per exercise — so the notebooks' test cells show no answers.
- :mod:`minivae.course.generate`: writes ``exercises/NN_name.ipynb`` from
  ``solutions/NN_name.ipynb`` (``python -m minivae.course exercises [--check]``).
- :mod:`minivae.course.grader`: runs a notebook and scores its graded cells
  (``python -m minivae.course grade exercises/01_autoencoders.ipynb``).

Only :mod:`~minivae.course.feedback` is imported here; the generator and the grader need the
course dependencies (nbformat, nbclient) and are imported on use.
"""

from .feedback import (
    ExerciseError,
    call,
    check_close,
    check_finite,
    check_gradient,
    check_shape,
    check_type,
    passed,
    unpack,
)

__all__ = [
    "ExerciseError",
    "call",
    "check_close",
    "check_finite",
    "check_gradient",
    "check_shape",
    "check_type",
    "passed",
    "unpack",
]
