"""Checks for graded exercise cells, with messages in a learner's words.

Every failed check raises :class:`ExerciseError` (a subclass of ``AssertionError``, so nbgrader
and pytest count it as a failed test) whose message names the value, says what was expected and
what was given, with shapes and numbers, and, where it can tell, which usual mistake produced it::

    from minivae.course import feedback
    from minivae.kl import kl_standard_normal as reference_kl

    feedback.check_close("kl", kl(mu, logvar), reference_kl(mu, logvar),
                         hints=[(-expected, "your KL has the wrong sign")])
    feedback.passed("kl matches the closed form")

``check_close`` recognises common slips on its own (a flipped sign, a transposed matrix,
a factor 2, log2 where the natural log belongs, a sum over a named axis where a mean belongs),
in addition to the hints it is given; a hint is given only when the numbers match it.

:func:`call` runs a learner's function the way every graded test should: on copies of its
arguments (so the reference, computed before, cannot be spoiled), with the library's version of
any earlier exercise it relies on (``using=``), and with a message in the learner's words when the
function is not written yet, changes an argument in place, or raises.
Only NumPy is used.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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

Hint = tuple[Any, str]


class ExerciseError(AssertionError):
    """A check in a graded cell failed; the message says what is wrong and how to look for it."""


# ----------------------------------------------------------------------------- formatting


def _num(v: Any) -> str:
    """A number in at most 6 significant digits: 0.333333, 1.5e-07, 12."""
    return f"{float(v):.6g}"


def _pair(expected: Any, got: Any) -> tuple[str, str]:
    """Both numbers in 6 significant digits, or in 12 where 6 would show them equal."""
    a, b = _num(expected), _num(got)
    if a == b:
        a, b = f"{float(expected):.12g}", f"{float(got):.12g}"
    return a, b


def _describe(got: Any) -> str:
    """What a value is, in words: 'None', 'a list of length 3', 'an array of shape (4, 3)'."""
    if got is None:
        return "None"
    if isinstance(got, np.ndarray):
        if got.ndim == 0:
            return f"a 0-d array ({got.dtype}) holding {got.item()!r}"
        return f"an array of shape {got.shape} ({got.dtype})"
    if isinstance(got, bool | np.bool_):
        return f"a bool ({got})"
    if isinstance(got, numbers.Number):
        return f"a {type(got).__name__} ({got!r})"
    if isinstance(got, list | tuple | dict | set):
        return f"a {type(got).__name__} of length {len(got)}"
    module = type(got).__module__.split(".")[0]
    if module == "cupy":
        return f"a CuPy array of shape {got.shape} (convert with .get() or cupy.asnumpy)"
    return f"a {type(got).__name__}"


def _none_message(name: str) -> str:
    return (
        f"{name}: got None — does your function end with `return ...`? "
        "(a function without a return statement gives None)"
    )


def _type_name(t: type) -> str:
    if t is np.ndarray:
        return "a NumPy array"
    if t is float:
        return "a single number (float)"
    if t is int:
        return "an integer"
    return f"a {t.__module__ + '.' if t.__module__ not in ('builtins',) else ''}{t.__name__}"


# ----------------------------------------------------------------------------- type


def _is_real_scalar(got: Any) -> bool:
    if isinstance(got, bool | np.bool_):
        return False
    if isinstance(got, numbers.Real):
        return True
    return isinstance(got, np.ndarray) and got.ndim == 0 and got.dtype.kind in "iuf"


def check_type(name: str, got: Any, expected_type: type | tuple[type, ...]) -> None:
    """Check that ``got`` is of ``expected_type`` (a type or a tuple of types).

    ``float`` accepts any real number (Python int or float, NumPy scalars, 0-d arrays), since
    ``np.sum(...)`` returns ``np.float64`` and ``x.mean()`` on float32 returns ``np.float32``;
    ``int`` accepts Python and NumPy integers but not bools.
    """
    types = expected_type if isinstance(expected_type, tuple) else (expected_type,)
    if got is None and type(None) not in types:
        raise ExerciseError(_none_message(name))
    for t in types:
        if t is float and _is_real_scalar(got):
            return
        if t is int and isinstance(got, numbers.Integral) and not isinstance(got, bool | np.bool_):
            return
        if t not in (float, int) and isinstance(got, t):
            return
    wanted = " or ".join(_type_name(t) for t in types)
    message = f"{name}: expected {wanted}, got {_describe(got)}"
    if float in types and isinstance(got, np.ndarray):
        message += " — did you forget to sum or average to a single number?"
    elif np.ndarray in types and isinstance(got, list | tuple):
        message += " — build it with NumPy (e.g. np.asarray(...) or array operations)"
    elif np.ndarray in types and _is_real_scalar(got):
        message += " — an array was expected here; did you sum or average too early?"
    raise ExerciseError(message)


# ----------------------------------------------------------------------------- shape


def _shape_of(name: str, got: Any) -> tuple[int, ...]:
    if got is None:
        raise ExerciseError(_none_message(name))
    shape = getattr(got, "shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    try:
        return tuple(np.shape(got))
    except ValueError as err:  # ragged nested lists
        raise ExerciseError(f"{name}: expected an array, got {_describe(got)} ({err})") from None


def _matches(shape: tuple[int, ...], expected: Sequence[int | None]) -> bool:
    return len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected, strict=True)
    )


def _shape_hint(got: tuple[int, ...], expected: tuple[int | None, ...]) -> str:
    """Which usual slip turns ``expected`` into ``got`` ('' if none is recognised)."""
    if None in expected:
        return ""
    size_got = int(np.prod(got)) if got else 1
    size_expected = int(np.prod(expected)) if expected else 1
    if not expected and got:
        return " — a single number was expected: did you forget to sum or average?"
    if len(got) == len(expected) >= 2 and tuple(reversed(got)) == expected:
        return " — looks transposed (rows and columns swapped)"
    if len(got) == len(expected) + 1 and tuple(s for s in got if s != 1) == tuple(
        s for s in expected if s != 1
    ):
        return " — there is an extra axis of length 1 (keepdims=True, or a reshape to (n, 1)?)"
    if len(got) + 1 == len(expected) and tuple(s for s in got if s != 1) == tuple(
        s for s in expected if s != 1
    ):
        return " — an axis of length 1 is missing (use keepdims=True, or reshape)"
    if len(expected) >= 1 and got == expected[1:]:
        return (
            f" — the leading axis (length {expected[0]}, usually the batch) is missing: "
            "did you sum or average over it?"
        )
    if len(expected) >= 1 and got == expected[:-1]:
        return (
            f" — the last axis (length {expected[-1]}) is missing: did you sum or average "
            "over it too early?"
        )
    if len(got) == 2 and len(expected) == 1 and got == (expected[0], expected[0]):
        return " — looks like an unintended broadcast: (n,) combined with (n, 1) gives (n, n)"
    if expected and len(got) == len(expected) + 1 and got[1:] == expected:
        return " — an extra leading axis: did an operation broadcast where it should not?"
    if size_got == size_expected:
        return " — the same number of entries, arranged differently (reshape instead of transpose?)"
    return ""


def check_shape(name: str, got: Any, expected_shape: Sequence[int | None]) -> None:
    """Check that the array ``got`` has shape ``expected_shape`` (``None`` matches any length).

    The message names the shapes and, where it can tell, the slip: transposed, a missing batch
    axis, an extra axis of length 1, an unintended broadcast.
    """
    expected = tuple(None if e is None else int(e) for e in expected_shape)
    shape = _shape_of(name, got)
    if _matches(shape, expected):
        return
    shown = (
        "("
        + ", ".join("any" if e is None else str(e) for e in expected)
        + (",)" if len(expected) == 1 else ")")
    )
    raise ExerciseError(
        f"{name}: expected shape {shown}, got {shape}{_shape_hint(shape, expected)}"
    )


# ----------------------------------------------------------------------------- finite


def _as_float_array(name: str, got: Any) -> np.ndarray:
    if got is None:
        raise ExerciseError(_none_message(name))
    if type(got).__module__.split(".")[0] == "cupy":
        got = got.get()
    try:
        arr = np.asarray(got)
    except ValueError as err:
        raise ExerciseError(f"{name}: expected numbers, got {_describe(got)} ({err})") from None
    if arr.dtype.kind == "c":
        raise ExerciseError(f"{name}: expected real numbers, got complex values ({arr.dtype})")
    if arr.dtype.kind not in "biuf":
        raise ExerciseError(f"{name}: expected numbers, got {_describe(got)}")
    return arr.astype(np.float64)


def check_finite(name: str, got: Any) -> None:
    """Check that every entry of ``got`` is finite (no NaN, no ±inf)."""
    arr = _as_float_array(name, got)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(bad.sum()) - n_nan
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN")
    if n_inf:
        parts.append(f"{n_inf} infinite")
    what = " and ".join(parts)
    advice = (
        " — look for log of 0 or of a negative number, exp of a large number, or a division "
        "by 0 (use a stable form, e.g. log-sigmoid instead of log(sigmoid(x)))"
    )
    if arr.ndim == 0:
        raise ExerciseError(f"{name}: expected a finite number, got {_num(arr)}{advice}")
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ExerciseError(
        f"{name}: {what} of {arr.size} entries (first at index {first}, value {_num(arr[first])})"
        f"{advice}"
    )


# ----------------------------------------------------------------------------- close


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


LN2 = math.log(2.0)
LN10 = math.log(10.0)

# what a named size is, and the axis it counts: sizes={"batch": 4, "latent": 3, ...}
_SIZE_WORDS = {
    "batch": ("the batch size", "the batch"),
    "latent": ("the number of latent dimensions", "the latent dimensions"),
    "pixels": ("the number of pixels", "the pixels"),
    "features": ("the number of features", "the features"),
    "samples": ("the number of samples", "the samples"),
    "outputs": ("the number of outputs", "the outputs"),
}


def _size_words(name: str) -> tuple[str, str]:
    return _SIZE_WORDS.get(name, (f"the number of {name}", f"the {name}"))


def _size_hints(expected: np.ndarray, sizes: Mapping[str, int]) -> list[Hint]:
    """n * expected and expected / n for each named size n > 2, naming the axis it counts.

    Sizes that are equal are named together ("4 is the batch size and the number of latent
    dimensions"), so a hint never blames one axis when another gives the same number.
    """
    by_value: dict[int, list[str]] = {}
    for name, n in sizes.items():
        by_value.setdefault(int(n), []).append(name)
    hints: list[Hint] = []
    for n, names in by_value.items():
        if n <= 2:
            continue
        what = " and ".join(_size_words(name)[0] for name in names)
        axes = " or ".join(_size_words(name)[1] for name in names)
        if names == ["batch"]:
            large = (
                f"{n} times too large — {n} is the batch size: summed over the batch where a "
                "mean belongs? (the loss is averaged over the batch)"
            )
            small = (
                f"{n} times too small — {n} is the batch size: divided by it where a sum "
                "belongs, or averaged twice?"
            )
        else:
            large = f"{n} times too large — {n} is {what}: summed over {axes} where a mean belongs?"
            small = (
                f"{n} times too small — {n} is {what}: averaged over {axes} where a sum belongs "
                f"(or divided by {n} once too often)?"
            )
        hints.append((n * expected, large))
        hints.append((expected / n, small))
    return hints


def _common_hints(expected: np.ndarray, sizes: Mapping[str, int]) -> list[Hint]:
    """Candidate wrong answers for the usual slips, with the message to give for each."""
    hints: list[Hint] = []
    if np.any(expected != 0):
        hints.append((-expected, "the sign is flipped (you got minus the expected value)"))
    if expected.ndim == 2 and not _close(expected, expected.T, 1e-12, 0.0):
        hints.append(
            (
                expected.T,
                "looks transposed: your values are the expected ones with rows and columns "
                "swapped (check the order in the matrix product, e.g. x.T @ dout)",
            )
        )
    if np.any(expected != 0):
        hints.append(
            (
                2.0 * expected,
                "off by a factor 2 (you got twice the expected value) — a missing 0.5, "
                "or a term counted twice?",
            )
        )
        hints.append(
            (
                0.5 * expected,
                "off by a factor 2 (you got half the expected value) — an extra 0.5?",
            )
        )
        hints.append(
            (
                expected / LN2,
                "your value is 1/ln 2 = 1.443 times the expected one: bits instead of nats — "
                "np.log2 where the natural log np.log belongs (this course works in nats)",
            )
        )
        hints.append(
            (
                expected * LN2,
                "your value is ln 2 = 0.6931 times the expected one: nats and bits mixed "
                "(np.log2 in one part, np.log in the other)? Use the natural log everywhere",
            )
        )
        hints.append(
            (
                expected / LN10,
                "your value is 1/ln 10 = 0.4343 times the expected one: np.log10 where the "
                "natural log np.log belongs",
            )
        )
        hints += _size_hints(expected, sizes)
    return hints


def _matching_message(
    arr: np.ndarray,
    exp: np.ndarray,
    groups: Sequence[Sequence[tuple[np.ndarray, str]]],
    rtol: float,
    atol: float,
) -> str | None:
    """The message of the hints that ``arr`` matches, from the first group with a match.

    A candidate indistinguishable from the expected value is skipped (its mistake cannot be
    told from a small numerical error). When several candidates of one group match with
    different messages, all are named: a hint never blames one slip when another gives the
    same numbers.
    """
    for group in groups:
        found: list[str] = []
        for candidate, message in group:
            if candidate.shape != arr.shape or not np.all(np.isfinite(candidate)):
                continue
            if _close(candidate, exp, rtol, atol):
                continue
            if _close(arr, candidate, rtol, atol) and message not in found:
                found.append(message)
        if len(found) == 1:
            return found[0]
        if found:
            return "either " + "; or ".join(found)
    return None


def _constant_ratio(got: np.ndarray, expected: np.ndarray) -> float | None:
    """r if got == r * expected entrywise (to 1e-6), else None."""
    nonzero = np.abs(expected) > 1e-12 * max(1.0, float(np.max(np.abs(expected))))
    if not nonzero.any() or np.any(np.abs(got[~nonzero]) > 1e-9):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = got[nonzero] / expected[nonzero]
    r = float(np.median(ratios))
    if r == 0 or not np.allclose(ratios, r, rtol=1e-6, atol=0):
        return None
    return r


def check_close(
    name: str,
    got: Any,
    expected: Any,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    hints: Sequence[Hint] | None = None,
    batch_size: int | None = None,
    sizes: Mapping[str, int] | None = None,
    probabilities: bool | str = False,
    common_hints: bool = True,
    hint_rtol: float | None = None,
) -> None:
    """Check that ``got`` equals ``expected`` to ``|got - expected| <= atol + rtol * |expected|``.

    Shape and finiteness are checked first. When ``got`` differs, the ``(candidate, message)``
    pairs in ``hints`` are tried, then (``common_hints=True``) the common slips: minus the
    expected value, its transpose, twice or half of it, 1/ln 2 or ln 2 times it (bits against
    nats), and, for each named size in ``sizes`` (``{"batch": 4, "latent": 3}``;
    ``batch_size=n`` is ``sizes={"batch": n}``), n times it or 1/n of it. A message is given
    only for a candidate that ``got`` matches and that differs from ``expected``; when several
    match, all are named. With ``probabilities`` (true, or the advice to give), entries outside
    [0, 1] are reported as such. Otherwise the message gives the number of wrong entries and
    the worst one. Hints are matched to ``hint_rtol`` (default ``max(10 * rtol, 1e-9)``).
    """
    if got is None:
        raise ExerciseError(_none_message(name))
    exp = _as_float_array(f"{name} (reference)", expected)
    arr = _as_float_array(name, got)
    if exp.ndim == 0 and arr.size == 1 and arr.ndim > 0:
        arr = arr.reshape(())
    named = dict(sizes or {})
    if batch_size is not None:
        named.setdefault("batch", int(batch_size))
    given: list[Hint] = [(np.asarray(c, dtype=np.float64), m) for c, m in (hints or [])]
    common: list[Hint] = _common_hints(exp, named) if common_hints else []
    groups = [given, common]
    h_rtol = max(10 * rtol, 1e-9) if hint_rtol is None else hint_rtol
    h_atol = max(atol, 1e-12)

    if arr.shape != exp.shape:
        if np.all(np.isfinite(arr)):
            message = _matching_message(arr, exp, groups, h_rtol, h_atol)
            if message is not None:
                raise ExerciseError(
                    f"{name}: {message} (expected shape {exp.shape}, got {arr.shape})"
                )
        check_shape(name, arr, exp.shape)
    check_finite(name, arr)
    if _close(arr, exp, rtol, atol):
        return
    message = _matching_message(arr, exp, groups, h_rtol, h_atol)
    if message is not None:
        raise ExerciseError(f"{name}: {message}")
    if probabilities and (np.any(arr < 0) or np.any(arr > 1)):
        outside = int(np.sum((arr < 0) | (arr > 1)))
        with np.errstate(over="ignore"):
            as_probabilities = 1.0 / (1.0 + np.exp(-arr))
        if _close(as_probabilities, exp, h_rtol, h_atol):
            advice = "these are logits: the sigmoid of your values gives the expected ones"
        elif isinstance(probabilities, str):
            advice = probabilities
        else:
            advice = "logits where probabilities belong? (the sigmoid turns logits into them)"
        raise ExerciseError(
            f"{name}: {outside} of {arr.size} entries lie outside [0, 1] (from "
            f"{_num(arr.min())} to {_num(arr.max())}), but these are probabilities — {advice}"
        )
    if exp.size and np.all(exp != 0) and np.all(arr == 0):
        raise ExerciseError(
            f"{name}: every entry is 0 — is a step of the computation missing, or is the result "
            "overwritten before it is returned?"
        )

    tolerance = f"(tolerance: rtol={rtol:g}, atol={atol:g})"
    ratio = _constant_ratio(arr, exp)
    if ratio is not None and abs(ratio - 1) < 1e-3:
        ratio = None  # "1 times the expected one" says nothing
    if exp.ndim == 0:
        message = (
            f"{name}: expected {_pair(exp, arr)[0]}, got {_pair(exp, arr)[1]} "
            f"(difference {_num(arr - exp)}{f', ratio {ratio:.4g}' if ratio else ''}) {tolerance}"
        )
        raise ExerciseError(message)
    diff = np.abs(arr - exp)
    bad = diff > atol + rtol * np.abs(exp)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    message = (
        f"{name}: {int(bad.sum())} of {exp.size} entries differ from the expected values; "
        f"the largest difference is {_num(diff[worst])} at index {worst} "
        f"(got {_pair(exp[worst], arr[worst])[1]}, expected {_pair(exp[worst], arr[worst])[0]}) "
        f"{tolerance}"
    )
    if ratio is not None:
        message += (
            f". Every entry is {ratio:.4g} times the expected one: a constant factor is off "
            "(a missing 1/n, 0.5 or beta?)"
        )
    raise ExerciseError(message)


# ----------------------------------------------------------------------------- gradient


def _rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|): 0 for equal arrays, about 1 for unrelated ones."""
    scale = float(np.max(np.abs(a) + np.abs(b))) if a.size else 0.0
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b))) / scale


