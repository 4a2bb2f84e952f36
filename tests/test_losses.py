"""Reconstruction losses: gradients by finite differences, the loss convention, stability."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae import losses
from minivae.likelihoods import Bernoulli, GaussianFixedVar, GaussianLearnedVar


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 6)), rng.random((4, 6))  # (out, x in [0, 1])


def test_bernoulli_nll_gradient(data):
    logits, x = data
    loss, dlogits = losses.bernoulli_nll(logits, x)
    err = fd_max_error(
        "bernoulli_nll", lambda: losses.bernoulli_nll(logits, x)[0], {"l": logits}, {"l": dlogits}
    )
    assert err < 1e-8, f"Bernoulli NLL gradient wrong: rel. error {err:.2e}"


def test_gaussian_nll_fixed_var_gradient(data):
    mean, x = data
    _, dmean = losses.gaussian_nll_fixed_var(mean, x, var=0.3)
    err = fd_max_error(
        "gaussian_nll_fixed_var",
        lambda: losses.gaussian_nll_fixed_var(mean, x, var=0.3)[0],
        {"mean": mean},
        {"mean": dmean},
    )
    assert err < 1e-8, f"fixed-variance Gaussian NLL gradient wrong: rel. error {err:.2e}"


def test_gaussian_nll_learned_var_gradient(data):
    mean, x = data
    logvar = np.random.default_rng(1).standard_normal(mean.shape) * 0.5
    _, dmean, dlogvar = losses.gaussian_nll(mean, logvar, x)
    err = fd_max_error(
        "gaussian_nll (learned var)",
        lambda: losses.gaussian_nll(mean, logvar, x)[0],
        {"mean": mean, "logvar": logvar},
        {"mean": dmean, "logvar": dlogvar},
    )
    assert err < 1e-8, f"learned-variance Gaussian NLL gradient wrong: rel. error {err:.2e}"


def test_mse_gradient(data):
    x_hat, x = data
    _, dx_hat = losses.mse(x_hat, x)
    err = fd_max_error("mse", lambda: losses.mse(x_hat, x)[0], {"x_hat": x_hat}, {"x_hat": dx_hat})
    assert err < 1e-8, f"MSE gradient wrong: rel. error {err:.2e}"


def test_losses_are_summed_over_pixels_and_averaged_over_the_batch(data):
    out, x = data
    twice = np.concatenate([out, out]), np.concatenate([x, x])
    for name, fn in [("bernoulli_nll", losses.bernoulli_nll), ("mse", losses.mse)]:
        assert fn(*twice)[0] == pytest.approx(fn(out, x)[0], rel=1e-12), (
            f"{name}: doubling the batch changed the loss; it must be a batch mean"
        )
    # summed over pixels: one row of D equal entries is D times one entry
    one = losses.mse(np.ones((1, 5)), np.zeros((1, 5)))[0]
    assert one == pytest.approx(5.0), f"mse must sum over pixels: expected 5, got {one}"
    per_entry = -math.log(0.5)
    bce = losses.bernoulli_nll(np.zeros((3, 4)), np.ones((3, 4)))[0]
    assert bce == pytest.approx(4 * per_entry), "Bernoulli NLL: sum over pixels, mean over batch"


def test_bernoulli_nll_matches_definition(data):
    logits, x = data
    p = 1 / (1 + np.exp(-logits))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum() / x.shape[0]
    got = losses.bernoulli_nll(logits, x)[0]
    assert got == pytest.approx(expected, rel=1e-12), "Bernoulli NLL is not the cross-entropy"


def test_bernoulli_nll_is_finite_and_exact_for_huge_logits():
    logits = np.array([[1e4, -1e4, 1e4, -1e4]])
    x = np.array([[1.0, 0.0, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = losses.bernoulli_nll(logits, x)
    # right guesses cost exactly 0; each confident wrong guess costs exactly 1e4 nats
    assert np.isfinite(loss), "Bernoulli NLL overflowed: is it log(sigmoid(l)) instead of softplus?"
    assert loss == 2e4, f"Bernoulli NLL of logits +-1e4 must be exactly 2e4, got {loss}"
    np.testing.assert_array_equal(dlogits, [[0.0, 0.0, 1.0, -1.0]])


def test_gaussian_fixed_var_is_scaled_mse_plus_a_constant(data):
    mean, x = data
    var = 0.7
    expected = losses.mse(mean, x)[0] / (2 * var) + 0.5 * x.shape[1] * math.log(2 * math.pi * var)
    got = losses.gaussian_nll_fixed_var(mean, x, var)[0]
    assert got == pytest.approx(expected, rel=1e-12), "Gaussian NLL (fixed var) != MSE/(2 var)+c"
    with pytest.raises(ValueError, match="var must be > 0, got 0"):
        losses.gaussian_nll_fixed_var(mean, x, 0.0)


def test_log_probs_agree_with_losses(data):
    out, x = data
    logvar = 0.3 * out
    pairs = [
        (Bernoulli(), out),
        (GaussianFixedVar(0.5), out),
        (GaussianLearnedVar(), np.concatenate([out, logvar], axis=1)),
    ]
    for lik, o in pairs:
        nll = lik.nll(o, x)[0]
        log_prob = lik.log_prob(o, x)
        assert log_prob.shape == (x.shape[0],), f"{lik.name}: log_prob must be (batch,)"
        assert -log_prob.mean() == pytest.approx(nll, rel=1e-12), (
            f"{lik.name}: -mean(log_prob) differs from nll"
        )
    # the learned-variance likelihood with logvar = log(var) is the fixed one
    fixed = GaussianFixedVar(0.5).nll(out, x)[0]
    learned = GaussianLearnedVar().nll(
        np.concatenate([out, np.full_like(out, math.log(0.5))], axis=1), x
    )[0]
    assert learned == pytest.approx(fixed, rel=1e-12)
