"""Decoder likelihoods p(x | z): what the decoder's output means, and its loss.

The decoder is an MLP whose raw output ``out`` parameterises p(x|z). Each likelihood says how many
outputs it needs per pixel, how to score data (negative log-likelihood and its gradient with respect
to ``out``, following the library's loss convention), how to score each example (log-likelihood,
for importance sampling), and what image to show (the mean of p(x|z)).

- ``Bernoulli``: out = logits, p(x_d = 1) = sigmoid(logit_d). For binary or [0, 1] data.
- ``GaussianFixedVar(var)``: out = mean, fixed variance ``var``: the loss is MSE up to constants.
- ``GaussianLearnedVar``: out = [mean, logvar] (2 D outputs): a variance learned for every pixel.
"""

from __future__ import annotations

import math
from typing import Any

from .backend import array_module, to_device
from .layers import sigmoid
from .losses import (
    bernoulli_log_prob,
    bernoulli_nll,
    gaussian_log_prob,
    gaussian_nll,
    gaussian_nll_fixed_var,
)
from .validation import check_unit_interval

Array = Any


class Bernoulli:
    """p(x|z) = prod_d Bernoulli(x_d; sigmoid(logit_d)); the decoder outputs logits (batch, D)."""

    name = "bernoulli"
    outputs_per_pixel = 1

    def config(self) -> dict:
        return {"name": self.name}

    def check_data(self, x: Array) -> None:
        check_unit_interval(x)

    def nll(self, out: Array, x: Array) -> tuple[float, Array]:
        """(loss, dout) with loss = batch mean of -log p(x|z)."""
        return bernoulli_nll(out, x)

    def log_prob(self, out: Array, x: Array) -> Array:
        """log p(x|z) per example: (batch,)."""
        return bernoulli_log_prob(out, x)

    def mean(self, out: Array) -> Array:
        """E[x|z] = sigmoid(logits): (batch, D)."""
        return sigmoid(out)

    def sample(self, out: Array, rng: Any) -> Array:
        """x ~ p(x|z): binary (batch, D). A NumPy ``rng`` may drive CuPy data (draws copied)."""
        p = sigmoid(out)
        return (to_device(rng.random(p.shape), array_module(p)) < p).astype(p.dtype)


class GaussianFixedVar:
    """p(x|z) = N(x; mean, var * I), fixed ``var``; the decoder outputs the mean (batch, D)."""

    name = "gaussian"
    outputs_per_pixel = 1

    def __init__(self, var: float = 1.0):
        if not (isinstance(var, (int, float)) and math.isfinite(var) and var > 0):
            raise ValueError(f"the fixed variance must be a positive number, got {var!r}")
        self.var = float(var)

    def config(self) -> dict:
        return {"name": self.name, "var": self.var}

    def check_data(self, x: Array) -> None:
        pass

    def nll(self, out: Array, x: Array) -> tuple[float, Array]:
        return gaussian_nll_fixed_var(out, x, self.var)

    def log_prob(self, out: Array, x: Array) -> Array:
        return gaussian_log_prob(out, math.log(self.var), x)

    def mean(self, out: Array) -> Array:
        return out

    def sample(self, out: Array, rng: Any) -> Array:
        noise = to_device(rng.standard_normal(out.shape, dtype=out.dtype), array_module(out))
        return out + math.sqrt(self.var) * noise


class GaussianLearnedVar:
    """p(x|z) = N(x; mean, diag(exp(logvar))); the decoder outputs [mean, logvar]: (batch, 2 D)."""

    name = "gaussian_learned"
    outputs_per_pixel = 2

    def config(self) -> dict:
        return {"name": self.name}

    def check_data(self, x: Array) -> None:
        pass

    @staticmethod
    def split(out: Array) -> tuple[Array, Array]:
        """(mean, logvar), each (batch, D), from the decoder output (batch, 2 D)."""
        dim = out.shape[1] // 2
        return out[:, :dim], out[:, dim:]

    def nll(self, out: Array, x: Array) -> tuple[float, Array]:
        mean, logvar = self.split(out)
        loss, dmean, dlogvar = gaussian_nll(mean, logvar, x)
        xp = array_module(out)
        return loss, xp.concatenate([dmean, dlogvar], axis=1)

    def log_prob(self, out: Array, x: Array) -> Array:
        mean, logvar = self.split(out)
        return gaussian_log_prob(mean, logvar, x)

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
