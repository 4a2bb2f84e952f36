"""Missing data: masks, training on the observed entries only, and imputation with a trained VAE.

**The mask convention, stated once:** a mask is a boolean array of the shape of ``x``,
``True`` = observed, ``False`` = missing. Every function here checks it (:func:`check_mask`).
The values of ``x`` at missing entries are never read (they may hold NaN).

Training (Mattei & Frellsen 2019, Nazabal et al. 2020): the likelihood is summed over the
observed entries only, and the encoder sees the zero-filled data ``where(mask, x, 0)``,

    loss(x) = -E_q[ sum_{d observed} log p(x_d | z) ] + beta * KL(q(z | x_filled) || N(0, I)),

so a missing entry contributes nothing to the loss and gets a zero gradient.

Imputation (observed entries are never changed; every method is seeded):

- :func:`pseudo_gibbs` (Rezende et al. 2014): repeat z ~ q(z | x_tilde), x_miss ~ p(x_miss | z).
- :func:`metropolis_within_gibbs` (Mattei & Frellsen 2018): the same chain with a
  Metropolis-Hastings accept/reject of z, so that it samples the model's true conditional.
- :func:`importance_weighted_imputation` (MIWAE, Mattei & Frellsen 2019): K samples z_k of
  q(z | x_filled), self-normalised weights w_k ∝ p(x_obs | z_k) p(z_k) / q(z_k | x_filled),
  imputation = sum_k w_k E[x_miss | z_k].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend
from .layers import sigmoid, softplus
from .train import History, fit
from .validation import check_data, check_positive_int

Array = Any
LOG_2PI = math.log(2 * math.pi)

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
    "masked_nll",
    "mcar_mask",
    "mean_imputation",
    "metropolis_within_gibbs",
    "pseudo_gibbs",
    "pseudo_gibbs_step",
    "zero_fill",
]


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------


def check_mask(mask: Any, shape: Sequence[int], name: str = "mask") -> Any:
    """Check a mask against the data's ``shape`` and return it (a boolean array, True = observed).

    A mask must be a boolean array of exactly ``shape``, with at least one observed entry in
    every row: a row with nothing observed carries no information to impute it from.
    """
    shape = tuple(int(s) for s in shape)
    if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
        if isinstance(mask, (list, tuple)):
            mask = np.asarray(mask)
        else:
            raise TypeError(
                f"{name} must be a boolean array of shape {shape} (True = observed), "
                f"got {type(mask).__name__}"
            )
    if np.dtype(str(mask.dtype)) != np.bool_:
        raise TypeError(
            f"{name} must be a boolean array (True = observed, False = missing), got dtype "
            f"{mask.dtype}; build one with e.g. mask = ~np.isnan(x) or mcar_mask(...)"
        )
    if tuple(mask.shape) != shape:
        raise ValueError(
            f"{name} must have the shape of x {shape} (True = observed), "
            f"got shape {tuple(mask.shape)}"
        )
    if len(shape) == 2:
        xp = backend.array_module(mask)
        empty = ~xp.any(mask, axis=1)
        if bool(empty.any()):
            rows = backend.to_numpy(xp.flatnonzero(empty))[:5].tolist()
            raise ValueError(
                f"{name} has {int(empty.sum())} row(s) with no observed entry (e.g. rows {rows}); "
                "every row needs at least one observed value (True) to be imputed from"
            )
    return mask


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, None or a numpy.random.Generator, got {seed!r}")


def mcar_mask(shape: Sequence[int], missing_rate: float, seed: Any = 0) -> np.ndarray:
    """Missing completely at random: each entry is missing independently with ``missing_rate``.

    Returns a boolean array of ``shape`` (True = observed). For a 2-D shape (n, d), a row that
    would come out with nothing observed gets one entry, chosen at random, observed again, so
    the realised rate is a hair below ``missing_rate`` when that rate is close to 1.
    """
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(check_positive_int(s, "each size in shape") for s in shape)
    if isinstance(missing_rate, bool) or not isinstance(missing_rate, (int, float, np.floating)):
        raise TypeError(f"missing_rate must be a number in [0, 1), got {missing_rate!r}")
    if not 0.0 <= float(missing_rate) < 1.0:
        raise ValueError(f"missing_rate must be in [0, 1), got {missing_rate}")
    rng = _rng(seed)
    mask = rng.random(shape) >= float(missing_rate)
    if len(shape) == 2:
        empty = np.flatnonzero(~mask.any(axis=1))
        mask[empty, rng.integers(0, shape[1], size=empty.size)] = True
    return mask


def block_mask(
    n: int, image_shape: Sequence[int], block_size: int | Sequence[int], seed: Any = 0
) -> np.ndarray:
    """Occlude one square (or ``(bh, bw)`` rectangle) at a random place in each of n images.

    Returns a boolean array (n, h * w), flat like the images (True = observed): in image i the
    pixels of a block of ``block_size`` whose top-left corner is drawn uniformly among the
    positions where the block fits are False.
    """
    n = check_positive_int(n, "n")
    if len(tuple(image_shape)) != 2:
        raise ValueError(f"image_shape must be (h, w), got {image_shape!r}")
    h, w = (check_positive_int(s, "image_shape") for s in image_shape)
    if isinstance(block_size, (int, np.integer)):
        block_size = (int(block_size), int(block_size))
    bh, bw = (check_positive_int(s, "block_size") for s in block_size)
    if bh > h or bw > w or bh * bw == h * w:
        raise ValueError(
            f"block_size {(bh, bw)} must fit in image_shape {(h, w)} and leave a pixel observed"
        )
    rng = _rng(seed)
    tops = rng.integers(0, h - bh + 1, size=n)
    lefts = rng.integers(0, w - bw + 1, size=n)
    mask = np.ones((n, h, w), dtype=bool)
    for i in range(n):
        mask[i, tops[i] : tops[i] + bh, lefts[i] : lefts[i] + bw] = False
    return mask.reshape(n, h * w)


def zero_fill(x: Array, mask: Array) -> Array:
    """x with every missing entry set to 0: ``where(mask, x, 0)`` (also clears NaNs there)."""
    xp = backend.array_module(x, mask)  # a NumPy mask may go with CuPy data, and vice versa
    x, mask = backend.to_device(x, xp), backend.to_device(mask, xp)
    return xp.where(mask, x, 0).astype(x.dtype, copy=False)


def _checked(model: Any, x: Any, mask: Any) -> tuple[Array, Array]:
    """(x zero-filled, mask), both on the model's backend; x in the model's dtype."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(
            f"x must be an array of shape (batch, {model.x_dim}), got {type(x).__name__}"
        )
    if len(x.shape) != 2 or x.shape[1] != model.x_dim:
        raise ValueError(f"x must have shape (batch, {model.x_dim}), got {tuple(x.shape)}")
    mask = check_mask(mask, x.shape)
    if np.dtype(str(x.dtype)).kind != "f":
        raise TypeError(f"x must hold floating-point numbers, got dtype {x.dtype}")
    xp = model.xp  # data and mask may come from the host (a NumPy mask with CuPy data...)
    x, mask = backend.to_device(x, xp), backend.to_device(mask, xp)
    x = check_data(xp.where(mask, x, 0).astype(x.dtype), "x (observed entries)", dim=model.x_dim)
    x = model._check_x(x)
    mask = backend.to_device(mask, model.xp)
    if getattr(model, "likelihood", None) is not None:
        model.likelihood.check_data(x)
    return x, mask


