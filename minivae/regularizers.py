"""Regularizers of the VAE: how the KL term enters the objective.

The VAE computes the KL of every latent dimension, averaged over the batch:
``kl_per_latent`` of shape (latent,). A regularizer turns it into the penalty added to the
reconstruction term, and returns ``weight = d penalty / d kl_per_latent`` (latent,), which is all
the backward pass needs. Variants of the VAE (beta-VAE, capacity, free bits) are variants of this
one function, not copies of the model.
"""

from __future__ import annotations

from typing import Any

Array = Any


def beta_kl(kl_per_latent: Array, beta: float) -> tuple[float, Array]:
    """penalty = beta * sum_j KL_j;   weight_j = beta.

    beta = 1 gives the ELBO (Kingma & Welling 2014); beta > 1 the beta-VAE (Higgins et al. 2017).
    """
    return beta * float(kl_per_latent.sum()), beta + 0 * kl_per_latent
