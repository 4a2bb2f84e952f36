"""The feedback checks of minivae.course.feedback: each message names the value, the shapes or
numbers, and the usual slip behind them (sign, transpose, factor 2, batch sum vs mean)."""

from __future__ import annotations

import numpy as np
import pytest

from minivae.course import feedback
from minivae.course.feedback import ExerciseError


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(ExerciseError) as info:
        fn(*args, **kwargs)
    return str(info.value)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(4, 3))


def test_exercise_error_is_an_assertion_error():
    assert issubclass(ExerciseError, AssertionError)


# ----------------------------------------------------------------------------- check_type


def test_check_type_accepts_numpy_scalars_as_float():
    feedback.check_type("loss", 1.5, float)
    feedback.check_type("loss", np.float32(1.5), float)
    feedback.check_type("loss", np.float64(1.5), float)
    feedback.check_type("loss", np.array(1.5), float)
    feedback.check_type("x", np.zeros(3), np.ndarray)
    feedback.check_type("n", np.int64(3), int)


def test_check_type_array_where_a_number_belongs(x):
    text = message(feedback.check_type, "loss", x, float)
    assert text.startswith("loss: expected a single number (float), got an array of shape (4, 3)")
    assert "sum or average" in text


def test_check_type_none_says_return_is_missing():
    assert "does your function end with `return ...`" in message(
        feedback.check_type, "x_hat", None, np.ndarray
    )


def test_check_type_list_and_bool():
    assert "got a list of length 2" in message(feedback.check_type, "x", [1.0, 2.0], np.ndarray)
    assert "got a bool" in message(feedback.check_type, "n", True, int)
    assert "expected a dict" in message(feedback.check_type, "grads", [1], dict)


# ----------------------------------------------------------------------------- check_shape


def test_check_shape_passes_and_accepts_wildcards(x):
    feedback.check_shape("x", x, (4, 3))
    feedback.check_shape("x", x, (None, 3))


@pytest.mark.parametrize(
    ("shape", "expected", "words"),
    [
        ((3, 4), (4, 3), "expected shape (4, 3), got (3, 4) — looks transposed"),
        ((3,), (4, 3), "the leading axis (length 4, usually the batch) is missing"),
        ((4,), (4, 3), "the last axis (length 3) is missing"),
        ((4, 1), (4,), "extra axis of length 1"),
        ((4,), (4, 1), "an axis of length 1 is missing"),
        ((4, 4), (4,), "unintended broadcast"),
        ((2, 6), (4, 3), "the same number of entries, arranged differently"),
        ((4, 3), (), "a single number was expected"),
    ],
)
def test_check_shape_messages(shape, expected, words):
    text = message(feedback.check_shape, "x_hat", np.zeros(shape), expected)
    assert text.startswith("x_hat: expected shape")
    assert words in text


def test_check_shape_of_none():
    assert "got None" in message(feedback.check_shape, "z", None, (2,))


# ----------------------------------------------------------------------------- check_finite


def test_check_finite_counts_and_locates(x):
    feedback.check_finite("x", x)
    x[1, 2] = np.nan
    x[3, 0] = np.inf
    text = message(feedback.check_finite, "logits", x)
    assert "1 NaN and 1 infinite of 12 entries (first at index (1, 2)" in text
    assert "log of 0" in text
    assert "expected a finite number, got inf" in message(feedback.check_finite, "loss", np.inf)


# ----------------------------------------------------------------------------- check_close


def test_check_close_passes_within_tolerance(x):
    feedback.check_close("x", x + 1e-9, x)
    feedback.check_close("loss", np.array([2.0]), 2.0)  # a size-1 array counts as a number
    feedback.check_close("loss", 2.0 + 1e-3, 2.0, rtol=1e-2)


@pytest.mark.parametrize(
    ("mistake", "words"),
    [
        (lambda e: -e, "the sign is flipped"),
        (lambda e: 2 * e, "off by a factor 2 (you got twice the expected value)"),
        (lambda e: 0.5 * e, "off by a factor 2 (you got half the expected value)"),
        (lambda e: 4 * e, "4 times too large — 4 is the batch size: summed over the batch"),
        (lambda e: e / 4, "4 times too small — 4 is the batch size"),
        (lambda e: e.T, "looks transposed"),
    ],
    ids=["sign", "twice", "half", "batch-sum", "batch-mean-twice", "transposed"],
)
def test_check_close_common_hints(x, mistake, words):
    text = message(feedback.check_close, "dx", mistake(x), x)
    assert text.startswith("dx: ")
    assert words in text