# ---------------------------------------------------------------------------------------------
# The likelihood of the observed entries
# ---------------------------------------------------------------------------------------------


def _log_prob_entries(likelihood: Any, out: Array, x: Array) -> Array:
    """log p(x_d | z) of every entry, (batch, D), for the decoder output ``out``."""
    xp = backend.array_module(out)
    name = getattr(likelihood, "name", None)
    if name == "bernoulli":
        return x * out - softplus(out)
    if name == "gaussian":
        return -0.5 * (LOG_2PI + math.log(likelihood.var) + (x - out) ** 2 / likelihood.var)
    if name == "gaussian_learned":
        mean, logvar = likelihood.split(out)
        return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * xp.exp(-logvar))
    raise TypeError(
        f"masked likelihoods exist for 'bernoulli', 'gaussian' and 'gaussian_learned', "
        f"got {name!r}"
    )


def masked_log_prob(likelihood: Any, out: Array, x: Array, mask: Array) -> Array:
    """log p(x_obs | z) = sum_{d: mask_d} log p(x_d | z) per example: (batch,).

    out: the decoder output (batch, D) or (batch, 2 D); x, mask: (batch, D).
    """
    return (_log_prob_entries(likelihood, out, x) * mask).sum(axis=1)


def masked_bernoulli_nll(logits: Array, x: Array, mask: Array) -> tuple[float, Array]:
    """The Bernoulli negative log-likelihood of the observed entries, and its gradient.

    loss    = (1/batch) * sum_{b,d} m_bd * [softplus(l_bd) - x_bd * l_bd]
    dlogits = m * (sigmoid(l) - x) / batch                   logits, x, mask: (batch, D)

    A missing entry (m = 0) adds nothing and gets a zero gradient. Still averaged over the batch
    (not over the observed count): the loss is the negative log-likelihood of what was seen.
    """
    batch = x.shape[0]
    loss = float(-((x * logits - softplus(logits)) * mask).sum()) / batch
    dlogits = (sigmoid(logits) - x) * mask / batch
    return loss, dlogits


