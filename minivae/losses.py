"""Reconstruction losses with their gradients.

The loss convention of the whole library, stated once:
    a loss is **summed over pixels (and latent dimensions), averaged over the batch, in nats**.
So for a batch x of shape (batch, D), ``loss = (1/batch) * sum_b sum_d loss[b, d]``, and every
gradient returned here is the gradient of that number (it carries the 1/batch).

Each loss returns ``(loss, d<input>...)``. Each ``*_log_prob`` returns the log-likelihood of every
example, shape (batch,), summed over pixels and not averaged, for evaluation and importance
sampling.
"""

from __future__ import annotations

import math

from . import accel
from .accel import inplace, kernels
from .backend import Array, array_module
from .layers import sigmoid, softplus

LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------------------
# Bernoulli
# ---------------------------------------------------------------------------------------------


def bernoulli_log_prob(logits: Array, x: Array) -> Array:
    """log p(x | logits) = sum_d [x_d * l_d - softplus(l_d)],   logits, x: (batch, D) -> (batch,).

    This is -BCE-with-logits. It never forms log(sigmoid(l)), which is -inf in float arithmetic
    for l = -1e4; softplus is computed stably, so logits of +-1e4 give exact, finite values.
    """
    return (x * logits - softplus(logits)).sum(axis=1)


def bernoulli_nll(logits: Array, x: Array) -> tuple[float, Array]:
    """Bernoulli negative log-likelihood from logits (binary cross-entropy with logits).

    loss    = (1/batch) * sum_{b,d} [softplus(l) - x * l]   = -(1/batch) sum_b log p(x_b | l_b)
    dlogits = (sigmoid(l) - x) / batch                       logits, x: (batch, D)
    """
    per_entry, dlogits = bernoulli_entries(logits, x)
    return float(per_entry.sum()) / x.shape[0], dlogits


def bernoulli_nll_rows(logits: Array, x: Array) -> tuple[Array, Array]:
    """The Bernoulli negative log-likelihood per example, and the gradient of its batch mean.

    nll_rows = sum_d [softplus(l) - x * l]   = -log p(x_b | l_b)                (batch,)
    dlogits  = (sigmoid(l) - x) / batch      = d(mean_b nll_rows) / d logits   (batch, D)

    For models that weight each row's term (IWAE's importance weights, M2's label weights):
    ``-bernoulli_log_prob`` and ``bernoulli_nll``'s gradient from the same passes, bit for bit
    the same numbers (a - b = -(b - a) exactly in floating point, and so is a sum of negated
    terms).
    """
    per_entry, dlogits = bernoulli_entries(logits, x)
    return per_entry.sum(axis=1), dlogits


def bernoulli_entries(logits: Array, x: Array) -> tuple[Array, Array]:
    """softplus(l) - x * l and (sigmoid(l) - x) / batch, entry by entry: two (batch, D) arrays,
    which :func:`bernoulli_nll` and :func:`bernoulli_nll_rows` sum (over all, or per row)."""
    batch = x.shape[0]
    fused = kernels.get("bernoulli_nll", array_module(logits))
    if fused is not None:  # on a GPU, the lines below as one kernel (see minivae.accel.kernels)
        return fused(logits, x, float(batch))
    if accel.enabled():  # the same numbers in fewer passes (see minivae.accel.inplace)
        return inplace.bernoulli_entries(logits, x)
    return softplus(logits) - x * logits, (sigmoid(logits) - x) / batch


# ---------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------


def gaussian_log_prob(mean: Array, logvar: Array | float, x: Array) -> Array:
    """log N(x | mean, exp(logvar))
        = -1/2 * sum_d [log(2 pi) + logvar + (x - mean)^2 / exp(logvar)].

    mean, x: (batch, D); logvar: (batch, D) or a float (a fixed variance). Returns (batch,).
    """
    xp = array_module(mean)
    diff2 = (x - mean) ** 2
    if isinstance(logvar, (int, float)):
        per_entry = LOG_2PI + logvar + diff2 / math.exp(logvar)
    else:
        per_entry = LOG_2PI + logvar + diff2 * xp.exp(-logvar)
    return -0.5 * per_entry.sum(axis=1)


def gaussian_nll(mean: Array, logvar: Array, x: Array) -> tuple[float, Array, Array]:
    """Gaussian negative log-likelihood with a learned variance per pixel.

    loss    = (1/batch) * sum_{b,d} 1/2 [log(2 pi) + logvar + (x - mean)^2 / exp(logvar)]
    dmean   = (mean - x) / exp(logvar) / batch
    dlogvar = 1/2 * (1 - (x - mean)^2 / exp(logvar)) / batch        all (batch, D)
    """
    xp = array_module(mean)
    batch = x.shape[0]
    inv_var = xp.exp(-logvar)
    diff = mean - x
    loss = float(0.5 * (LOG_2PI + logvar + diff * diff * inv_var).sum()) / batch
    dmean = diff * inv_var / batch
    dlogvar = 0.5 * (1 - diff * diff * inv_var) / batch
    return loss, dmean, dlogvar


def gaussian_nll_fixed_var(mean: Array, x: Array, var: float = 1.0) -> tuple[float, Array]:
    """Gaussian negative log-likelihood with one fixed variance ``var`` for every pixel.

    loss  = (1/batch) * sum_{b,d} 1/2 [log(2 pi var) + (x - mean)^2 / var]
          = squared error / (2 var) + a constant: MSE up to scale and shift.
    dmean = (mean - x) / var / batch                                   mean, x: (batch, D)
    """
    if not var > 0:
        raise ValueError(f"var must be > 0, got {var}")
    batch, dim = x.shape
    diff = mean - x
    loss = float(0.5 * (diff * diff).sum() / var) / batch + 0.5 * dim * math.log(2 * math.pi * var)
    dmean = diff / (var * batch)
    return loss, dmean


def mse(x_hat: Array, x: Array) -> tuple[float, Array]:
    """Squared error, with the library's convention: summed over pixels, averaged over the batch.

    loss   = (1/batch) * sum_{b,d} (x_hat - x)^2
    dx_hat = 2 (x_hat - x) / batch                                    x_hat, x: (batch, D)
    """
    batch = x.shape[0]
    diff = x_hat - x
    return float((diff * diff).sum()) / batch, 2 * diff / batch