def test_check_close_transposed_square_matrix():
    w = np.arange(9.0).reshape(3, 3)
    assert "looks transposed" in message(feedback.check_close, "dW", w.T, w)


def test_check_close_batch_sum_for_a_scalar_loss():
    text = message(feedback.check_close, "loss", 8 * 2.5, 2.5, batch_size=8)
    assert "summed over the batch where a mean belongs" in text
    assert "averaged twice" in message(feedback.check_close, "loss", 2.5 / 8, 2.5, batch_size=8)


def test_check_close_given_hints_come_first(x):
    text = message(feedback.check_close, "kl", -x, x, hints=[(-x, "your KL has the wrong sign")])
    assert text == "kl: your KL has the wrong sign"
    std = np.exp(0.5 * x)
    text = message(
        feedback.check_close,
        "std",
        np.exp(x),
        std,
        hints=[(np.exp(x), "this looks like exp(logvar) — the std is exp(0.5*logvar)")],
    )
    assert text == "std: this looks like exp(logvar) — the std is exp(0.5*logvar)"


def test_check_close_common_hints_can_be_switched_off(x):
    text = message(feedback.check_close, "dx", -x, x, common_hints=False)
    assert "sign" not in text
    assert "12 of 12 entries differ" in text


def test_check_close_generic_message_names_the_worst_entry(x):
    got = x.copy()
    got[2, 1] += 0.25
    text = message(feedback.check_close, "x_hat", got, x)
    assert "1 of 12 entries differ" in text
    assert "largest difference is 0.25 at index (2, 1)" in text
    assert f"expected {x[2, 1]:.6g}" in text


def test_check_close_scalar_and_constant_factor(x):
    text = message(feedback.check_close, "loss", 3.0, 2.0)
    assert text.startswith("loss: expected 2, got 3 (difference 1, ratio 1.5)")
    assert "Every entry is 3 times the expected one" in message(
        feedback.check_close, "dW", 3 * x, x
    )


def test_check_close_shape_zero_nan_and_none(x):
    assert "expected shape (4, 3), got (4,)" in message(feedback.check_close, "x", x[:, 0], x)
    assert "every entry is 0" in message(feedback.check_close, "x", np.zeros_like(x), x + 5)
    bad = x.copy()
    bad[0, 0] = np.nan
    assert "1 NaN of 12 entries" in message(feedback.check_close, "x", bad, x)
    assert "got None" in message(feedback.check_close, "x", None, x)


# ----------------------------------------------------------------------------- check_gradient


def test_check_gradient_returns_the_relative_error(x):
    rel = feedback.check_gradient("dW", x * (1 + 1e-9), x)
    assert 0 < rel < 1e-8


@pytest.mark.parametrize(
    ("mistake", "words"),
    [
        (lambda g: -g, "the sign is flipped"),
        (lambda g: 2 * g, "off by a factor 2 (twice the numerical gradient)"),
        (lambda g: 0.5 * g, "off by a factor 2 (half the numerical gradient)"),
        (
            lambda g: g.T,
            "your gradient is transposed: shape (3, 4), but the parameter has shape (4, 3)",
        ),
        (lambda g: np.zeros_like(g), "your gradient is all zeros"),
        (lambda g: 3 * g, "Every entry is 3 times the numerical one"),
    ],
    ids=["sign", "twice", "half", "transposed", "zeros", "factor-3"],
)
def test_check_gradient_messages(x, mistake, words):
    text = message(feedback.check_gradient, "dW", mistake(x), x)
    assert text.startswith("dW: ")
    assert words in text


def test_check_gradient_reports_size_and_worst_entry(x):
    got = x.copy()
    got[1, 1] += 0.1
    text = message(feedback.check_gradient, "dW", got, x)
    assert "relative error" in text and "should be below 1e-06" in text
    assert "worst entry at index (1, 1)" in text
    assert "has shape (4, 3)" in message(feedback.check_gradient, "db", np.zeros(3), x)


def test_passed_prints_a_check_mark(capsys):
    feedback.passed("linear_forward is right")
    assert capsys.readouterr().out == "\N{CHECK MARK} linear_forward is right\n"
