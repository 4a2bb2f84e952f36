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
    text = message(feedback.check_close, "dx", mistake(x), x, batch_size=4)
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


def test_check_close_names_each_size_and_never_guesses_the_batch(x):
    sizes = {"batch": 4, "latent": 3, "pixels": 7}
    text = message(feedback.check_close, "kl", 2.5 / 3, 2.5, sizes=sizes)
    assert (
        "3 times too small — 3 is the number of latent dimensions: averaged over the latent" in text
    )
    assert "summed over the pixels where a mean belongs" in message(
        feedback.check_close, "loss", 7 * 2.5, 2.5, sizes=sizes
    )
    # without sizes, a factor equal to the leading axis is not called the batch size
    assert "batch" not in message(feedback.check_close, "dW", 4 * x, x)
    # equal sizes are named together: the hint cannot tell which axis was summed
    text = message(feedback.check_close, "kl", 4 * 2.5, 2.5, sizes={"batch": 4, "latent": 4})
    assert "4 is the batch size and the number of latent dimensions" in text


@pytest.mark.parametrize(
    ("factor", "words"),
    [
        (1 / np.log(2), "bits instead of nats"),
        (np.log(2), "nats and bits mixed"),
        (1 / np.log(10), "np.log10 where the natural log np.log belongs"),
    ],
    ids=["bits", "mixed", "log10"],
)
def test_check_close_recognises_the_units_of_a_log(x, factor, words):
    assert words in message(feedback.check_close, "kl", factor * x, x)


def test_check_close_names_every_slip_that_gives_the_same_numbers():
    expected = np.array([1.0, 2.0, 3.0])
    hints = [(2 * expected, "the 0.5 is missing"), (2 * expected, "counted twice")]
    text = message(feedback.check_close, "kl", 2 * expected, expected, hints=hints)
    assert text == "kl: either the 0.5 is missing; or counted twice"


def test_check_close_skips_a_hint_that_equals_the_expected_value():
    # the candidate cannot be told from the right answer, so a near miss must not get its message
    expected = np.array([1.0, 2.0])
    got = expected * (1 + 1e-4)
    text = message(
        feedback.check_close, "m", got, expected, hints=[(expected, "m forgets its past")]
    )
    assert "forgets" not in text and "2 of 2 entries differ" in text


def test_check_close_tight_tolerances_match_hints_tightly():
    exact = np.array([4.0, 8.0])
    wide_h = exact * (1 + 3e-6)  # the reference with a larger step h
    text = message(
        feedback.check_close, "g", exact, wide_h, rtol=1e-9, hints=[(exact, "h is ignored")]
    )
    assert text == "g: h is ignored"


def test_check_close_probabilities_outside_the_unit_interval():
    p = np.array([[0.2, 0.7], [0.9, 0.5]])
    logits = np.log(p / (1 - p))
    assert "these are logits" in message(feedback.check_close, "x", logits, p, probabilities=True)
    text = message(feedback.check_close, "x", p + 0.5, p, probabilities="weights not normalised?")
    assert "lie outside [0, 1]" in text and "weights not normalised?" in text


def test_check_close_near_equal_numbers_are_shown_with_more_digits():
    text = message(feedback.check_close, "g", np.array([28.10861, 1.0]), np.array([28.10864, 1.0]))
    assert "got 28.10861, expected 28.10864" in text
    assert "1 times" not in text


# ----------------------------------------------------------------------------- call


def test_call_passes_copies_and_names_an_argument_changed_in_place():
    def kl(mu, logvar):
        mu *= 2
        return float(np.sum(mu))

    mu = np.ones((2, 3))
    text = message(feedback.call, kl, mu, np.zeros((2, 3)))
    assert "kl: your function changed its argument `mu` in place (6 of 6 entries" in text
    assert np.array_equal(mu, np.ones((2, 3))), "the caller's array is untouched"


def test_call_checks_dicts_of_arrays_and_lets_named_arguments_change():
    def step(params, grads):
        params["W"] -= grads["W"]

    params, grads = {"W": np.ones(3)}, {"W": np.ones(3)}
    assert "changed `params['W']`, an array inside its argument `params`" in message(
        feedback.call, step, params, grads
    )
    feedback.call(step, params, grads, mutates=("params",))
    assert np.array_equal(params["W"], np.zeros(3))


def test_call_custom_advice_for_an_argument_changed_in_place():
    def perturb(x):
        x[0] += 1.0

    text = message(feedback.call, perturb, np.zeros(2), inplace_advice={"x": "restore x[i]"})
    assert text == "perturb: your function changed its argument `x` in place: restore x[i]"


