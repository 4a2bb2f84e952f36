"""The gradient checker itself: it must find right gradients right and wrong ones wrong."""

from __future__ import annotations

import numpy as np
import pytest

from minivae.gradcheck import check_gradients, numerical_gradient, rel_error


def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0], [2.0, 0.1]])
    grad = numerical_gradient(lambda: float((np.sin(x) * x).sum()), x)
    exact = np.cos(x) * x + np.sin(x)
    err = rel_error(grad, exact)
    assert err < 1e-9, f"central differences of sin(x) * x are off by {err:.2e}"
    np.testing.assert_array_equal(x, [[0.5, -1.0], [2.0, 0.1]], err_msg="x must be restored")


def test_central_not_one_sided_differences():
    # f = x^3 at x = 1: one-sided differences err by ~3h, central ones by h^2
    x = np.array([1.0])
    grad = numerical_gradient(lambda: float(x[0] ** 3), x, h=1e-3)
    assert abs(grad[0] - 3.0) < 1e-5, f"error {abs(grad[0] - 3):.1e}: not central differences"


def test_check_gradients_flags_a_wrong_gradient():
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal(3), "b": rng.standard_normal((2, 2))}

    def f() -> float:
        return float((params["a"] ** 2).sum() + 3 * params["b"].sum())

    right = {"a": 2 * params["a"], "b": np.full((2, 2), 3.0)}
    wrong = {"a": params["a"], "b": np.full((2, 2), 3.0)}  # a missing factor 2
    assert max(check_gradients(f, params, right).values()) < 1e-8
    errors = check_gradients(f, params, wrong)
    assert errors["a"] > 0.1 and errors["b"] < 1e-8, f"a wrong gradient was missed: {errors}"
    assert set(check_gradients(f, params, right, names=["b"])) == {"b"}


def test_rel_error():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error(np.zeros(2), np.zeros(2)) == 0.0
    assert rel_error(np.array([1.0]), np.array([-1.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"equal shapes, got \(2,\) and \(3,\)"):
        rel_error(np.zeros(2), np.zeros(3))


def test_float32_is_refused():
    x = np.zeros(3, dtype=np.float32)
    with pytest.raises(TypeError, match="gradient checks need float64 arrays, got float32"):
        numerical_gradient(lambda: 0.0, x)
    with pytest.raises(ValueError, match="C-contiguous"):
        numerical_gradient(lambda: 0.0, np.zeros((3, 2)).T)
