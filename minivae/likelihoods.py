"""Decoder likelihoods p(x | z): what the decoder's output means, and its loss.

The decoder is an MLP whose raw output ``out`` parameterises p(x|z). Each likelihood says how many
outputs it needs per pixel, how to score data (negative log-likelihood and its gradient with respect
to ``out``, following the library's loss convention), how to score each example (log-likelihood,
for importance sampling), and what image to show (the mean of p(x|z)).

- ``Bernoulli``: out = logits, p(x_d = 1) = sigmoid(logit_d). For binary or [0, 1] data.
- ``GaussianFixedVar(var)``: out = mean, fixed variance ``var``: the loss is MSE up to constants.
- ``GaussianLearnedVar``: out = [mean, logvar] (2 D outputs): a variance learned for every pixel.

Missing data: ``nll`` and ``log_prob`` take a ``mask`` (True = observed, see :mod:`minivae.masks`)
and then count the observed entries only,

    log p(x_obs | z) = sum_{d: mask_d} log p(x_d | z),

so a missing entry adds nothing to the loss and gets a zero gradient. The loss is still averaged
over the batch, not over the observed count: it is the negative log-likelihood of what was seen.
Without a mask (``mask=None``) both are the plain functions of :mod:`minivae.losses`.
"""

from __future__ import annotations

import math
from typing import Any

from .backend import Array, array_module, to_device
from .layers import sigmoid, softplus
from .losses import (
    LOG_2PI,
    bernoulli_log_prob,
    bernoulli_nll,
    bernoulli_nll_rows,
    gaussian_log_prob,
    gaussian_nll,
    gaussian_nll_fixed_var,
)
from .validation import check_unit_interval


class Likelihood:
    """What the three likelihoods share: ``nll_rows`` from their ``nll`` and ``log_prob``.

    Each likelihood defines ``nll(out, x, mask)`` -> (batch-mean loss, its gradient for ``out``),
    ``log_prob(out, x, mask)`` -> (batch,), ``mean``, ``sample``, ``config`` and ``check_data``.
    """

    def nll_rows(self, out: Array, x: Array, mask: Array | None = None) -> tuple[Array, Array]:
        """(-log p(x_obs|z) per example: (batch,), the gradient of their batch mean for ``out``).

        For models that weight each example's term (IWAE, M2): the gradient of
        sum_b w_b * nll_b is ``dout * batch * w_b``. A likelihood may compute both together.
        """
        _, dout = self.nll(out, x, mask)
        return -self.log_prob(out, x, mask), dout


class Bernoulli(Likelihood):
    """p(x|z) = prod_d Bernoulli(x_d; sigmoid(logit_d)); the decoder outputs logits (batch, D)."""

    name = "bernoulli"
    outputs_per_pixel = 1

    def config(self) -> dict:
        return {"name": self.name}

    def check_data(self, x: Array, name: str = "x") -> None:
        check_unit_interval(x, name)

    def nll(self, out: Array, x: Array, mask: Array | None = None) -> tuple[float, Array]:
        """(loss, dout): loss = batch mean of -log p(x_obs|z), dout its gradient for the logits.

        loss    = (1/batch) * sum_{b,d} m_bd * [softplus(l_bd) - x_bd * l_bd]
        dlogits = m * (sigmoid(l) - x) / batch             out, x, mask: (batch, D); m = 1 if None
        """
        if mask is None:
            return bernoulli_nll(out, x)
        batch = x.shape[0]
        loss = float(-self.log_prob(out, x, mask).sum()) / batch
        return loss, (sigmoid(out) - x) * mask / batch

    def nll_rows(self, out: Array, x: Array, mask: Array | None = None) -> tuple[Array, Array]:
        """Per-example -log p(x_obs|z) and the gradient of their mean, in one pass without a mask
        (:func:`minivae.losses.bernoulli_nll_rows`)."""
        if mask is None:
            return bernoulli_nll_rows(out, x)
        return super().nll_rows(out, x, mask)

    def log_prob(self, out: Array, x: Array, mask: Array | None = None) -> Array:
        """log p(x_obs|z) per example: (batch,); every entry when mask is None."""
        if mask is None:
            return bernoulli_log_prob(out, x)
        return ((x * out - softplus(out)) * mask).sum(axis=1)

    def mean(self, out: Array) -> Array:
        """E[x|z] = sigmoid(logits): (batch, D)."""
        return sigmoid(out)

    def sample(self, out: Array, rng: Any) -> Array:
        """x ~ p(x|z): binary (batch, D). A NumPy ``rng`` may drive CuPy data (draws copied)."""
        p = sigmoid(out)
        return (to_device(rng.random(p.shape), array_module(p)) < p).astype(p.dtype)


