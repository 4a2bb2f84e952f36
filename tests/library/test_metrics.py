"""Active units and the Mutual Information Gap on codes whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from minivae.data.shapes import make_shapes
from minivae.metrics import (
    active_units,
    discrete_mutual_information,
    discretize,
    latent_activity,
    mig_per_factor,
    mutual_information_gap,
    mutual_information_matrix,
)


def _factors(n: int = 4000, seed: int = 0) -> np.ndarray:
    return make_shapes(n, seed=seed, size=8).factors


def test_active_units_count_is_exact_on_constructed_codes():
    rng = np.random.default_rng(0)
    mu = np.zeros((1000, 6))
    mu[:, 0] = rng.standard_normal(1000)  # variance ~1: active
    mu[:, 2] = 0.2 * rng.standard_normal(1000)  # variance ~0.04: active
    mu[:, 3] = 0.05 * rng.standard_normal(1000)  # variance ~0.0025: inactive
    mu[:, 5] = 7.0  # constant: inactive, whatever its value
    assert active_units(mu) == 2
    assert active_units(mu, threshold=0.001) == 3
    np.testing.assert_allclose(latent_activity(mu), mu.var(axis=0))


def test_active_units_threshold_is_strict_and_uses_the_variance():
    mu = np.zeros((4, 3))
    mu[:, 0] = [-0.5, 0.5, -0.5, 0.5]  # population variance exactly 0.25: not above 0.25
    mu[:, 1] = [-1.0, 1.0, -1.0, 1.0]  # variance 1
    mu[:, 2] = [-0.06, 0.06, -0.06, 0.06]  # variance 0.0036 < 0.01, but std 0.06 > 0.01
    assert active_units(mu, threshold=0.25) == 1
    assert active_units(mu) == 2  # the std of column 2 would wrongly count it


def test_mutual_information_of_known_distributions():
    a = np.repeat(np.arange(4), 250)
    assert discrete_mutual_information(a, a) == pytest.approx(np.log(4))  # I(a; a) = H(a)
    b = np.tile(np.arange(5), 200)  # independent of a by construction
    assert discrete_mutual_information(a, b) == pytest.approx(0.0, abs=1e-12)
    assert discrete_mutual_information(a, a // 2) == pytest.approx(np.log(2))


def test_mig_of_a_code_that_copies_the_factors_is_near_one():
    factors = _factors()
    rng = np.random.default_rng(1)
    mu = factors + 0.01 * rng.standard_normal(factors.shape)  # one latent per factor
    assert mutual_information_gap(mu, factors) > 0.99
    # permuting and rescaling the latents, and adding a dead one, changes nothing
    mu2 = np.concatenate([-3.0 * mu[:, ::-1], np.zeros((len(mu), 1))], axis=1)
    assert mutual_information_gap(mu2, factors) > 0.99


def test_mig_of_a_code_unrelated_to_the_factors_is_near_zero():
    factors = _factors()
    rng = np.random.default_rng(2)
    assert mutual_information_gap(rng.standard_normal((len(factors), 6)), factors) < 0.03


def test_mig_of_an_entangled_code_is_low_even_though_the_information_is_there():
    factors = _factors()
    x, y = factors[:, 3].astype(float), factors[:, 4].astype(float)
    mu = np.stack([x + y, x - y], axis=1)  # a rotation of (x, y): the information is all there
    per = mig_per_factor(mu, factors[:, 3:])
    assert per.max() < 0.5
    # and a factor copied into two latents has no gap at all
    twice = np.stack([x, x, y], axis=1)
    np.testing.assert_allclose(mig_per_factor(twice, factors[:, 3:]), [0.0, 1.0], atol=0.01)


def test_mutual_information_matrix_shape_and_discretize():
    factors = _factors(500)
    mu = np.random.default_rng(3).standard_normal((500, 3))
    assert mutual_information_matrix(mu, factors, bins=10).shape == (3, 5)
    codes = discretize(mu, bins=10)
    assert codes.min() == 0 and codes.max() == 9 and codes.dtype == np.int64
    assert discretize(np.ones((5, 2)), 20).max() == 0  # a constant column is one bin


def test_a_factor_that_never_varies_has_gap_zero():
    factors = np.zeros((100, 2), dtype=np.int64)
    factors[:, 1] = np.arange(100) % 4
    mu = np.stack([factors[:, 1], np.zeros(100)], axis=1).astype(float)
    np.testing.assert_allclose(mig_per_factor(mu, factors), [0.0, 1.0])


def test_bad_input():
    factors = _factors(50)
    with pytest.raises(ValueError, match="at least 2 latents"):
        mutual_information_gap(np.zeros((50, 1)), factors)
    with pytest.raises(ValueError, match="n = 40"):
        mutual_information_gap(np.zeros((40, 3)), factors)
    with pytest.raises(TypeError, match="integer"):
        mutual_information_gap(np.zeros((50, 3)), factors.astype(float))
    with pytest.raises(ValueError, match=r"\(n, latent\)"):
        active_units(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        active_units(np.full((3, 2), np.nan))


def test_mutual_information_agrees_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    a = rng.integers(0, 6, size=3000)
    b = (a + rng.integers(0, 3, size=3000)) % 7  # dependent on a, not a copy
    assert discrete_mutual_information(a, b) == pytest.approx(metrics.mutual_info_score(a, b),
                                                              rel=1e-10)


def test_metrics_take_codes_from_a_device(device_backend_name):
    """Codes straight from a model on the stand-in or on CuPy: copied to the host, same numbers."""
    from minivae import backend

    xp = backend.get(device_backend_name)
    factors = _factors(n=500)
    rng = np.random.default_rng(2)
    mu = np.concatenate([factors + 0.1 * rng.standard_normal(factors.shape),
                         0.01 * rng.standard_normal((500, 2))], axis=1)
    on_device = xp.asarray(mu)
    assert active_units(on_device) == active_units(mu) == factors.shape[1]
    np.testing.assert_array_equal(latent_activity(on_device), latent_activity(mu))
    assert mutual_information_gap(on_device, factors) == mutual_information_gap(mu, factors)
