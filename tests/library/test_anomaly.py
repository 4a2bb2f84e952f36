"""Anomaly scores from a VAE, and the hand-written ROC curve and AUC against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from minivae import VAE, fit
from minivae.anomaly import (
    negative_elbo,
    reconstruction_error,
    reconstruction_probability,
    roc_auc,
    roc_curve,
)

# ----------------------------------------------------------------------------- ROC and AUC


def _auc_by_pairs(scores, labels):
    """P(anomaly scores higher than normal) + 1/2 P(tie), over all pairs: the definition."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] > neg).mean() + 0.5 * (pos[:, None] == neg).mean())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_roc_auc_equals_sklearn_and_the_pair_count(seed, ties):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    labels = (rng.random(80) < 0.3).astype(int)
    scores = rng.normal(size=80) + labels
    if ties:  # few distinct values: many ties, some across the two classes
        scores = np.round(scores)
    auc = roc_auc(scores, labels)
    assert auc == pytest.approx(metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert auc == pytest.approx(_auc_by_pairs(scores, labels), abs=1e-12)
    fpr, tpr, thresholds = roc_curve(scores, labels)
    ref_fpr, ref_tpr, _ = metrics.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert thresholds[0] == np.inf and np.all(np.diff(thresholds) < 0)


def test_roc_extremes_and_ties():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert roc_auc(np.ones(4), labels) == 0.5, "all tied: chance, not 0 or 1"
    assert roc_auc(np.array([0.0, 1.0, 1.0, 2.0]), labels) == 0.875  # one tied pair counts 1/2
    fpr, tpr, _ = roc_curve(np.ones(4), labels)
    np.testing.assert_array_equal(fpr, [0, 1]) and np.testing.assert_array_equal(tpr, [0, 1])
    assert roc_auc([0.3, 0.1, 0.7], [True, False, True]) == 1.0  # lists and booleans work


@pytest.mark.parametrize(
    "scores,labels,error,words",
    [
        (np.zeros(3), np.zeros(4, int), ValueError, "same length"),
        (np.zeros((3, 1)), np.zeros(3, int), ValueError, "1-D"),
        (np.array([0.0, np.nan]), np.array([0, 1]), ValueError, "NaN"),
        (np.zeros(3), np.array([0, 1, 2]), ValueError, "0 \\(normal\\) or 1 \\(anomaly\\)"),
        (np.zeros(3), np.array([0.0, 1.0, 0.0]), ValueError, "integers or booleans"),
        (np.zeros(3), np.ones(3, int), ValueError, "both classes"),
        (np.array(["a", "b"]), np.array([0, 1]), TypeError, "real numbers"),
    ],
)
def test_roc_bad_input(scores, labels, error, words):
    with pytest.raises(error, match=words):
        roc_auc(scores, labels)


# ----------------------------------------------------------------------------- scores


def _tiny(likelihood="bernoulli"):
    model = VAE(6, 2, (5,), likelihood, dtype="float64", seed=0)
    x = np.random.default_rng(0).random((4, 6))
    return model, x


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_scores_by_hand(likelihood):
    model, x = _tiny(likelihood)
    err = reconstruction_error(model, x)
    assert err.shape == (4,) and err.dtype == np.float64
    np.testing.assert_allclose(err, ((x - model.reconstruct(x)) ** 2).sum(1), rtol=1e-12)

    rng = np.random.default_rng(7)
    eps = rng.standard_normal((3, 4, 2))
    mu, logvar = model.encode(x)
    z = mu + np.exp(0.5 * logvar) * eps
    log_px = np.array([model.likelihood.log_prob(model.decoder_output(z_l), x) for z_l in z])
    got = reconstruction_probability(model, x, n_samples=3, seed=np.random.default_rng(7))
    np.testing.assert_allclose(got, -log_px.mean(0), rtol=1e-12)
    kl = -0.5 * (1 + logvar - mu**2 - np.exp(logvar)).sum(1)
    got = negative_elbo(model, x, n_samples=3, seed=np.random.default_rng(7))
    np.testing.assert_allclose(got, -log_px.mean(0) + kl, rtol=1e-12)


def test_scores_are_seeded_and_average_over_samples():
    model, x = _tiny()
    a = reconstruction_probability(model, x, n_samples=5, seed=1)
    assert np.array_equal(a, reconstruction_probability(model, x, n_samples=5, seed=1))
    assert not np.array_equal(a, reconstruction_probability(model, x, n_samples=5, seed=2))
    # more samples, less noise: the spread over seeds shrinks
    few = np.std([negative_elbo(model, x, n_samples=1, seed=s) for s in range(30)], axis=0)
    many = np.std([negative_elbo(model, x, n_samples=50, seed=s) for s in range(30)], axis=0)
    assert np.all(many < few)


def test_scores_bad_input():
    model, x = _tiny()
    with pytest.raises(ValueError, match=r"\(batch, 6\)"):
        reconstruction_error(model, x[:, :5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reconstruction_probability(model, x * 3)
    with pytest.raises(ValueError, match="n_samples"):
        negative_elbo(model, x, n_samples=0)


@pytest.mark.slow
def test_a_vae_trained_on_one_cluster_flags_the_other():
    """Normal: blobs near one corner of the unit cube; anomalies: the opposite corner."""
    rng = np.random.default_rng(0)
    normal = np.clip(0.2 + 0.1 * rng.normal(size=(400, 8)), 0, 1)
    model = VAE(8, 2, (32,), "bernoulli", seed=0)
    fit(model, normal[:300].astype(np.float32), epochs=30, batch_size=50, lr=3e-3, progress=False)
    held_out = normal[300:]
    anomalies = np.clip(0.8 + 0.1 * rng.normal(size=(100, 8)), 0, 1)
    x = np.concatenate([held_out, anomalies]).astype(np.float32)
    labels = np.r_[np.zeros(100, int), np.ones(100, int)]
    for score in (reconstruction_error, negative_elbo, reconstruction_probability):
        auc = roc_auc(score(model, x), labels)
        print(f"AUC {score.__name__}: {auc:.3f}")
        assert auc > 0.95, f"{score.__name__}: AUC {auc:.3f}"


def test_scores_on_a_device_give_numpys_numbers(device_backend_name):
    """On the stand-in (no stray NumPy call on device data) and on CuPy: NumPy's scores, back
    as NumPy arrays. NumPy generators drive the draws, so both see the same z."""
    x = np.random.default_rng(0).random((10, 6)).astype(np.float32)
    labels = np.r_[np.zeros(5, int), np.ones(5, int)]

    def run(score, backend_name):
        model = VAE(6, 2, (5,), seed=0, backend=backend_name)
        if score is reconstruction_error:  # no draws: z = mu
            return score(model, x)
        return score(model, x, seed=np.random.default_rng(3))

    for score in (reconstruction_error, negative_elbo, reconstruction_probability):
        on_host, on_device = run(score, "numpy"), run(score, device_backend_name)
        assert isinstance(on_device, np.ndarray), "scores come back as NumPy arrays"
        np.testing.assert_allclose(on_device, on_host, rtol=1e-5, err_msg=score.__name__)
        assert roc_auc(on_device, labels) == roc_auc(on_host, labels)
