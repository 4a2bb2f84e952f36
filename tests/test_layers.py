"""Layers: every backward pass against central finite differences in float64, and properties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradcheck_helpers import away_from_zero, fd_max_error

from minivae import layers
from minivae.layers import ACTIVATIONS, activation, init_linear, linear_backward, linear_forward


def test_linear_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))  # the loss is sum(out * dout), so d loss / d out = dout

    def f() -> float:
        return float((linear_forward(x, W, b)[0] * dout).sum())

    dx, dW, db = linear_backward(dout, linear_forward(x, W, b)[1])
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == b.shape
    err = fd_max_error("linear", f, {"x": x, "W": W, "b": b}, {"x": dx, "W": dW, "b": db})
    assert err < 1e-8, f"linear backward disagrees with finite differences: rel. error {err:.2e}"


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid", "softplus", "identity"])
def test_activation_backward_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    x = away_from_zero(rng, (5, 4)) * 2  # the kink of relu / leaky_relu at 0 is not straddled
    dout = rng.standard_normal((5, 4))
    forward, backward = activation(name)

    def f() -> float:
        return float((forward(x)[0] * dout).sum())

    dx = backward(dout, forward(x)[1])
    err = fd_max_error(name, f, {"x": x}, {"x": dx})
    assert err < 1e-8, f"{name} backward disagrees with finite differences: rel. error {err:.2e}"


def test_activation_values():
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    np.testing.assert_allclose(layers.relu_forward(x)[0], [[0, 0, 0.5, 3.0]])
    np.testing.assert_allclose(layers.leaky_relu_forward(x, 0.1)[0], [[-0.2, -0.05, 0.5, 3.0]])
    np.testing.assert_allclose(layers.tanh_forward(x)[0], np.tanh(x), rtol=1e-15)
    np.testing.assert_allclose(layers.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(layers.softplus(x), np.log1p(np.exp(x)), rtol=1e-14)


def test_leaky_relu_slope_is_used_in_backward():
    x = np.array([[-1.0, 2.0]])
    dx = layers.leaky_relu_backward(np.ones((1, 2)), layers.leaky_relu_forward(x, 0.2)[1])
    np.testing.assert_allclose(dx, [[0.2, 1.0]], err_msg="leaky_relu backward ignores its slope")


def test_sigmoid_and_softplus_are_finite_and_exact_for_huge_inputs():
    x = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would be a warning -> error
        s = layers.sigmoid(x)
        sp = layers.softplus(x)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(sp)), "sigmoid/softplus overflowed"
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert sp[-1] == 1e4, f"softplus(1e4) must be exactly 1e4, got {sp[-1]}"
    assert sp[0] == 0.0, f"softplus(-1e4) must be 0 (exp(-1e4) underflows), got {sp[0]}"
    np.testing.assert_allclose(sp[2], np.exp(-50.0), rtol=1e-12)


def test_init_linear_is_pytorch_default():
    rng = np.random.default_rng(0)
    W, b = init_linear(rng, 400, 300)
    bound = 1 / np.sqrt(400)
    assert W.shape == (400, 300) and b.shape == (300,), "W must be (n_in, n_out), b (n_out,)"
    assert W.dtype == np.float32
    assert np.abs(W).max() <= bound and np.abs(b).max() <= bound, "init exceeds 1/sqrt(n_in)"
    # a uniform on [-c, c] has variance c^2 / 3
    assert abs(W.var() / (bound**2 / 3) - 1) < 0.02, "init is not Uniform(+-1/sqrt(n_in))"


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'.*expected one of"):
        activation("gelu")
    assert set(ACTIVATIONS) >= {"relu", "leaky_relu", "tanh", "sigmoid", "softplus"}