def masked_nll(likelihood: Any, out: Array, x: Array, mask: Array) -> tuple[float, Array]:
    """(loss, dout): -log p(x_obs | z) averaged over the batch, and its gradient for ``out``.

    Bernoulli:         dlogits = m * (sigmoid(l) - x) / batch
    Gaussian (var):    dmean   = m * (mean - x) / var / batch
    Gaussian learned:  dmean   = m * (mean - x) / exp(logvar) / batch,
                       dlogvar = m * 1/2 * (1 - (x - mean)^2 / exp(logvar)) / batch
    """
    xp = backend.array_module(out)
    batch = x.shape[0]
    loss = float(-masked_log_prob(likelihood, out, x, mask).sum()) / batch
    name = likelihood.name
    if name == "bernoulli":
        dout = (sigmoid(out) - x) * mask / batch
    elif name == "gaussian":
        dout = (out - x) * mask / (likelihood.var * batch)
    else:  # gaussian_learned (others were refused by masked_log_prob)
        mean, logvar = likelihood.split(out)
        inv_var = xp.exp(-logvar)
        diff = mean - x
        dmean = diff * inv_var * mask / batch
        dlogvar = 0.5 * (1 - diff * diff * inv_var) * mask / batch
        dout = xp.concatenate([dmean, dlogvar], axis=1)
    return loss, dout


# ---------------------------------------------------------------------------------------------
# Training on the observed entries
# ---------------------------------------------------------------------------------------------


def masked_loss_and_grads(
    model: Any, x: Array, mask: Array, eps: Array | None = None
) -> tuple[dict, Any]:
    """The VAE's loss on the observed entries of x, its parts, and every parameter's gradient.

        loss = -log p(x_obs | z) + beta * KL(q(z | x_filled) || N(0, I)),
        z = mu + exp(0.5 * logvar) * eps,   [mu, logvar] = encoder(where(mask, x, 0))

    x, mask: (batch, x_dim); eps: (batch, z_dim), drawn from the model's generator when None.
    Returns ``({"loss", "recon", "kl"}, model.grads)``, like ``VAE.loss_and_grads``; with a mask
    of all True it equals ``model.loss_and_grads(x, eps)``.
    """
    x, mask = _checked(model, x, mask)
    if eps is not None:
        eps = model._check_eps(eps, x.shape[0])
    return _masked_loss_and_grads(model, x, mask, eps)


def _masked_loss_and_grads(model: Any, x: Array, mask: Array, eps: Array | None) -> tuple:
    """The VAE's own loss_and_grads, with the likelihood counting observed entries only."""
    return model._loss_and_grads(
        x, eps, nll=lambda out, x: masked_nll(model.likelihood, out, x, mask)
    )


def masked_loss(model: Any, x: Array, mask: Array, eps: Array | None = None) -> dict:
    """The masked loss and its parts (no gradients), with one sampled z per example."""
    x, mask = _checked(model, x, mask)
    return model._loss(
        x, eps, log_prob=lambda out, x: masked_log_prob(model.likelihood, out, x, mask)
    )


def fit_masked(
    model: Any,
    x: Array,
    mask: Array,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: Any = None,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    history: History | None = None,
) -> History:
    """Train a VAE on incomplete data: :func:`minivae.train.fit` with ``mask=mask``.

    x: (n, x_dim), its missing entries ignored; mask: (n, x_dim) booleans, True = observed.
    The rows of x and mask are shuffled together (``seed``). Returns the per-epoch History of
    the training terms (``loss``, ``recon`` over observed entries, ``kl``).
    """
    return fit(
        model,
        x,
        mask=mask,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        seed=seed,
        progress=progress,
        history=history,
    )