def check_gradient(name: str, analytic: Any, numeric: Any, *, tol: float = 1e-6) -> float:
    """Check an analytic gradient against a numerical one; return the relative error.

    The relative error is ``max |analytic - numeric| / max(|analytic| + |numeric|)``: about
    1e-7 or less for a correct gradient checked by central differences in float64, about 1e-2
    or more for a wrong one. Fails when it exceeds ``tol``, naming the slip where it can tell
    (flipped sign, transposed, a factor 2 or another constant factor).
    """
    num = _as_float_array(f"{name} (numerical gradient)", numeric)
    if analytic is None:
        raise ExerciseError(_none_message(name))
    ana = _as_float_array(name, analytic)
    if ana.shape != num.shape:
        if ana.ndim == 2 and ana.T.shape == num.shape and _rel_error(ana.T, num) <= tol:
            raise ExerciseError(
                f"{name}: your gradient is transposed: shape {ana.shape}, but the parameter has "
                f"shape {num.shape} (a gradient always has the shape of its parameter)"
            )
        shown = tuple(num.shape)
        raise ExerciseError(
            f"{name}: your gradient has shape {ana.shape}, but the parameter has shape {shown}; "
            f"a gradient always has the shape of its parameter{_shape_hint(ana.shape, shown)}"
        )
    check_finite(name, ana)
    rel = _rel_error(ana, num)
    if rel <= tol:
        return rel
    slips = [
        (-num, "the sign is flipped (your gradient is minus the numerical one)"),
        (2.0 * num, "off by a factor 2 (twice the numerical gradient) — a missing 0.5?"),
        (0.5 * num, "off by a factor 2 (half the numerical gradient) — an extra 0.5?"),
    ]
    if num.ndim == 2 and not _close(num, num.T, 1e-12, 0.0):
        slips.append((num.T, "looks transposed (rows and columns swapped)"))
    for candidate, slip in slips:
        if candidate.shape == ana.shape and _rel_error(ana, candidate) <= max(tol, 1e-6):
            raise ExerciseError(
                f"{name}: {slip}; relative error {rel:.1e} (should be below {tol:.0e})"
            )
    if not np.any(ana) and np.any(num):
        raise ExerciseError(
            f"{name}: your gradient is all zeros, but the numerical gradient is not "
            "(is this gradient computed and returned, or does a term not reach it?)"
        )
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(ana - num))), ana.shape))
    message = (
        f"{name}: the analytic gradient disagrees with finite differences: relative error "
        f"{rel:.1e}, should be below {tol:.0e} (a correct gradient gives about 1e-7 or less in "
        f"float64)"
    )
    if ana.ndim:
        message += (
            f"; worst entry at index {worst}: analytic {_num(ana[worst])}, "
            f"numerical {_num(num[worst])}"
        )
    else:
        message += f"; analytic {_num(ana)}, numerical {_num(num)}"
    ratio = _constant_ratio(ana, num)
    if ratio is not None and abs(ratio - 1) > 1e-3:
        message += f". Every entry is {ratio:.4g} times the numerical one: a constant factor is off"
    raise ExerciseError(message)


