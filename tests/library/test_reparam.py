"""The reparameterization trick: gradient, std = exp(0.5 * logvar), sample statistics.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the gradient
is checked by finite differences; on the other backends it must give NumPy's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae.reparam import reparameterize, reparameterize_backward


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reparameterize_gradient(backend_name, dtype, to_xp, assert_matches_numpy):
    rng = np.random.default_rng(0)
    mu, logvar, eps = (rng.standard_normal((4, 3)).astype(dtype) for _ in range(3))
    dz = rng.standard_normal((4, 3)).astype(dtype)
    z, cache = reparameterize(*to_xp(mu, logvar, eps))
    dmu, dlogvar = reparameterize_backward(to_xp(dz), cache)
    assert z.dtype == dmu.dtype == dlogvar.dtype == dtype, "the dtype must be kept"
    if backend_name != "numpy" or dtype == "float32":
        # NumPy's float64 result for the same inputs: float32 must agree to float32 precision
        host = [a.astype(np.float64) for a in (mu, logvar, eps, dz)]
        ref_z, ref_cache = reparameterize(*host[:3])
        ref_dmu, ref_dlogvar = reparameterize_backward(host[3], ref_cache)
        assert_matches_numpy(z, ref_z, err_msg=f"z on {backend_name}")
        assert_matches_numpy(dmu, ref_dmu, err_msg=f"dmu on {backend_name}")
        assert_matches_numpy(dlogvar, ref_dlogvar, err_msg=f"dlogvar on {backend_name}")
        return  # the maths is checked once, by finite differences in float64 on NumPy
    err = fd_max_error(
        "reparameterize",
        lambda: float((reparameterize(mu, logvar, eps)[0] * dz).sum()),
        {"mu": mu, "logvar": logvar},
        {"mu": dmu, "logvar": dlogvar},
    )
    assert err < 1e-8, f"reparameterization backward wrong: rel. error {err:.2e}"


def test_std_is_exp_half_logvar(xp, to_xp):
    logvar = xp.full((1, 1), np.log(9.0))  # variance 9, std 3 (exp(logvar) would give std 9)
    eps = to_xp(np.random.default_rng(1).standard_normal((100_000, 1)))
    z, _ = reparameterize(xp.zeros((100_000, 1)), xp.repeat(logvar, 100_000, 0), eps)
    var = float(z.var())
    assert abs(var - 9.0) < 0.2, (
        f"samples have variance {var:.2f}, expected 9 = exp(logvar): "
        + ("the std looks like exp(logvar); it is exp(0.5 * logvar)" if var > 40 else "")
    )


def test_samples_have_the_right_mean_and_variance(xp, to_xp, to_numpy):
    rng = np.random.default_rng(2)
    n = 200_000
    mu = np.array([[1.5, -2.0, 0.0]])
    logvar = np.array([[0.0, np.log(0.25), np.log(4.0)]])
    mu_n, logvar_n = xp.repeat(to_xp(mu), n, 0), xp.repeat(to_xp(logvar), n, 0)
    z, _ = reparameterize(mu_n, logvar_n, to_xp(rng.standard_normal((n, 3))))
    z = to_numpy(z)
    var = np.exp(logvar[0])
    se_mean = np.sqrt(var / n)
    assert np.all(np.abs(z.mean(0) - mu[0]) < 5 * se_mean), (
        f"sample means {z.mean(0)} differ from mu {mu[0]}"
    )
    se_var = var * np.sqrt(2 / n)  # standard error of a normal sample variance
    assert np.all(np.abs(z.var(0) - var) < 5 * se_var), (
        f"sample variances {z.var(0)} differ from exp(logvar) {var}"
    )


def test_reparameterize_refuses_eps_of_the_wrong_shape(xp):
    mu = xp.zeros((4, 3))
    with pytest.raises(ValueError, match=r"eps must have the shape of mu \(4, 3\), got \(3, 4\)"):
        reparameterize(mu, mu, xp.zeros((3, 4)))


def test_reparameterize_is_deterministic_given_eps(backend_name, to_xp, to_numpy):
    rng = np.random.default_rng(3)
    mu, logvar, eps = (rng.standard_normal((2, 2)) for _ in range(3))
    z1, _ = reparameterize(*to_xp(mu, logvar, eps))
    z2, _ = reparameterize(*to_xp(mu, logvar, eps))
    np.testing.assert_array_equal(to_numpy(z1), to_numpy(z2))
    rtol = 1e-15 if backend_name != "cupy" else 1e-12  # the GPU's exp may differ in the last bit
    np.testing.assert_allclose(to_numpy(z1), mu + np.exp(0.5 * logvar) * eps, rtol=rtol)
