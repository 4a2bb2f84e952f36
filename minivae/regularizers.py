"""Regularizers of the VAE: how the KL term enters the objective.

The VAE computes the KL of every latent dimension, averaged over the batch:
``kl_per_latent`` of shape (latent,). A regularizer turns it into the penalty added to the
reconstruction term, and returns ``weight = d penalty / d kl_per_latent`` (latent,), which is all
the backward pass needs. Variants of the VAE (beta-VAE, capacity, free bits) are variants of this
one function, not copies of the model:

    model = VAE(x_dim, z_dim=6)                  # beta_kl: the ELBO at model.beta = 1
    model.beta = 4.0                             # the beta-VAE (Higgins et al. 2017)
    model.regularizer = FreeBits(0.5)            # free bits: each latent's KL floored at 0.5 nats
    cap = Capacity(); model.regularizer = cap    # gamma * |KL - C|, gamma = model.beta
    fit(model, x, beta_schedule=capacity_schedule(cap, c_max=25, steps=5000, gamma=100))
    fit(model, x, beta_schedule=linear_warmup(2000))   # KL warm-up (minivae.schedules)

Every regularizer is a callable ``regularizer(kl_per_latent, beta) -> (penalty, weight)`` with
kl_per_latent (latent,) and weight (latent,).
"""

from __future__ import annotations

import math
from typing import Any

from .backend import array_module

Array = Any


def beta_kl(kl_per_latent: Array, beta: float) -> tuple[float, Array]:
    """penalty = beta * sum_j KL_j;   weight_j = beta.

    beta = 1 gives the ELBO (Kingma & Welling 2014); beta > 1 the beta-VAE (Higgins et al. 2017).
    """
    return beta * float(kl_per_latent.sum()), beta + 0 * kl_per_latent


def _check_nonnegative(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class FreeBits:
    """Free bits (Kingma et al. 2016): each latent's KL is floored at ``lam`` nats.

        penalty  = beta * sum_j max(KL_j, lam)
        weight_j = beta if KL_j > lam else 0

    A latent whose (batch-mean) KL is below lam costs a constant lam: the objective no longer
    pushes it all the way to the prior, which prevents posterior collapse. lam = 0 is beta_kl.
    kl_per_latent: (latent,).
    """

    def __init__(self, lam: float = 0.5):
        self.lam = _check_nonnegative(lam, "lam (the free bits per latent, in nats)")

    def __call__(self, kl_per_latent: Array, beta: float) -> tuple[float, Array]:
        xp = array_module(kl_per_latent)
        above = kl_per_latent > self.lam
        penalty = beta * float(xp.maximum(kl_per_latent, self.lam).sum())
        return penalty, beta * above.astype(kl_per_latent.dtype)

    def __repr__(self) -> str:
        return f"FreeBits(lam={self.lam})"


class Capacity:
    """The capacity objective of Burgess et al. (2018): gamma * |KL - C|, with gamma = beta.

        penalty  = beta * | sum_j KL_j - C |
        weight_j = beta * sign(sum_j KL_j - C)

    The KL is pulled towards a target capacity C (nats) rather than towards 0. Raising C
    linearly from 0 during training lets the code take in information one factor at a time;
    set ``self.capacity`` by hand or with :func:`minivae.schedules.capacity_schedule`.
    Use a large beta (gamma), e.g. 100 for the shapes data (Burgess et al. use 1000 on dSprites).
    """

    def __init__(self, capacity: float = 0.0):
        self.capacity = _check_nonnegative(capacity, "capacity C (nats)")

    def __call__(self, kl_per_latent: Array, beta: float) -> tuple[float, Array]:
        excess = float(kl_per_latent.sum()) - self.capacity
        sign = (excess > 0) - (excess < 0)
        return beta * abs(excess), beta * sign + 0 * kl_per_latent

    def __repr__(self) -> str:
        return f"Capacity(capacity={self.capacity})"
