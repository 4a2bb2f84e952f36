"""Anomaly scores from a trained VAE, and the ROC curve and its area to judge them.

A model trained on normal data explains normal data well; an anomaly is an example it explains
badly. Every score here is **higher = more anomalous**, one number per example (batch,):

- :func:`reconstruction_error`: ||x - x_hat||^2 with x_hat = E[x | z = mu(x)].
- :func:`negative_elbo`: -ELBO(x) = -E_q[log p(x|z)] + KL(q(z|x) || p(z)), averaged over
  ``n_samples`` draws of z, in nats.
- :func:`reconstruction_probability` (An & Cho 2015): minus the average over L draws
  z_l ~ q(z|x) of log p(x | z_l), in nats. Unlike the reconstruction error it weighs each pixel
  by the decoder's own uncertainty (with a learned variance) and averages over q, not just mu.

:func:`roc_curve` and :func:`roc_auc` take those scores and labels (1 = anomaly, 0 = normal).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import backend
from .backend import Array
from .kl import kl_standard_normal_elementwise
from .models.base import Batch, LatentVariableModel, checked_overflow
from .validation import check_positive_int

__all__ = [
    "negative_elbo",
    "reconstruction_error",
    "reconstruction_probability",
    "roc_auc",
    "roc_curve",
]


def _prepare(model: Any, x: Any, what: str) -> Batch:
    if not isinstance(model, LatentVariableModel):
        raise TypeError(
            f"{what} needs a latent-variable model with a posterior q(z|x) and a likelihood, "
            f"such as a VAE; got {type(model).__name__} (for an Autoencoder, score "
            "((model.reconstruct(x) - x) ** 2).sum(axis=1) directly)"
        )
    return model.prepare(x)


@checked_overflow
def reconstruction_error(model: LatentVariableModel, x: Array) -> np.ndarray:
    """sum_d (x_d - x_hat_d)^2 per example, x_hat = mean of p(x | z = mu(x)): (batch,) float64."""
    batch = _prepare(model, x, "reconstruction_error")
    diff = model.reconstruct(batch) - batch.x
    score = model.check_result((diff * diff).sum(axis=1), "reconstruction_error(x)", x=batch)
    return backend.to_numpy(score).astype(np.float64)


def _log_px_samples(model: LatentVariableModel, batch: Any, n_samples: int, seed: Any) -> Array:
    """log p(x | z_l) for L draws z_l ~ q(z|x): (L, batch) float64 (the importance core)."""
    n_samples = check_positive_int(n_samples, "n_samples")
    rng = backend.generator(seed, model.xp)
    return model.importance_samples(batch, n_samples, rng).log_px_z


@checked_overflow
def reconstruction_probability(
    model: LatentVariableModel, x: Array, n_samples: int = 10, seed: Any = 0
) -> np.ndarray:
    """The anomaly score of An & Cho (2015): -(1/L) sum_l log p(x | z_l),  z_l ~ q(z|x).

    x: (batch, x_dim) -> (batch,) float64, in nats; higher = less probable = more anomalous.
    (An & Cho threshold the reconstruction probability itself, (1/L) sum_l log p(x | z_l), an
    average log-probability; this is its negative, so that all scores of this module point the
    same way.)
    """
    batch = _prepare(model, x, "reconstruction_probability")
    log_px = _log_px_samples(model, batch, n_samples, seed)
    score = model.check_result(-log_px.mean(axis=0), "reconstruction_probability(x)", x=batch)
    return backend.to_numpy(score)


@checked_overflow
def negative_elbo(
    model: LatentVariableModel, x: Array, n_samples: int = 10, seed: Any = 0
) -> np.ndarray:
    """-ELBO(x) = -(1/L) sum_l log p(x | z_l) + KL(q(z|x) || N(0, I)) per example: (batch,).

    The KL is in closed form; beta is not applied (this is the ELBO, a bound on log p(x)).
    """
    batch = _prepare(model, x, "negative_elbo")
    log_px = _log_px_samples(model, batch, n_samples, seed)
    mu, logvar = model.posterior(batch)
    kl = kl_standard_normal_elementwise(mu, logvar).sum(axis=1)
    score = model.check_result(-log_px.mean(axis=0) + kl, "negative_elbo(x)", x=batch)
    return backend.to_numpy(score).astype(np.float64)


def _check_scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    scores = backend.to_numpy(scores) if hasattr(scores, "shape") else np.asarray(scores)
    labels = backend.to_numpy(labels) if hasattr(labels, "shape") else np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1:
        raise ValueError(
            f"scores and labels must be 1-D (n,), got shapes {scores.shape} and {labels.shape}"
        )
    if scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must have the same length, got {scores.shape} and {labels.shape}"
        )
    if scores.size == 0:
        raise ValueError(
            "scores and labels are empty; a ROC curve needs at least one normal example "
            "(label 0) and one anomaly (label 1)"
        )
    if scores.dtype.kind not in "fiu":
        raise TypeError(f"scores must be real numbers, got dtype {scores.dtype}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values; they must be finite")
    if labels.dtype.kind not in "biu" or not np.isin(labels, (0, 1)).all():
        raise ValueError(
            "labels must be 0 (normal) or 1 (anomaly), as integers or booleans, got "
            f"dtype {labels.dtype} with values {np.unique(labels)[:5].tolist()}"
        )
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError(
            "labels must contain both classes (0 = normal and 1 = anomaly) to draw a ROC curve, "
            f"got only {int(labels[0])}"
        )
    return scores.astype(np.float64), labels


def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve: for each threshold t, flag every example with score >= t.

        tpr(t) = #{anomalies with score >= t} / #anomalies
        fpr(t) = #{normals   with score >= t} / #normals

    Thresholds are the distinct scores, from the highest down, preceded by +inf (nothing
    flagged); tied scores are flagged together, so a tie is one diagonal step of the curve.
    scores, labels: (n,), labels 1 = anomaly. Returns (fpr, tpr, thresholds), each (m + 1,) for
    m distinct scores, starting at (0, 0) and ending at (1, 1).
    """
    scores, labels = _check_scores_labels(scores, labels)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # index ending each tie group
    tps = np.cumsum(y)[last_of_group]
    fps = (last_of_group + 1) - tps
    tpr = np.r_[0.0, tps / y.sum()]
    fpr = np.r_[0.0, fps / (~y).sum()]
    return fpr, tpr, np.r_[np.inf, s[last_of_group]]


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve by the trapezoidal rule.

        AUC = sum_i (fpr_i - fpr_{i-1}) * (tpr_i + tpr_{i-1}) / 2

    Equal to P(score of a random anomaly > score of a random normal) + 1/2 P(equal): 1 is a
    perfect ranking, 0.5 is chance (ties count half, as in scikit-learn).
    """
    fpr, tpr, _ = roc_curve(scores, labels)
    return float((np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2).sum())