# ----------------------------------------------------------------------------- calling


# names NumPy 2 removed, and what to write instead (np.trapz went in NumPy 2.4)
REMOVED_NUMPY = {
    "trapz": "np.trapezoid",
    "product": "np.prod",
    "cumproduct": "np.cumprod",
    "alltrue": "np.all",
    "sometrue": "np.any",
    "in1d": "np.isin",
    "row_stack": "np.vstack",
    "float_": "np.float64",
    "NaN": "np.nan",
    "Inf": "np.inf",
    "infty": "np.inf",
    "asfarray": "np.asarray(x, dtype=float)",
    "round_": "np.round",
    "msort": "np.sort(x, axis=0)",
}

_MISSING = object()


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (
        hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "copy")
    )


def _host(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "get"):
        return np.asarray(value.get())
    return np.asarray(value)


def _copy(value: Any) -> Any:
    """A copy of arrays and of dicts, lists and tuples of them; anything else as it is."""
    if _is_array(value):
        return value.copy()
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_copy(item) for item in value)
    return value


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _changes(before: Any, after: Any, where: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(where, before, after) for each array inside ``before`` that ``after`` no longer equals."""
    if _is_array(before):
        if not _is_array(after):
            return [(where, _host(before), np.asarray(np.nan))]
        a, b = _host(before), _host(after)
        return [] if _same(a, b) else [(where, a, b)]
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key, item in before.items():
            found += _changes(item, after.get(key, _MISSING), f"{where}[{key!r}]")
        return found
    if isinstance(before, list | tuple) and isinstance(after, list | tuple):
        found = []
        for i, item in enumerate(before):
            found += _changes(item, after[i] if i < len(after) else _MISSING, f"{where}[{i}]")
        return found
    return []


def _inplace_message(fn_name: str, where: str, before: np.ndarray, after: np.ndarray) -> str:
    arg = where.split("[")[0]
    detail = ""
    if before.shape == after.shape and before.size:
        with np.errstate(invalid="ignore"):
            differs = ~((before == after) | (np.isnan(before) & np.isnan(after)))
        index = tuple(int(i) for i in np.argwhere(differs)[0])
        held, now = _pair(before[index], after[index])
        detail = (
            f" ({int(differs.sum())} of {before.size} entries; at index {index} it held "
            f"{held} before the call and {now} after)"
        )
    elif before.shape != after.shape:
        detail = f" (its shape went from {before.shape} to {after.shape})"
    if where != arg:
        return (
            f"{fn_name}: your function changed `{where}`, an array inside its argument `{arg}`, "
            f"in place{detail}. Compute new arrays instead of changing the ones you are given "
            "(no *=, [...] = or out= on them)"
        )
    return (
        f"{fn_name}: your function changed its argument `{where}` in place{detail}. The caller "
        f"still needs the {arg} it passed: compute a new array ({arg}_new = ..., or "
        f"{arg} = {arg} * ...) instead of {arg} *= ..., {arg}[...] = ... or out={arg}"
    )


def _model_params(value: Any) -> dict[str, Any] | None:
    params = getattr(value, "params", None)
    if isinstance(params, dict) and not isinstance(value, dict | list | tuple | np.ndarray):
        return params
    return None


def _describe_args(args: Mapping[str, Any]) -> str:
    def one(value: Any) -> str:
        if isinstance(value, tuple):
            return "(" + ", ".join(one(item) for item in value) + ")"
        if isinstance(value, dict):
            return f"a dict of {len(value)} entries"
        if hasattr(value, "shape"):
            return f"an array of shape {tuple(value.shape)}"
        return type(value).__name__

    return ", ".join(f"{name}={one(value)}" for name, value in args.items())


_PACKAGE = str(Path(__file__).resolve().parents[1])


def _learner_frames(err: BaseException) -> list[str]:
    """Names of the functions outside minivae and installed packages that the error passed
    through, outermost first: the learner's functions."""
    names = []
    tb = err.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith(_PACKAGE) or "site-packages" in filename):
            names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return names


