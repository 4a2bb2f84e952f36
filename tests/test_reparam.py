"""The reparameterization trick: gradient, std = exp(0.5 * logvar), sample statistics."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae.reparam import reparameterize, reparameterize_backward


def test_reparameterize_gradient():
    rng = np.random.default_rng(0)
    mu, logvar, eps = (rng.standard_normal((4, 3)) for _ in range(3))
    dz = rng.standard_normal((4, 3))
    z, cache = reparameterize(mu, logvar, eps)
    dmu, dlogvar = reparameterize_backward(dz, cache)
    err = fd_max_error(
        "reparameterize",
        lambda: float((reparameterize(mu, logvar, eps)[0] * dz).sum()),
        {"mu": mu, "logvar": logvar},
        {"mu": dmu, "logvar": dlogvar},
    )
    assert err < 1e-8, f"reparameterization backward wrong: rel. error {err:.2e}"


def test_std_is_exp_half_logvar():
    logvar = np.full((1, 1), np.log(9.0))  # variance 9, std 3 (exp(logvar) would give std 9)
    eps = np.random.default_rng(1).standard_normal((100_000, 1))
    z, _ = reparameterize(np.zeros((100_000, 1)), np.repeat(logvar, 100_000, 0), eps)
    var = z.var()
    assert abs(var - 9.0) < 0.2, (
        f"samples have variance {var:.2f}, expected 9 = exp(logvar): "
        + ("the std looks like exp(logvar); it is exp(0.5 * logvar)" if var > 40 else "")
    )


def test_samples_have_the_right_mean_and_variance():
    rng = np.random.default_rng(2)
    n = 200_000
    mu = np.array([[1.5, -2.0, 0.0]])
    logvar = np.array([[0.0, np.log(0.25), np.log(4.0)]])
    z, _ = reparameterize(np.repeat(mu, n, 0), np.repeat(logvar, n, 0), rng.standard_normal((n, 3)))
    var = np.exp(logvar[0])
    se_mean = np.sqrt(var / n)
    assert np.all(np.abs(z.mean(0) - mu[0]) < 5 * se_mean), (
        f"sample means {z.mean(0)} differ from mu {mu[0]}"
    )
    se_var = var * np.sqrt(2 / n)  # standard error of a normal sample variance
    assert np.all(np.abs(z.var(0) - var) < 5 * se_var), (
        f"sample variances {z.var(0)} differ from exp(logvar) {var}"
    )


def test_reparameterize_refuses_eps_of_the_wrong_shape():
    mu = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"eps must have the shape of mu \(4, 3\), got \(3, 4\)"):
        reparameterize(mu, mu, np.zeros((3, 4)))


def test_reparameterize_is_deterministic_given_eps():
    rng = np.random.default_rng(3)
    mu, logvar, eps = (rng.standard_normal((2, 2)) for _ in range(3))
    z1, _ = reparameterize(mu, logvar, eps)
    z2, _ = reparameterize(mu, logvar, eps)
    np.testing.assert_array_equal(z1, z2)
    np.testing.assert_allclose(z1, mu + np.exp(0.5 * logvar) * eps, rtol=1e-15)
