"""Reconstruction losses: gradients by finite differences, the loss convention, stability.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the gradients
are checked by finite differences; on the other backends they must give NumPy's numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae import backend, losses
from minivae.likelihoods import Bernoulli, GaussianFixedVar, GaussianLearnedVar


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 6)), rng.random((4, 6))  # (out, x in [0, 1])


def _same_as_numpy(fn, args, check, backend_name):
    """Run the loss ``fn`` on the backend and on NumPy; the loss and every gradient must agree."""
    got = fn(*args[1])
    ref = fn(*args[0])
    assert isinstance(got[0], float), f"{fn.__name__} must return the loss as a Python float"
    check(got[0], ref[0], err_msg=f"{fn.__name__} loss on {backend_name}")
    for i, (g, r) in enumerate(zip(got[1:], ref[1:], strict=True)):
        check(g, r, err_msg=f"{fn.__name__} gradient {i} on {backend_name}")


def test_bernoulli_nll_gradient(data, backend_name, to_xp, assert_matches_numpy):
    logits, x = data
    if backend_name != "numpy":  # the maths is checked once, on NumPy, by finite differences
        args = ((logits, x), to_xp(logits, x))
        return _same_as_numpy(losses.bernoulli_nll, args, assert_matches_numpy, backend_name)
    loss, dlogits = losses.bernoulli_nll(logits, x)
    err = fd_max_error(
        "bernoulli_nll", lambda: losses.bernoulli_nll(logits, x)[0], {"l": logits}, {"l": dlogits}
    )
    assert err < 1e-8, f"Bernoulli NLL gradient wrong: rel. error {err:.2e}"


def test_gaussian_nll_fixed_var_gradient(data, backend_name, to_xp, assert_matches_numpy):
    mean, x = data
    if backend_name != "numpy":
        args = ((mean, x, 0.3), (*to_xp(mean, x), 0.3))
        return _same_as_numpy(losses.gaussian_nll_fixed_var, args, assert_matches_numpy,
                              backend_name)
    _, dmean = losses.gaussian_nll_fixed_var(mean, x, var=0.3)
    err = fd_max_error(
        "gaussian_nll_fixed_var",
        lambda: losses.gaussian_nll_fixed_var(mean, x, var=0.3)[0],
        {"mean": mean},
        {"mean": dmean},
    )
    assert err < 1e-8, f"fixed-variance Gaussian NLL gradient wrong: rel. error {err:.2e}"


def test_gaussian_nll_learned_var_gradient(data, backend_name, to_xp, assert_matches_numpy):
    mean, x = data
    logvar = np.random.default_rng(1).standard_normal(mean.shape) * 0.5
    if backend_name != "numpy":
        args = ((mean, logvar, x), to_xp(mean, logvar, x))
        return _same_as_numpy(losses.gaussian_nll, args, assert_matches_numpy, backend_name)
    _, dmean, dlogvar = losses.gaussian_nll(mean, logvar, x)
    err = fd_max_error(
        "gaussian_nll (learned var)",
        lambda: losses.gaussian_nll(mean, logvar, x)[0],
        {"mean": mean, "logvar": logvar},
        {"mean": dmean, "logvar": dlogvar},
    )
    assert err < 1e-8, f"learned-variance Gaussian NLL gradient wrong: rel. error {err:.2e}"


def test_mse_gradient(data, backend_name, to_xp, assert_matches_numpy):
    x_hat, x = data
    if backend_name != "numpy":
        args = ((x_hat, x), to_xp(x_hat, x))
        return _same_as_numpy(losses.mse, args, assert_matches_numpy, backend_name)
    _, dx_hat = losses.mse(x_hat, x)
    err = fd_max_error("mse", lambda: losses.mse(x_hat, x)[0], {"x_hat": x_hat}, {"x_hat": dx_hat})
    assert err < 1e-8, f"MSE gradient wrong: rel. error {err:.2e}"


def test_losses_are_summed_over_pixels_and_averaged_over_the_batch(data, xp, to_xp):
    out, x = to_xp(*data)
    twice = xp.concatenate([out, out]), xp.concatenate([x, x])
    for name, fn in [("bernoulli_nll", losses.bernoulli_nll), ("mse", losses.mse)]:
        assert fn(*twice)[0] == pytest.approx(fn(out, x)[0], rel=1e-12), (
            f"{name}: doubling the batch changed the loss; it must be a batch mean"
        )
    # summed over pixels: one row of D equal entries is D times one entry
    one = losses.mse(xp.ones((1, 5)), xp.zeros((1, 5)))[0]
    assert one == pytest.approx(5.0), f"mse must sum over pixels: expected 5, got {one}"
    per_entry = -math.log(0.5)
    bce = losses.bernoulli_nll(xp.zeros((3, 4)), xp.ones((3, 4)))[0]
    assert bce == pytest.approx(4 * per_entry), "Bernoulli NLL: sum over pixels, mean over batch"


def test_bernoulli_nll_matches_definition(data, to_xp):
    logits, x = data
    p = 1 / (1 + np.exp(-logits))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum() / x.shape[0]
    got = losses.bernoulli_nll(*to_xp(logits, x))[0]
    assert got == pytest.approx(expected, rel=1e-12), "Bernoulli NLL is not the cross-entropy"


def test_bernoulli_nll_is_finite_and_exact_for_huge_logits(to_xp, to_numpy):
    logits = np.array([[1e4, -1e4, 1e4, -1e4]])
    x = np.array([[1.0, 0.0, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = losses.bernoulli_nll(*to_xp(logits, x))
    # right guesses cost exactly 0; each confident wrong guess costs exactly 1e4 nats
    assert np.isfinite(loss), "Bernoulli NLL overflowed: is it log(sigmoid(l)) instead of softplus?"
    assert loss == 2e4, f"Bernoulli NLL of logits +-1e4 must be exactly 2e4, got {loss}"
    np.testing.assert_array_equal(to_numpy(dlogits), [[0.0, 0.0, 1.0, -1.0]])


def test_gaussian_fixed_var_is_scaled_mse_plus_a_constant(data, to_xp):
    mean, x = to_xp(*data)
    var = 0.7
    expected = losses.mse(mean, x)[0] / (2 * var) + 0.5 * x.shape[1] * math.log(2 * math.pi * var)
    got = losses.gaussian_nll_fixed_var(mean, x, var)[0]
    assert got == pytest.approx(expected, rel=1e-12), "Gaussian NLL (fixed var) != MSE/(2 var)+c"
    with pytest.raises(ValueError, match="var must be > 0, got 0"):
        losses.gaussian_nll_fixed_var(mean, x, 0.0)


def test_log_probs_agree_with_losses(data, xp, to_xp):
    out, x = to_xp(*data)
    logvar = 0.3 * out
    pairs = [
        (Bernoulli(), out),
        (GaussianFixedVar(0.5), out),
        (GaussianLearnedVar(), xp.concatenate([out, logvar], axis=1)),
    ]
    for lik, o in pairs:
        nll = lik.nll(o, x)[0]
        log_prob = lik.log_prob(o, x)
        assert log_prob.shape == (x.shape[0],), f"{lik.name}: log_prob must be (batch,)"
        assert backend.array_module(log_prob) is xp, f"{lik.name}: log_prob left the backend"
        assert -float(log_prob.mean()) == pytest.approx(nll, rel=1e-12), (
            f"{lik.name}: -mean(log_prob) differs from nll"
        )
    # the learned-variance likelihood with logvar = log(var) is the fixed one
    fixed = GaussianFixedVar(0.5).nll(out, x)[0]
    learned = GaussianLearnedVar().nll(
        xp.concatenate([out, xp.full_like(out, math.log(0.5))], axis=1), x
    )[0]
    assert learned == pytest.approx(fixed, rel=1e-12)


@pytest.mark.parametrize(
    "lik", [Bernoulli(), GaussianFixedVar(0.5), GaussianLearnedVar()],
    ids=["bernoulli", "gaussian", "gaussian_learned"],
)
def test_likelihood_samples_have_the_right_mean_on_the_backend(lik, xp, to_xp, to_numpy):
    n, dim = 4000, 3
    out = np.random.default_rng(0).standard_normal((n, dim * lik.outputs_per_pixel)) * 0.5
    out = to_xp(out.astype(np.float32))
    # the backend's own generator, and a NumPy one driving device data (draws copied over)
    for rng in (backend.default_rng(1, xp), np.random.default_rng(1)):
        x = lik.sample(out, rng)
        assert backend.array_module(x) is xp, f"{lik.name}: samples must stay on the backend"
        assert x.shape == (n, dim) and x.dtype == np.float32, f"{lik.name}: {x.shape}, {x.dtype}"
        if lik.name == "bernoulli":
            assert set(np.unique(to_numpy(x))) <= {0.0, 1.0}, "Bernoulli samples must be 0 or 1"
        residual = to_numpy(x - lik.mean(out)).astype(np.float64)
        se = residual.std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(residual.mean(axis=0)) < 5 * se), (
            f"{lik.name}: samples do not average to the likelihood's mean"
        )
        if lik.name == "gaussian":
            var = residual.var()  # n * dim draws of N(0, 0.5)
            assert abs(var - 0.5) < 5 * 0.5 * np.sqrt(2 / (n * dim)), f"variance {var}, not 0.5"