def _learner_error(
    fn_name: str,
    err: Exception,
    args: Mapping[str, Any],
    advice: str | None,
    explain: Mapping[type, str] | None,
) -> Exception:
    """The error that explains an exception raised inside the learner's function.

    An ExerciseError, except for a function not written yet: that stays a NotImplementedError
    (with a message saying which function), which graders report as "not done yet".
    """
    kind = type(err).__name__
    frames = [f for f in _learner_frames(err) if f not in ("<module>", "<lambda>")]
    if frames and frames[-1] != fn_name and not isinstance(err, NotImplementedError):
        kind += f" (in {frames[-1]})"
    for cls, words in (explain or {}).items():
        # NotImplementedError is a RuntimeError: a blank exercise stays "not written yet" even
        # when a check explains RuntimeErrors
        if isinstance(err, cls) and not isinstance(err, NotImplementedError):
            return ExerciseError(f"{fn_name} raised {kind}: {err}. {words}")
    if isinstance(err, NotImplementedError):
        culprit = frames[-1] if frames else fn_name
        if culprit == fn_name:
            return NotImplementedError(
                f"{fn_name} is not written yet (it raises NotImplementedError): replace "
                "`raise NotImplementedError()` in its cell with your code, then run that cell "
                "and this one again"
            )
        return NotImplementedError(
            f"{fn_name} calls {culprit}, which is not written yet (it raises "
            f"NotImplementedError): write {culprit} first — its exercise comes earlier"
        )
    if isinstance(err, AttributeError):
        found = re.search(r"module 'numpy' has no attribute '(\w+)'", str(err))
        if found and found.group(1) in REMOVED_NUMPY:
            name = found.group(1)
            return ExerciseError(
                f"{fn_name} uses np.{name}, which NumPy {np.__version__} no longer has: write "
                f"{REMOVED_NUMPY[name]} instead"
            )
        return ExerciseError(f"{fn_name} raised AttributeError: {err}")
    if isinstance(err, ValueError | IndexError | KeyError | TypeError):
        text = str(err)
        if advice:
            hint = advice
        elif "could not be broadcast" in text:
            hint = (
                "Two arrays whose shapes do not fit were combined entry by entry: `*` multiplies "
                "entry by entry, `@` is the matrix product. Write the shape next to each line."
            )
        elif (
            "only length-1 arrays" in text
            or "only 0-dimensional" in text
            or ("size-1 arrays" in text)
        ):
            hint = (
                "The math module (math.exp, math.log1p) and float() work on single numbers: on "
                "arrays use np.exp, np.log1p, ... (or xp.exp, ... for any backend)."
            )
        elif "truth value of an array" in text:
            hint = (
                "Python's max, min, if, and, or work on single numbers: on arrays use "
                "np.maximum / np.minimum / np.where entry by entry (xp.maximum, ... for any "
                "backend), or .any() / .all()."
            )
        elif "matmul" in text:
            hint = (
                "A matrix product (@) of shapes that do not fit: does a matrix need a transpose, "
                "or have one it should not? Write the shape next to each line."
            )
        else:
            hint = "Write the shape next to each line of your function."
        return ExerciseError(
            f"{fn_name} raised {kind}: {err}\nIt was called with {_describe_args(args)}.\n{hint}"
        )
    extra = ""
    if isinstance(err, NameError):
        extra = " — is it defined in a cell you have not run yet, or misspelled?"
    return ExerciseError(f"{fn_name} raised {kind}: {err}{extra}")


