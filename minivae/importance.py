"""Importance sampling with the posterior as proposal: the one core behind log p(x) estimates,
importance-weighted imputation and the anomaly scores.

For an example x and K draws z_k ~ q(z|x),

    log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x)
    log p(x) >= log (1/K) sum_k w_k                       (the IWAE bound, Burda et al. 2016)
    w~_k = w_k / sum_j w_j                                (self-normalised weights)

A model computes the three log-densities (:meth:`~minivae.models.base.LatentVariableModel.
importance_samples`); the functions here combine them. Weights are never exponentiated before
their maximum is subtracted, so a sharp decoder (log w of -1e4) cannot overflow or underflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .backend import Array, array_module
from .losses import LOG_2PI

__all__ = [
    "ImportanceSamples",
    "gaussian_log_density",
    "log_mean_exp",
    "logsumexp",
    "normal_log_density",
    "normalized_weights",
    "standard_normal_log_density",
]


@dataclass(frozen=True)
class ImportanceSamples:
    """K importance samples for a batch: each field (K, batch) float64, ``means`` optional.

    log_px_z: log p(x | z_k) (over observed entries only, with a mask);
    log_pz:   log p(z_k) under the prior;  log_qz: log q(z_k | x);
    means:    E[x | z_k], (K, batch, x_dim), when asked for (imputation).
    """

    log_px_z: Array
    log_pz: Array
    log_qz: Array
    means: Array | None = None

    @property
    def log_w(self) -> Array:
        """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x): (K, batch)."""
        return self.log_px_z + self.log_pz - self.log_qz

    @property
    def k(self) -> int:
        return int(self.log_px_z.shape[0])


def standard_normal_log_density(z: Array) -> Array:
    """log N(z; 0, I) = -1/2 * sum_j (z_j^2 + log 2 pi), summed over the last axis.

    z: (..., z_dim) -> (...,).
    """
    return -0.5 * (z * z + LOG_2PI).sum(axis=-1)


def gaussian_log_density(eps: Array, logvar: Array) -> Array:
    """log N(z; mu, diag(exp(logvar))) at z = mu + exp(0.5 * logvar) * eps, summed over the last
    axis:  -1/2 * sum_j (eps_j^2 + log 2 pi + logvar_j).

    Written with eps, not z: (z - mu)^2 / exp(logvar) = eps^2 exactly, with no cancellation.
    eps: (..., z_dim), logvar broadcastable to it -> (...,).
    """
    return -0.5 * (eps * eps + LOG_2PI + logvar).sum(axis=-1)


def normal_log_density(z: Array, mu: Array, logvar: Array) -> Array:
    """log N(z; mu, diag(exp(logvar))) = -1/2 * sum_j [log 2 pi + logvar_j + (z_j - mu_j)^2 /
    exp(logvar_j)], summed over the last axis, for any z (not only a draw from mu and logvar).

    z, mu, logvar: (..., z_dim), broadcastable -> (...,).
    """
    xp = array_module(z)
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * xp.exp(-logvar)).sum(axis=-1)


def logsumexp(a: Array, axis: int = 0) -> Array:
    """log sum_i exp(a_i) along ``axis``, as m + log sum_i exp(a_i - m) with m = max_i a_i."""
    xp = array_module(a)
    m = a.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    return (m + xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def log_mean_exp(log_w: Array, axis: int = 0) -> Array:
    """log (1/K) sum_k exp(log_w_k) = logsumexp(log_w) - log K, along ``axis`` (K entries)."""
    return logsumexp(log_w, axis=axis) - math.log(log_w.shape[axis])


def normalized_weights(log_w: Array, axis: int = 0) -> Array:
    """Self-normalised importance weights w~_k = exp(log_w_k - max) / sum_j exp(log_w_j - max),
    along ``axis``: the same shape as ``log_w``, summing to 1 along ``axis``."""
    xp = array_module(log_w)
    w = xp.exp(log_w - log_w.max(axis=axis, keepdims=True))
    return w / w.sum(axis=axis, keepdims=True)