class GaussianFixedVar(Likelihood):
    """p(x|z) = N(x; mean, var * I), fixed ``var``; the decoder outputs the mean (batch, D)."""

    name = "gaussian"
    outputs_per_pixel = 1

    def __init__(self, var: float = 1.0):
        if not (isinstance(var, (int, float)) and math.isfinite(var) and var > 0):
            raise ValueError(f"the fixed variance must be a positive number, got {var!r}")
        self.var = float(var)

    def config(self) -> dict:
        return {"name": self.name, "var": self.var}

    def check_data(self, x: Array, name: str = "x") -> None:
        pass

    def nll(self, out: Array, x: Array, mask: Array | None = None) -> tuple[float, Array]:
        """(loss, dmean): loss = batch mean of -log N(x_obs; mean, var),
        dmean = m * (mean - x) / var / batch."""
        if mask is None:
            return gaussian_nll_fixed_var(out, x, self.var)
        batch = x.shape[0]
        loss = float(-self.log_prob(out, x, mask).sum()) / batch
        return loss, (out - x) * mask / (self.var * batch)

    def log_prob(self, out: Array, x: Array, mask: Array | None = None) -> Array:
        """log N(x_obs; mean, var * I) per example: (batch,)."""
        if mask is None:
            return gaussian_log_prob(out, math.log(self.var), x)
        per_entry = -0.5 * (LOG_2PI + math.log(self.var) + (x - out) ** 2 / self.var)
        return (per_entry * mask).sum(axis=1)

    def mean(self, out: Array) -> Array:
        return out

    def sample(self, out: Array, rng: Any) -> Array:
        noise = to_device(rng.standard_normal(out.shape, dtype=out.dtype), array_module(out))
        return out + math.sqrt(self.var) * noise


class GaussianLearnedVar(Likelihood):
    """p(x|z) = N(x; mean, diag(exp(logvar))); the decoder outputs [mean, logvar]: (batch, 2 D)."""

    name = "gaussian_learned"
    outputs_per_pixel = 2

    def config(self) -> dict:
        return {"name": self.name}

    def check_data(self, x: Array, name: str = "x") -> None:
        pass

    @staticmethod
    def split(out: Array) -> tuple[Array, Array]:
        """(mean, logvar), each (batch, D), from the decoder output (batch, 2 D)."""
        dim = out.shape[1] // 2
        return out[:, :dim], out[:, dim:]

    def nll(self, out: Array, x: Array, mask: Array | None = None) -> tuple[float, Array]:
        """(loss, [dmean, dlogvar]) for the batch mean of -log N(x_obs; mean, exp(logvar)):

        dmean   = m * (mean - x) / exp(logvar) / batch
        dlogvar = m * 1/2 * (1 - (x - mean)^2 / exp(logvar)) / batch      each (batch, D)
        """
        mean, logvar = self.split(out)
        xp = array_module(out)
        if mask is None:
            loss, dmean, dlogvar = gaussian_nll(mean, logvar, x)
            return loss, xp.concatenate([dmean, dlogvar], axis=1)
        batch = x.shape[0]
        loss = float(-self.log_prob(out, x, mask).sum()) / batch
        inv_var = xp.exp(-logvar)
        diff = mean - x
        dmean = diff * inv_var * mask / batch
        dlogvar = 0.5 * (1 - diff * diff * inv_var) * mask / batch
        return loss, xp.concatenate([dmean, dlogvar], axis=1)

    def log_prob(self, out: Array, x: Array, mask: Array | None = None) -> Array:
        """log N(x_obs; mean, diag(exp(logvar))) per example: (batch,)."""
        mean, logvar = self.split(out)
        if mask is None:
            return gaussian_log_prob(mean, logvar, x)
        xp = array_module(out)
        per_entry = -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * xp.exp(-logvar))
        return (per_entry * mask).sum(axis=1)

    def mean(self, out: Array) -> Array:
        return self.split(out)[0]

    def sample(self, out: Array, rng: Any) -> Array:
        mean, logvar = self.split(out)
        xp = array_module(out)
        noise = to_device(rng.standard_normal(mean.shape, dtype=mean.dtype), xp)
        return mean + xp.exp(0.5 * logvar) * noise


def make_likelihood(name: str | Any, **kwargs: Any) -> Any:
    """A likelihood from its name: 'bernoulli', 'gaussian' (fixed var=...), 'gaussian_learned'."""
    if not isinstance(name, str):
        return name  # already a likelihood object
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return GaussianFixedVar(**kwargs)
    if name == "gaussian_learned":
        return GaussianLearnedVar()
    raise ValueError(
        f"unknown likelihood {name!r}: expected 'bernoulli', 'gaussian' or 'gaussian_learned'"
    )