# ---------------------------------------------------------------------------------------------
# Imputation
# ---------------------------------------------------------------------------------------------


def mean_imputation(x: Array, mask: Array) -> Array:
    """The baseline: each missing entry gets its column's mean over the observed entries."""
    mask = check_mask(mask, x.shape)
    xp = backend.array_module(x, mask)  # a NumPy mask may go with CuPy data, and vice versa
    x, mask = backend.to_device(x, xp), backend.to_device(mask, xp)
    filled = xp.where(mask, x, 0)
    counts = mask.sum(axis=0)
    means = filled.sum(axis=0) / xp.maximum(counts, 1)
    return xp.where(mask, x, means[None, :]).astype(x.dtype, copy=False)


def imputation_mse(x_imputed: Array, x_true: Array, mask: Array) -> float:
    """Mean squared error over the missing entries only: mean_{(b,d): not mask} (x_imp - x)^2."""
    mask = check_mask(mask, x_true.shape)
    if tuple(x_imputed.shape) != tuple(x_true.shape):
        raise ValueError(
            f"x_imputed must have the shape of x_true {tuple(x_true.shape)}, "
            f"got {tuple(x_imputed.shape)}"
        )
    missing = ~backend.to_numpy(mask)
    if not missing.any():
        raise ValueError("mask has no missing entry: there is nothing to score")
    diff = backend.to_numpy(x_imputed).astype(np.float64) - backend.to_numpy(x_true)
    return float((diff[missing] ** 2).mean())


def _draw(rng: Any, shape: tuple, model: Any) -> Array:
    return backend.to_device(rng.standard_normal(shape), model.xp).astype(model.dtype, copy=False)


