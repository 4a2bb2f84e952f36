"""Imputation with a trained VAE: filling in the missing entries of incomplete data.

Masks follow :mod:`minivae.masks` (True = observed). Observed entries are never changed, and
every method is seeded.

- :func:`mean_imputation`: the baseline, each column's observed mean.
- :func:`pseudo_gibbs` (Rezende et al. 2014): repeat z ~ q(z | x_tilde), x_miss ~ p(x_miss | z).
- :func:`metropolis_within_gibbs` (Mattei & Frellsen 2018): the same chain with a
  Metropolis-Hastings accept/reject of z, so that it samples the model's true conditional.
- :func:`importance_weighted_imputation` (MIWAE, Mattei & Frellsen 2019): K samples z_k of
  q(z | x_filled), self-normalised weights w_k ∝ p(x_obs | z_k) p(z_k) / q(z_k | x_filled),
  imputation = sum_k w_k E[x_miss | z_k] (the importance-sampling core of
  :mod:`minivae.importance`).

A model to impute with implements the latent-variable protocol (:mod:`minivae.models.base`):
``prepare``, ``posterior``, ``decoder_output``, ``likelihood`` and ``importance_samples``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import backend
from .backend import Array
from .importance import normal_log_density, normalized_weights
from .masks import check_mask, check_real_array
from .models.base import LatentVariableModel, checked_overflow
from .validation import NotFiniteError, all_finite, check_int, check_positive_int

__all__ = [
    "imputation_mse",
    "importance_weighted_imputation",
    "mean_imputation",
    "metropolis_within_gibbs",
    "pseudo_gibbs",
    "pseudo_gibbs_step",
]


def _latent_model(model: Any, what: str) -> LatentVariableModel:
    """Refuse a model without a posterior q(z|x) (an Autoencoder) with a clear message."""
    if not isinstance(model, LatentVariableModel):
        raise TypeError(
            f"{what} needs a latent-variable model with a posterior q(z|x), such as a VAE; "
            f"got {type(model).__name__}"
        )
    return model


def _incomplete(x: Any, mask: Any, name: str = "x") -> tuple[Array, Array]:
    """(x, mask) checked: floats (n, d), a mask that fits, finite observed entries (missing
    ones may hold anything, NaN included), both on the same backend."""
    x = check_real_array(x, name, floating=True)
    if len(x.shape) != 2:
        raise ValueError(
            f"{name} must have 2 axes (n, d), got shape {tuple(x.shape)}; "
            "for one column use x[:, None]"
        )
    mask = check_mask(mask, x.shape)
    xp = backend.array_module(x, mask)  # a NumPy mask may go with CuPy data, and vice versa
    x, mask = backend.to_device(x, xp), backend.to_device(mask, xp)
    observed = xp.where(mask, x, 0)
    if not all_finite(observed):
        bad = int((~xp.isfinite(observed)).sum())
        raise ValueError(
            f"{name} has {bad} NaN or infinite values at observed entries (mask True); "
            "mark them missing (mask False) or fix them"
        )
    return x, mask


def mean_imputation(x: Array, mask: Array) -> Array:
    """The baseline: each missing entry gets its column's mean over the observed entries.

        x_hat_bd = x_bd if mask_bd else (sum_b' mask_b'd x_b'd) / (sum_b' mask_b'd)

    x: (n, d) floats (missing entries are never read and may hold NaN); mask: (n, d) booleans.
    A column with no observed entry has no mean: a ValueError names it.
    """
    x, mask = _incomplete(x, mask)
    xp = backend.array_module(x)
    filled = xp.where(mask, x, 0)
    counts = mask.sum(axis=0)
    if bool((counts == 0).any()):
        empty = backend.to_numpy(xp.flatnonzero(counts == 0))[:5].tolist()
        raise ValueError(
            f"mask has {int((counts == 0).sum())} column(s) with no observed entry (e.g. "
            f"columns {empty}): they have no mean to impute from"
        )
    means = filled.sum(axis=0) / xp.maximum(counts, 1)
    return xp.where(mask, x, means[None, :]).astype(x.dtype, copy=False)


def imputation_mse(x_imputed: Array, x_true: Array, mask: Array) -> float:
    """Mean squared error over the missing entries only: mean_{(b,d): not mask} (x_imp - x)^2.

    x_imputed, x_true: arrays of the same shape (lists are converted), finite at the missing
    entries; mask: booleans of that shape, True = observed.
    """
    x_true = check_real_array(x_true, "x_true")
    x_imputed = check_real_array(x_imputed, "x_imputed")
    mask = check_mask(mask, x_true.shape)
    if tuple(x_imputed.shape) != tuple(x_true.shape):
        raise ValueError(
            f"x_imputed must have the shape of x_true {tuple(x_true.shape)}, "
            f"got {tuple(x_imputed.shape)}"
        )
    missing = ~backend.to_numpy(mask)
    if not missing.any():
        raise ValueError("mask has no missing entry: there is nothing to score")
    for name, values in (("x_imputed", x_imputed), ("x_true", x_true)):
        at_missing = backend.to_numpy(values)[missing]
        if not np.isfinite(at_missing).all():
            raise ValueError(
                f"{name} has {int((~np.isfinite(at_missing)).sum())} NaN or infinite values at "
                "the missing entries it is scored on"
            )
    diff = backend.to_numpy(x_imputed).astype(np.float64) - backend.to_numpy(x_true)
    with np.errstate(over="ignore"):
        mse = float((diff[missing] ** 2).mean())
    if not np.isfinite(mse):
        raise ValueError(
            "the squared errors overflow float64: x_imputed and x_true differ by up to "
            f"{float(np.abs(diff[missing]).max()):.3g}; rescale both"
        )
    return mse


@checked_overflow
def pseudo_gibbs_step(
    model: LatentVariableModel,
    x_tilde: Array,
    mask: Array,
    eps: Array | None = None,
    rng: Any = None,
    sample_x: bool = False,
) -> Array:
    """One step of pseudo-Gibbs sampling (Rezende et al. 2014): a new completion of x.

        z ~ q(z | x_tilde)  as  z = mu + exp(0.5 * logvar) * eps,
        x_miss <- E[x_miss | z]   (or a draw of p(x_miss | z) with ``sample_x=True``),
        x_obs stays as it is.

    x_tilde: (batch, x_dim), the current completion (observed entries + current guesses);
    eps: (batch, z_dim), drawn from ``rng`` (default: the model's generator) when None.
    """
    _latent_model(model, "pseudo_gibbs_step")
    mask = check_mask(mask, getattr(x_tilde, "shape", ()))
    # complete: the guesses are the chain's state
    x_tilde = model.prepare(x_tilde, "x_tilde").x
    mask = backend.to_device(mask, model.xp)
    rng = backend.generator(model.rng if rng is None else rng, model.xp, "rng")
    if eps is None:
        eps = model.draw_eps(x_tilde.shape[0], rng)
    else:
        eps = model.check_eps(eps, x_tilde.shape[0])
    x_new = _pseudo_gibbs_step(model, x_tilde, mask, eps, rng, sample_x)[0]
    return model.check_result(x_new, "pseudo_gibbs_step's imputation", x=x_tilde)


def _pseudo_gibbs_step(
    model: LatentVariableModel, x_tilde: Array, mask: Array, eps: Array, rng: Any,
    sample_x: bool,
) -> tuple[Array, Array]:
    """(new x_tilde, E[x | z]) for one pseudo-Gibbs step; inputs already checked."""
    xp = model.xp
    mu, logvar = model.posterior(x_tilde)
    z = _finite_z(model, mu + xp.exp(0.5 * logvar) * eps, x_tilde)
    out = model.decoder_output(z)
    x_mean = model.likelihood.mean(out)
    fill = model.likelihood.sample(out, rng) if sample_x else x_mean
    return xp.where(mask, x_tilde, fill), x_mean


def _finite_z(model: LatentVariableModel, z: Array, x: Array) -> Array:
    """z if finite; else a NotFiniteError naming the overflow (not a 'bad z' in the decoder)."""
    if not all_finite(z):
        raise NotFiniteError(model.explain_overflow("the chain's z ~ q(z|x)", x=x))
    return z


def _chain_args(n_steps: int, burn_in: int | None) -> tuple[int, int]:
    n_steps = check_positive_int(n_steps, "n_steps")
    burn_in = n_steps // 2 if burn_in is None else check_int(burn_in, "burn_in", minimum=0)
    if not 0 <= burn_in < n_steps:
        raise ValueError(f"burn_in must be in [0, n_steps) = [0, {n_steps}), got {burn_in}")
    return n_steps, int(burn_in)


@checked_overflow
def pseudo_gibbs(
    model: LatentVariableModel,
    x: Array,
    mask: Array,
    n_steps: int = 50,
    burn_in: int | None = None,
    sample_x: bool = True,
    init: Array | None = None,
    seed: Any = 0,
) -> Array:
    """Single imputation by pseudo-Gibbs sampling (Rezende et al. 2014).

    Starts from ``init`` (default: x zero-filled), runs ``n_steps`` of :func:`pseudo_gibbs_step`
    (drawing x_miss ~ p(x_miss | z) when ``sample_x``), and returns x with each missing entry
    replaced by the average of E[x_miss | z_t] over the steps after ``burn_in`` (default half).
    x, mask: (batch, x_dim) -> (batch, x_dim); observed entries are returned unchanged.

    The chain trusts the encoder on *completed* rows. An encoder trained on incomplete,
    zero-filled rows (``fit(..., mask=...)``) never saw one, and the chain can drift far from the
    data (chapter 05 shows it on a table with half its entries missing);
    :func:`metropolis_within_gibbs` corrects the encoder with an accept/reject step.
    """
    n_steps, burn_in = _chain_args(n_steps, burn_in)
    _latent_model(model, "pseudo_gibbs")
    batch = model.prepare(x, mask=mask)
    x, mask = batch.x, batch.mask
    x_tilde = x if init is None else model.prepare(init, "init").x
    x_tilde = model.xp.where(mask, x, x_tilde)
    rng = backend.generator(seed, model.xp)
    total = model.xp.zeros_like(x)
    for t in range(n_steps):
        eps = model.draw_eps(x.shape[0], rng)
        x_tilde, x_mean = _pseudo_gibbs_step(model, x_tilde, mask, eps, rng, sample_x)
        if t >= burn_in:
            total += x_mean
    x_hat = model.xp.where(mask, x, total / (n_steps - burn_in))
    return model.check_result(x_hat, "pseudo_gibbs's imputation", x=x)


@checked_overflow
def metropolis_within_gibbs(
    model: LatentVariableModel,
    x: Array,
    mask: Array,
    n_steps: int = 50,
    burn_in: int | None = None,
    seed: Any = 0,
) -> Array:
    """Single imputation by Metropolis-within-Gibbs sampling (Mattei & Frellsen 2018).

    The state is (z, x_miss); x_tilde is x completed with x_miss. Each step:

        propose z' ~ q(z | x_tilde), accept it with probability min(1, rho),
            rho = p(x_tilde | z') p(z') q(z | x_tilde) / (p(x_tilde | z) p(z) q(z' | x_tilde)),
        then draw x_miss ~ p(x_miss | z).

    Unlike pseudo-Gibbs, this chain leaves p(z, x_miss | x_obs) of the model invariant. The
    returned imputation averages E[x_miss | z_t] over the steps after ``burn_in`` (default half).
    """
    n_steps, burn_in = _chain_args(n_steps, burn_in)
    _latent_model(model, "metropolis_within_gibbs")
    prepared = model.prepare(x, mask=mask)
    x, mask = prepared.x, prepared.mask
    xp, lik = model.xp, model.likelihood
    rng = backend.generator(seed, model.xp)
    batch = x.shape[0]
    x_tilde = x
    mu, logvar = model.posterior(x_tilde)
    z = _finite_z(model, mu + xp.exp(0.5 * logvar) * model.draw_eps(batch, rng), x)
    out = model.decoder_output(z)
    total = xp.zeros_like(x)
    for t in range(n_steps):
        mu, logvar = model.posterior(x_tilde)
        z_new = _finite_z(model, mu + xp.exp(0.5 * logvar) * model.draw_eps(batch, rng), x_tilde)
        out_new = model.decoder_output(z_new)
        # p(z) enters as -z^2/2: its constant cancels in the ratio
        log_rho = (
            lik.log_prob(out_new, x_tilde) - 0.5 * (z_new**2).sum(axis=1)
            + normal_log_density(z, mu, logvar)
            - lik.log_prob(out, x_tilde) + 0.5 * (z**2).sum(axis=1)
            - normal_log_density(z_new, mu, logvar)
        )
        u = backend.to_device(rng.random(batch), xp)
        accept = xp.log(xp.maximum(u, 1e-300)) < log_rho
        z = xp.where(accept[:, None], z_new, z)
        out = xp.where(accept[:, None], out_new, out)
        x_tilde = xp.where(mask, x, lik.sample(out, rng))
        if t >= burn_in:
            total += lik.mean(out)
    x_hat = xp.where(mask, x, total / (n_steps - burn_in))
    return model.check_result(x_hat, "metropolis_within_gibbs's imputation", x=x)


@checked_overflow
def importance_weighted_imputation(
    model: LatentVariableModel,
    x: Array,
    mask: Array,
    k: int = 100,
    seed: Any = 0,
    eps: Array | None = None,
) -> Array:
    """Single imputation by self-normalised importance sampling (MIWAE, Mattei & Frellsen 2019).

        z_k ~ q(z | x_filled),  x_filled = where(mask, x, 0),          k = 1..K
        log w_k = log p(x_obs | z_k) + log p(z_k) - log q(z_k | x_filled)
        w_k = exp(log w_k) / sum_j exp(log w_j)          (computed with the max subtracted)
        x_miss = sum_k w_k E[x_miss | z_k]

    x, mask: (batch, x_dim) -> (batch, x_dim), observed entries unchanged. ``eps`` (K, batch,
    z_dim) fixes the draws; otherwise K = ``k`` draws come from ``seed``.
    """
    _latent_model(model, "importance_weighted_imputation")
    prepared = model.prepare(x, mask=mask)
    xp = model.xp
    if eps is None:
        k = check_positive_int(k, "k")
    samples = model.importance_samples(
        prepared, k, backend.generator(seed, xp), eps=eps, keep_mean=True
    )
    w = normalized_weights(samples.log_w, axis=0)  # (K, batch), float64
    x_hat = (w[:, :, None] * samples.means).sum(axis=0).astype(model.dtype)
    x_hat = xp.where(prepared.mask, prepared.x, x_hat)
    return model.check_result(x_hat, "importance_weighted_imputation's result", x=prepared)
