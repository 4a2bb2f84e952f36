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
a factor 2, a sum over the batch where a mean belongs) when no hints are given.
Only NumPy is used.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ExerciseError",
    "check_close",
    "check_finite",
    "check_gradient",
    "check_shape",
    "check_type",
    "passed",
]

Hint = tuple[Any, str]


class ExerciseError(AssertionError):
    """A check in a graded cell failed; the message says what is wrong and how to look for it."""


# ----------------------------------------------------------------------------- formatting


def _num(v: Any) -> str:
    """A number in at most 6 significant digits: 0.333333, 1.5e-07, 12."""
    return f"{float(v):.6g}"


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


def _common_hints(expected: np.ndarray, batch_size: int | None) -> list[Hint]:
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
        sizes = []
        if batch_size is not None:
            sizes.append(int(batch_size))
        if expected.ndim >= 2:
            sizes.append(int(expected.shape[0]))
        for n in dict.fromkeys(sizes):
            if n <= 2:
                continue
            hints.append(
                (
                    n * expected,
                    f"{n} times too large — {n} is the batch size: summed over the batch where "
                    "a mean belongs? (the loss is averaged over the batch)",
                )
            )
            hints.append(
                (
                    expected / n,
                    f"{n} times too small — {n} is the batch size: divided by it where a sum "
                    "belongs, or averaged twice?",
                )
            )
    return hints


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
    common_hints: bool = True,
) -> None:
    """Check that ``got`` equals ``expected`` to ``|got - expected| <= atol + rtol * |expected|``.

    Shape and finiteness are checked first. When ``got`` differs, each ``(candidate, message)``
    in ``hints`` is tried in order and the message of the first candidate close to ``got`` is
    raised; then the common slips (``common_hints=True``): minus the expected value, its
    transpose, twice or half of it, and ``batch_size`` (or, for arrays with 2 or more axes, the
    length of the leading axis) times or divided by it. Otherwise the message gives the number
    of wrong entries and the worst one.
    """
    if got is None:
        raise ExerciseError(_none_message(name))
    exp = _as_float_array(f"{name} (reference)", expected)
    arr = _as_float_array(name, got)
    if exp.ndim == 0 and arr.size == 1 and arr.ndim > 0:
        arr = arr.reshape(())
    candidates: list[Hint] = [(np.asarray(c, dtype=np.float64), m) for c, m in (hints or [])]
    if common_hints:
        candidates += _common_hints(exp, batch_size)
    h_rtol, h_atol = max(rtol, 1e-5), max(atol, 1e-8)

    if arr.shape != exp.shape:
        for candidate, message in candidates:
            if (
                candidate.shape == arr.shape
                and np.all(np.isfinite(arr))
                and _close(arr, candidate, h_rtol, h_atol)
            ):
                raise ExerciseError(
                    f"{name}: {message} (expected shape {exp.shape}, got {arr.shape})"
                )
        check_shape(name, arr, exp.shape)
    check_finite(name, arr)
    if _close(arr, exp, rtol, atol):
        return
    for candidate, message in candidates:
        if _close(arr, candidate, h_rtol, h_atol):
            raise ExerciseError(f"{name}: {message}")
    if exp.size and np.all(exp != 0) and np.all(arr == 0):
        raise ExerciseError(
            f"{name}: every entry is 0 — is a step of the computation missing, or is the result "
            "overwritten before it is returned?"
        )

    tolerance = f"(tolerance: rtol={rtol:g}, atol={atol:g})"
    ratio = _constant_ratio(arr, exp)
    if exp.ndim == 0:
        message = (
            f"{name}: expected {_num(exp)}, got {_num(arr)} "
            f"(difference {_num(arr - exp)}{f', ratio {ratio:.4g}' if ratio else ''}) {tolerance}"
        )
        raise ExerciseError(message)
    diff = np.abs(arr - exp)
    bad = diff > atol + rtol * np.abs(exp)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    message = (
        f"{name}: {int(bad.sum())} of {exp.size} entries differ from the expected values; "
        f"the largest difference is {_num(diff[worst])} at index {worst} "
        f"(got {_num(arr[worst])}, expected {_num(exp[worst])}) {tolerance}"
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


# ----------------------------------------------------------------------------- passed


def passed(message: str) -> None:
    """Print ``✓ <message>``: the line a graded cell shows when all its checks pass."""
    print(f"\N{CHECK MARK} {message}")