def call(
    fn: Callable[..., Any],
    *args: Any,
    mutates: Sequence[str] = (),
    using: Mapping[str, Any] | None = None,
    advice: str | None = None,
    inplace_advice: Mapping[str, str] | None = None,
    explain: Mapping[type, str] | None = None,
    **kwargs: Any,
) -> Any:
    """Run the learner's ``fn(*args, **kwargs)`` on copies of the arguments; return its result.

    - Arrays, and dicts, lists and tuples of arrays, are copied before the call; afterwards an
      argument that differs from the caller's says "your function changed its argument `mu` in
      place" (``inplace_advice[name]`` replaces the advice). Arguments named in ``mutates`` are
      meant to change: they are passed as they are. A model's ``params`` are compared too.
    - ``using={"reparameterize": reference}`` gives ``fn`` the course's version of an earlier
      exercise during the call (by name, in the namespace ``fn`` was written in), so one blank
      or wrong exercise never fails another.
    - ``NotImplementedError`` is raised again with a message saying that the function (or the
      one it calls) is not written yet;
      a NumPy name removed in NumPy 2 (np.trapz) says what replaces it; ``ValueError``,
      ``IndexError``, ``KeyError`` and ``TypeError`` say which shapes went in, with ``advice``;
      ``explain[ExceptionType]`` adds advice for other errors. Floating-point warnings are
      silenced during the call: the checks that follow report non-finite results.
    """
    fn_name = getattr(fn, "__name__", "your function")
    if not callable(fn):
        raise ExerciseError(f"{fn_name} is not a function, it is {_describe(fn)}")
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as err:
        raise ExerciseError(
            f"{fn_name} cannot be called with these arguments ({err}): keep the parameters "
            "that the exercise gives its function"
        ) from None
    except ValueError:  # no signature (a builtin): call as given
        bound = None
    originals = dict(bound.arguments) if bound is not None else {}
    for name, value in originals.items():
        if name not in mutates:
            bound.arguments[name] = _copy(value)
    call_args, call_kwargs = (bound.args, bound.kwargs) if bound is not None else (args, kwargs)
    model_snapshots = {
        name: _copy(params)
        for name, value in originals.items()
        if (params := _model_params(value)) is not None
    }

    namespace = getattr(fn, "__globals__", None)
    saved: dict[str, Any] = {}
    if using and namespace is not None:
        for name, replacement in using.items():
            saved[name] = namespace.get(name, _MISSING)
            namespace[name] = replacement
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = fn(*call_args, **call_kwargs)
    except ExerciseError:
        raise
    except Exception as err:
        error = _learner_error(fn_name, err, originals, advice, explain)
        # a NotImplementedError's traceback says nothing the message does not
        raise error from (None if isinstance(err, NotImplementedError) else err)
    finally:
        for name, old in saved.items():
            if old is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = old

    for name, value in originals.items():
        if name in mutates:
            continue
        found = _changes(value, bound.arguments[name], name)
        if found:
            where, before, after = found[0]
            message = _inplace_message(fn_name, where, before, after)
            if inplace_advice and name in inplace_advice:
                message = (
                    f"{fn_name}: your function changed its argument `{where}` in place: "
                    f"{inplace_advice[name]}"
                )
            raise ExerciseError(message)
    for name, snapshot in model_snapshots.items():
        found = _changes(snapshot, _model_params(originals[name]), f"{name}.params")
        if found:
            where, before, after = found[0]
            params = _model_params(originals[name])
            for key, value in snapshot.items():  # put the model back as it was
                params[key][...] = value
            raise ExerciseError(
                f"{fn_name}: your function changed the model's parameters ({where}) in place; "
                "it should only read them"
            )
    return result


def unpack(result: Any, names: Sequence[str], what: str) -> tuple:
    """Check that ``result`` is a tuple of ``len(names)`` things and return it."""
    check_type(what, result, tuple)
    if len(result) != len(names):
        raise ExerciseError(
            f"{what} should return {len(names)} things, ({', '.join(names)}); "
            f"it returned {len(result)}"
        )
    return result


# ----------------------------------------------------------------------------- passed


def passed(message: str) -> None:
    """Print ``✓ <message>``: the line a graded cell shows when all its checks pass."""
    print(f"\N{CHECK MARK} {message}")
