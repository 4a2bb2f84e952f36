"""Layers: every backward pass against central finite differences in float64, and properties.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the backward
pass is checked by finite differences; on the other backends it must give NumPy's numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradcheck_helpers import away_from_zero, fd_max_error

from minivae import layers
from minivae.layers import ACTIVATIONS, activation, init_linear, linear_backward, linear_forward


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_linear_backward_matches_finite_differences(backend_name, dtype, to_xp,
                                                    assert_matches_numpy):
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))  # the loss is sum(out * dout), so d loss / d out = dout
    x, W, b, dout = (a.astype(dtype) for a in (x, W, b, dout))
    out, cache = linear_forward(*to_xp(x, W, b))
    dx, dW, db = linear_backward(to_xp(dout), cache)
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == b.shape
    assert out.dtype == dx.dtype == dW.dtype == db.dtype == dtype, "the dtype must be kept"
    if backend_name != "numpy" or dtype == "float32":
        # NumPy's float64 result for the same inputs: float32 must agree to float32 precision
        ref_out, ref_cache = linear_forward(*(a.astype(np.float64) for a in (x, W, b)))
        refs = (ref_out, *linear_backward(dout.astype(np.float64), ref_cache))
        for name, got, ref in zip(("out", "dx", "dW", "db"), (out, dx, dW, db), refs, strict=True):
            assert_matches_numpy(got, ref, err_msg=f"linear {name} on {backend_name}")
        return  # the maths is checked once, by finite differences in float64 on NumPy

    def f() -> float:
        return float((linear_forward(x, W, b)[0] * dout).sum())

    err = fd_max_error("linear", f, {"x": x, "W": W, "b": b}, {"x": dx, "W": dW, "b": db})
    assert err < 1e-8, f"linear backward disagrees with finite differences: rel. error {err:.2e}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid", "softplus", "identity"])
def test_activation_backward_matches_finite_differences(backend_name, name, dtype, to_xp,
                                                        assert_matches_numpy):
    rng = np.random.default_rng(1)
    x = away_from_zero(rng, (5, 4)) * 2  # the kink of relu / leaky_relu at 0 is not straddled
    dout = rng.standard_normal((5, 4))
    x, dout = x.astype(dtype), dout.astype(dtype)
    forward, backward = activation(name)
    out, cache = forward(to_xp(x))
    dx = backward(to_xp(dout), cache)
    assert out.shape == dx.shape == x.shape and out.dtype == dx.dtype == dtype
    if backend_name != "numpy" or dtype == "float32":
        # NumPy's float64 result for the same inputs: float32 must agree to float32 precision
        ref_out, ref_cache = forward(x.astype(np.float64))
        ref_dx = backward(dout.astype(np.float64), ref_cache)
        assert_matches_numpy(out, ref_out, err_msg=f"{name} forward on {backend_name}")
        assert_matches_numpy(dx, ref_dx, err_msg=f"{name} backward on {backend_name}")
        return  # the maths is checked once, by finite differences in float64 on NumPy

    def f() -> float:
        return float((forward(x)[0] * dout).sum())

    err = fd_max_error(name, f, {"x": x}, {"x": dx})
    assert err < 1e-8, f"{name} backward disagrees with finite differences: rel. error {err:.2e}"


def test_activation_values(backend_name, to_xp, to_numpy):
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    xd = to_xp(x)
    # the GPU's transcendental functions may differ from the CPU's in the last bits
    rtol = 1e-15 if backend_name != "cupy" else 1e-12
    np.testing.assert_allclose(to_numpy(layers.relu_forward(xd)[0]), [[0, 0, 0.5, 3.0]])
    np.testing.assert_allclose(to_numpy(layers.leaky_relu_forward(xd, 0.1)[0]),
                               [[-0.2, -0.05, 0.5, 3.0]])
    np.testing.assert_allclose(to_numpy(layers.tanh_forward(xd)[0]), np.tanh(x), rtol=rtol)
    np.testing.assert_allclose(to_numpy(layers.sigmoid(xd)), 1 / (1 + np.exp(-x)), rtol=rtol)
    np.testing.assert_allclose(to_numpy(layers.softplus(xd)), np.log1p(np.exp(x)),
                               rtol=max(rtol, 1e-14))


def test_leaky_relu_slope_is_used_in_backward(xp, to_numpy):
    x = xp.asarray(np.array([[-1.0, 2.0]]))
    dx = layers.leaky_relu_backward(xp.ones((1, 2)), layers.leaky_relu_forward(x, 0.2)[1])
    np.testing.assert_allclose(to_numpy(dx), [[0.2, 1.0]],
                               err_msg="leaky_relu backward ignores its slope")


def test_sigmoid_and_softplus_are_finite_and_exact_for_huge_inputs(to_xp, to_numpy):
    x = to_xp(np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would be a warning -> error
        s = to_numpy(layers.sigmoid(x))
        sp = to_numpy(layers.softplus(x))
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
