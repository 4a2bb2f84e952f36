"""Temporary: the names of the former ``minivae.missing``, now in :mod:`minivae.masks`,
:mod:`minivae.imputation` and the likelihoods' ``mask`` argument. Removed once the course's
notebooks have moved to the new modules."""

from __future__ import annotations

from typing import Any

from .backend import Array
from .imputation import (
    importance_weighted_imputation,
    imputation_mse,
    mean_imputation,
    metropolis_within_gibbs,
    pseudo_gibbs,
    pseudo_gibbs_step,
)
from .likelihoods import Bernoulli
from .masks import block_mask, check_mask, mcar_mask, zero_fill
from .train import fit

__all__ = [
    "block_mask",
    "check_mask",
    "fit_masked",
    "imputation_mse",
    "importance_weighted_imputation",
    "masked_bernoulli_nll",
    "masked_log_prob",
    "masked_loss",
    "masked_loss_and_grads",
    "mcar_mask",
    "mean_imputation",
    "metropolis_within_gibbs",
    "pseudo_gibbs",
    "pseudo_gibbs_step",
    "zero_fill",
]


def masked_bernoulli_nll(logits: Array, x: Array, mask: Array) -> tuple[float, Array]:
    """``Bernoulli().nll(logits, x, mask)``."""
    return Bernoulli().nll(logits, x, mask)


def masked_log_prob(likelihood: Any, out: Array, x: Array, mask: Array) -> Array:
    """``likelihood.log_prob(out, x, mask)``."""
    return likelihood.log_prob(out, x, mask)


def masked_loss(model: Any, x: Array, mask: Array, eps: Array | None = None) -> dict:
    """``model.loss(x, eps, mask=mask)``."""
    return model.loss(x, eps, mask=mask)


def masked_loss_and_grads(model: Any, x: Array, mask: Array, eps: Array | None = None) -> tuple:
    """``model.loss_and_grads(x, eps, mask=mask)``."""
    return model.loss_and_grads(x, eps, mask=mask)


def fit_masked(model: Any, x: Array, mask: Array, **kwargs: Any) -> Any:
    """``fit(model, x, mask=mask, **kwargs)``."""
    return fit(model, x, mask=mask, **kwargs)
