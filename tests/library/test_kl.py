"""KL divergences: gradients (both sides, broadcast priors) by finite differences; properties.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the gradients
are checked by finite differences; on the other backends they must give NumPy's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae.kl import kl_diag_gaussians, kl_standard_normal, kl_standard_normal_elementwise


def _same_as_numpy(fn, host_args, device_args, check, backend_name):
    """Run ``fn`` on the backend and on NumPy: the KL and every gradient must agree."""
    got, ref = fn(*device_args), fn(*host_args)
    assert isinstance(got[0], float), f"{fn.__name__} must return the KL as a Python float"
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        check(g, r, err_msg=f"{fn.__name__} output {i} on {backend_name}")


def test_kl_standard_normal_gradient(backend_name, to_xp, assert_matches_numpy):
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    if backend_name != "numpy":  # the maths is checked once, on NumPy, by finite differences
        return _same_as_numpy(kl_standard_normal, (mu, logvar), to_xp(mu, logvar),
                              assert_matches_numpy, backend_name)
    _, dmu, dlogvar = kl_standard_normal(mu, logvar)
    err = fd_max_error(
        "kl_standard_normal",
        lambda: kl_standard_normal(mu, logvar)[0],
        {"mu": mu, "logvar": logvar},
        {"mu": dmu, "logvar": dlogvar},
    )
    assert err < 1e-8, f"KL(q || N(0, I)) gradient wrong: rel. error {err:.2e}"


@pytest.mark.parametrize("prior_shape", [(4, 3), (3,), (1, 3)], ids=["full", "latent", "1xlatent"])
def test_kl_diag_gaussians_gradient_both_sides(prior_shape, backend_name, to_xp,
                                               assert_matches_numpy):
    rng = np.random.default_rng(1)
    mu_q, logvar_q = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    mu_p, logvar_p = rng.standard_normal(prior_shape), rng.standard_normal(prior_shape)
    if backend_name != "numpy":  # the maths is checked once, on NumPy, by finite differences
        args = (mu_q, logvar_q, mu_p, logvar_p)
        return _same_as_numpy(kl_diag_gaussians, args, to_xp(*args), assert_matches_numpy,
                              backend_name)
    _, dmu_q, dlogvar_q, dmu_p, dlogvar_p = kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p)
    assert dmu_p.shape == prior_shape and dlogvar_p.shape == prior_shape, (
        f"prior gradients must be summed back to the prior's shape {prior_shape}, "
        f"got {dmu_p.shape} and {dlogvar_p.shape}"
    )
    err = fd_max_error(
        f"kl_diag_gaussians prior {prior_shape}",
        lambda: kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p)[0],
        {"mu_q": mu_q, "logvar_q": logvar_q, "mu_p": mu_p, "logvar_p": logvar_p},
        {"mu_q": dmu_q, "logvar_q": dlogvar_q, "mu_p": dmu_p, "logvar_p": dlogvar_p},
    )
    assert err < 1e-8, f"KL between Gaussians: gradient wrong, rel. error {err:.2e}"


def test_kl_is_zero_at_the_prior_and_positive_elsewhere(xp, to_xp, to_numpy):
    zeros = xp.zeros((5, 3))
    kl, dmu, dlogvar = kl_standard_normal(zeros, zeros)
    assert kl == 0.0, f"KL(N(0, I) || N(0, I)) must be 0, got {kl}: check the +1 and the signs"
    assert np.all(to_numpy(dmu) == 0) and np.all(to_numpy(dlogvar) == 0), (
        "the KL gradient at its minimum must be 0"
    )
    rng = np.random.default_rng(2)
    for _ in range(20):
        mu, logvar = to_xp(rng.standard_normal((5, 3)), rng.standard_normal((5, 3)))
        kl = kl_standard_normal(mu, logvar)[0]
        assert kl > 0, f"KL must be positive away from the prior, got {kl}: a sign is flipped"
    assert kl_standard_normal(xp.full((1, 1), 0.1), xp.zeros((1, 1)))[0] > 0, "mu != 0: KL > 0"
    assert kl_standard_normal(xp.zeros((1, 1)), xp.full((1, 1), -0.1))[0] > 0, "var != 1: KL > 0"


def test_kl_standard_normal_values_and_convention(xp, to_xp):
    mu, logvar = to_xp(np.array([[1.0, 0.0]]), np.array([[0.0, np.log(4.0)]]))
    # per dimension: 1/2 (var + mu^2 - 1 - log var)
    expected = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (4 + 0 - 1 - np.log(4.0))
    assert kl_standard_normal(mu, logvar)[0] == pytest.approx(expected, rel=1e-14), (
        "KL must be summed over latent dimensions and use var = exp(logvar)"
    )
    doubled = kl_standard_normal(xp.tile(mu, (7, 1)), xp.tile(logvar, (7, 1)))[0]
    assert doubled == pytest.approx(expected, rel=1e-14), "KL must be averaged over the batch"
    per_entry = kl_standard_normal_elementwise(mu, logvar)
    assert per_entry.shape == (1, 2) and float(per_entry.sum()) == pytest.approx(expected)


def test_kl_diag_gaussians_reduces_to_standard_normal_and_is_zero_for_equal_gaussians(xp, to_xp):
    rng = np.random.default_rng(3)
    mu, logvar = to_xp(rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))
    general = kl_diag_gaussians(mu, logvar, xp.zeros(3), xp.zeros(3))[0]
    assert general == pytest.approx(kl_standard_normal(mu, logvar)[0], rel=1e-12)
    assert kl_diag_gaussians(mu, logvar, mu, logvar)[0] == pytest.approx(0.0, abs=1e-14)
    assert kl_diag_gaussians(mu, logvar, mu + 0.1, logvar)[0] > 0


def test_kl_matches_a_monte_carlo_estimate(to_xp):
    rng = np.random.default_rng(4)
    mu_q, logvar_q = np.array([[0.3, -1.0]]), np.array([[-0.5, 0.4]])
    mu_p, logvar_p = np.array([0.2, 0.5]), np.array([0.3, -0.2])
    z = mu_q + np.exp(0.5 * logvar_q) * rng.standard_normal((200_000, 2))

    def log_normal(z, mu, logvar):
        return (-0.5 * (np.log(2 * np.pi) + logvar + (z - mu) ** 2 / np.exp(logvar))).sum(1)

    samples = log_normal(z, mu_q, logvar_q) - log_normal(z, mu_p, logvar_p)
    se = samples.std() / np.sqrt(samples.size)
    kl = kl_diag_gaussians(*to_xp(mu_q, logvar_q, mu_p, logvar_p))[0]  # on the backend
    assert abs(samples.mean() - kl) < 5 * se, (
        f"closed-form KL {kl:.4f} disagrees with Monte Carlo {samples.mean():.4f} +- {se:.4f}"
    )


def test_kl_with_grads_agrees_with_the_kl_and_reads_nothing_back(backend_name, to_xp, to_numpy):
    """kl_standard_normal_with_grads is the VAE's one-pass KL: the same numbers as the two
    public functions, and, inside a training step, no read-back to the host (on a GPU that would
    make the CPU wait before it can queue the backward pass)."""
    from minivae.kl import kl_standard_normal_with_grads
    from minivae.testing import opcount

    rng = np.random.default_rng(3)
    mu, logvar = to_xp(rng.standard_normal((5, 4)), rng.standard_normal((5, 4)))
    kl, dmu, dlogvar = kl_standard_normal(mu, logvar)
    elementwise = kl_standard_normal_elementwise(mu, logvar)
    with opcount.counting() as count:  # counts on the stand-in only
        got = kl_standard_normal_with_grads(mu, logvar)
    if backend_name == "standin":
        assert count.n_ops > 0, "the stand-in's operations were not counted"
        assert count.reads == [], f"device numbers were read back to the host: {count.reads}"
    for name, g, expected in zip(("kl", "dmu", "dlogvar"), got, (elementwise, dmu, dlogvar),
                                 strict=True):
        assert g.shape == (5, 4), name
        np.testing.assert_array_equal(to_numpy(g), to_numpy(expected), err_msg=name)
    assert float(to_numpy(got[0]).sum()) / 5 == pytest.approx(kl, rel=1e-12)