def pseudo_gibbs_step(
    model: Any,
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
    mask = check_mask(mask, getattr(x_tilde, "shape", ()))
    x_tilde = model._check_x(x_tilde, "x_tilde")  # complete: the guesses are the chain's state
    mask = backend.to_device(mask, model.xp)
    rng = model.rng if rng is None else rng
    if eps is None:
        eps = _draw(rng, (x_tilde.shape[0], model.z_dim), model)
    else:
        eps = model._check_eps(eps, x_tilde.shape[0])
    return _pseudo_gibbs_step(model, x_tilde, mask, eps, rng, sample_x)[0]


def _pseudo_gibbs_step(model, x_tilde, mask, eps, rng, sample_x) -> tuple[Array, Array]:
    """(new x_tilde, E[x | z]) for one pseudo-Gibbs step; inputs already checked."""
    xp = model.xp
    mu, logvar = model._encode_unchecked(x_tilde)
    z = mu + xp.exp(0.5 * logvar) * eps
    out, _ = model.decoder.forward(model.params, z)
    x_mean = model.likelihood.mean(out)
    fill = model.likelihood.sample(out, rng) if sample_x else x_mean
    return xp.where(mask, x_tilde, fill), x_mean


def _chain_args(n_steps: int, burn_in: int | None) -> tuple[int, int]:
    n_steps = check_positive_int(n_steps, "n_steps")
    burn_in = n_steps // 2 if burn_in is None else burn_in
    if isinstance(burn_in, bool) or not isinstance(burn_in, (int, np.integer)):
        raise TypeError(f"burn_in must be an integer >= 0, got {burn_in!r}")
    if not 0 <= burn_in < n_steps:
        raise ValueError(f"burn_in must be in [0, n_steps) = [0, {n_steps}), got {burn_in}")
    return n_steps, int(burn_in)


def pseudo_gibbs(
    model: Any,
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
    zero-filled rows (:func:`fit_masked`) never saw one, and the chain can drift far from the
    data (chapter 05 shows it on a table with half its entries missing);
    :func:`metropolis_within_gibbs` corrects the encoder with an accept/reject step.
    """
    n_steps, burn_in = _chain_args(n_steps, burn_in)
    x, mask = _checked(model, x, mask)
    x_tilde = x if init is None else _checked(model, init, np.ones(x.shape, dtype=bool))[0]
    x_tilde = model.xp.where(mask, x, x_tilde)
    rng = backend.default_rng(seed, model.xp) if not hasattr(seed, "standard_normal") else seed
    total = model.xp.zeros_like(x)
    for t in range(n_steps):
        eps = _draw(rng, (x.shape[0], model.z_dim), model)
        x_tilde, x_mean = _pseudo_gibbs_step(model, x_tilde, mask, eps, rng, sample_x)
        if t >= burn_in:
            total += x_mean
    return model.xp.where(mask, x, total / (n_steps - burn_in))


def _log_normal(z: Array, mu: Array, logvar: Array) -> Array:
    """log N(z; mu, diag(exp(logvar))) summed over the last axis."""
    xp = backend.array_module(z)
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * xp.exp(-logvar)).sum(axis=-1)


def metropolis_within_gibbs(
    model: Any,
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
    x, mask = _checked(model, x, mask)
    xp, lik = model.xp, model.likelihood
    rng = backend.default_rng(seed, model.xp) if not hasattr(seed, "standard_normal") else seed
    batch = x.shape[0]
    x_tilde = x
    mu, logvar = model._encode_unchecked(x_tilde)
    z = mu + xp.exp(0.5 * logvar) * _draw(rng, (batch, model.z_dim), model)
    out, _ = model.decoder.forward(model.params, z)
    total = xp.zeros_like(x)
    for t in range(n_steps):
        mu, logvar = model._encode_unchecked(x_tilde)
        z_new = mu + xp.exp(0.5 * logvar) * _draw(rng, (batch, model.z_dim), model)
        out_new, _ = model.decoder.forward(model.params, z_new)
        log_rho = (
            lik.log_prob(out_new, x_tilde) - 0.5 * (z_new**2).sum(axis=1)
            + _log_normal(z, mu, logvar)
            - lik.log_prob(out, x_tilde) + 0.5 * (z**2).sum(axis=1)
            - _log_normal(z_new, mu, logvar)
        )
        u = backend.to_device(rng.random(batch), xp)
        accept = xp.log(xp.maximum(u, 1e-300)) < log_rho
        z = xp.where(accept[:, None], z_new, z)
        out = xp.where(accept[:, None], out_new, out)
        x_tilde = xp.where(mask, x, lik.sample(out, rng))
        if t >= burn_in:
            total += lik.mean(out)
    return xp.where(mask, x, total / (n_steps - burn_in))


def importance_weighted_imputation(
    model: Any,
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
    x, mask = _checked(model, x, mask)
    xp, batch, z_dim = model.xp, x.shape[0], model.z_dim
    if eps is None:
        k = check_positive_int(k, "k")
        rng = backend.default_rng(seed, xp) if not hasattr(seed, "standard_normal") else seed
        eps = _draw(rng, (k, batch, z_dim), model)
    else:
        if len(eps.shape) != 3 or tuple(eps.shape[1:]) != (batch, z_dim):
            raise ValueError(
                f"eps must be (K, batch, z_dim) = (K, {batch}, {z_dim}), got {tuple(eps.shape)}"
            )
        eps = backend.to_device(eps, xp).astype(model.dtype, copy=False)
        k = eps.shape[0]
    mu, logvar = model._encode_unchecked(x)
    z = mu + xp.exp(0.5 * logvar) * eps  # (K, batch, z_dim)
    out, _ = model.decoder.forward(model.params, z.reshape(k * batch, z_dim))
    x_rep = xp.broadcast_to(x, (k, batch, x.shape[1])).reshape(k * batch, -1)
    m_rep = xp.broadcast_to(mask, (k, batch, x.shape[1])).reshape(k * batch, -1)
    log_px = masked_log_prob(model.likelihood, out, x_rep, m_rep).reshape(k, batch)
    log_pz = -0.5 * (z * z + LOG_2PI).sum(axis=2)
    log_qz = -0.5 * (eps * eps + LOG_2PI + logvar).sum(axis=2)
    log_w = (log_px + log_pz - log_qz).astype(np.float64)
    log_w -= log_w.max(axis=0, keepdims=True)
    w = xp.exp(log_w)
    w /= w.sum(axis=0, keepdims=True)  # (K, batch)
    means = model.likelihood.mean(out).reshape(k, batch, x.shape[1])
    x_hat = (w[:, :, None] * means).sum(axis=0).astype(model.dtype)
    return xp.where(mask, x, x_hat)