def test_call_says_which_function_is_not_written_yet():
    def earlier(x):
        raise NotImplementedError()

    def later(x):
        return earlier(x)

    with pytest.raises(NotImplementedError, match="earlier is not written yet"):
        feedback.call(earlier, 1)
    with pytest.raises(NotImplementedError, match="later calls earlier, which is not written yet"):
        feedback.call(later, 1)


def test_call_using_replaces_an_earlier_exercise_during_the_call_only():
    namespace = {}
    exec(  # noqa: S102 - a function defined in a notebook-like namespace
        "def earlier(x):\n    raise NotImplementedError()\n"
        "def later(x):\n    return earlier(x) + 1\n",
        namespace,
    )
    assert feedback.call(namespace["later"], 1, using={"earlier": lambda x: 10 * x}) == 11
    with pytest.raises(NotImplementedError):
        namespace["later"](1)


def test_call_explains_removed_numpy_names_shape_errors_and_bad_signatures():
    def auc(x):
        return np.trapz(x)  # noqa: NPY201 - the learner's mistake under test

    assert "np.trapz, which NumPy" in message(feedback.call, auc, np.ones(3))
    assert "np.trapezoid" in message(feedback.call, auc, np.ones(3))

    def forward(x, W):
        return x * W

    text = message(feedback.call, forward, np.ones((4, 3)), np.ones((3, 5)))
    assert "It was called with x=an array of shape (4, 3), W=an array of shape (3, 5)" in text
    assert "`@` is the matrix product" in text
    assert "cannot be called with these arguments" in message(feedback.call, forward, 1, 2, 3)


def test_call_reports_a_model_whose_parameters_changed_and_restores_them():
    class Model:
        params = {"W": np.ones(2)}

    model = Model()

    def sample(model):
        model.params["W"] *= 0

    assert "changed the model's parameters (model.params['W'])" in message(
        feedback.call, sample, model
    )
    assert np.array_equal(model.params["W"], np.ones(2))


def test_call_names_the_inner_function_and_explains_array_builtins():
    namespace = {"np": np, "math": __import__("math")}
    exec(  # noqa: S102 - functions defined as in a notebook
        "def inner(x):\n    return x @ np.ones((5, 2))\n"
        "def outer(x):\n    return inner(x)\n"
        "def relu(x):\n    return max(x, 0)\n"
        "def soft(x):\n    return math.log1p(math.exp(x))\n",
        namespace,
    )
    assert "outer raised ValueError (in inner)" in message(
        feedback.call, namespace["outer"], np.ones((4, 3))
    )
    assert "Python's max, min, if, and, or work on single numbers" in message(
        feedback.call, namespace["relu"], np.ones(3)
    )
    assert "The math module" in message(feedback.call, namespace["soft"], np.ones(3))


def test_call_names_an_array_changed_inside_a_container():
    def backward(dout, cache):
        cache[0][cache[0] > 0] = 1.0
        return dout

    text = message(feedback.call, backward, np.ones(2), (np.array([0.5, -1.0]), np.zeros(2)))
    assert "changed `cache[0]`, an array inside its argument `cache`, in place" in text


def test_call_leaves_arguments_named_in_mutates_and_compares_nan_as_equal():
    def fill(x):
        return np.nan_to_num(x)

    feedback.call(fill, np.array([np.nan, 1.0]))  # NaN before and after: not a change


def test_call_explain_adds_advice_for_an_exception_type():
    class Stray(TypeError):
        pass

    def gpu(x):
        raise Stray("np.exp called on device data")

    text = message(feedback.call, gpu, np.ones(2), explain={Stray: "use xp.exp"})
    assert text == "gpu raised Stray: np.exp called on device data. use xp.exp"


def test_unpack_checks_the_number_of_results():
    assert feedback.unpack((1, 2), ["a", "b"], "f()") == (1, 2)
    assert "f() should return 2 things, (a, b); it returned 3" in message(
        feedback.unpack, (1, 2, 3), ["a", "b"], "f()"
    )


def test_passed_prints_a_check_mark(capsys):
    feedback.passed("linear_forward is right")
    assert capsys.readouterr().out == "\N{CHECK MARK} linear_forward is right\n"


def test_a_blank_exercise_stays_not_written_yet_when_runtime_errors_are_explained():
    from minivae.course import feedback

    def blank(x):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="blank is not written yet"):
        feedback.call(blank, 1.0, explain={RuntimeError: "a RuntimeError hint"})
