"""Optimizers, written by hand: SGD with momentum, and Adam.

Both update ``params`` in place from ``grads`` (mappings with the same names). When both are
:class:`~minivae.params.Parameters` (every model's are), the update runs on their flat buffers:
a handful of vectorised operations for the whole model rather than a few per array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .backend import array_module
from .params import Parameters
from .validation import check_finite_scalar

Array = Any


def _flat_pairs(params: Mapping, grads: Mapping) -> list[tuple[Array, Array]]:
    """(parameter, gradient) array pairs to update: one flat pair when possible."""
    if isinstance(params, Parameters) and isinstance(grads, Parameters):
        if params.shapes() != grads.shapes():
            raise ValueError("params and grads must have the same names and shapes")
        return [(params.flat, grads.flat)]
    missing = set(params) ^ set(grads)
    if missing:
        raise ValueError(f"params and grads must have the same names; differing: {sorted(missing)}")
    return [(params[k], grads[k]) for k in params]


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum.

        v <- momentum * v + g
        p <- p - lr * v
    (PyTorch's convention; momentum = 0 is plain SGD.)
    """

    def __init__(self, params: Mapping[str, Array], lr: float = 0.01, momentum: float = 0.0):
        self.params = params
        self.lr = check_finite_scalar(lr, "lr", minimum=0.0)
        self.momentum = check_finite_scalar(momentum, "momentum", minimum=0.0)
        self.velocity: list[Array] | None = None

    def step(self, grads: Mapping[str, Array]) -> None:
        """One update of every parameter from its gradient."""
        pairs = _flat_pairs(self.params, grads)
        if self.velocity is None:
            self.velocity = [array_module(p).zeros_like(p) for p, _ in pairs]
        for (p, g), v in zip(pairs, self.velocity, strict=True):
            if self.momentum:
                v *= self.momentum
                v += g
                p -= self.lr * v
            else:
                p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015), in PyTorch's arithmetic so both give the same numbers.

        m <- beta1 * m + (1 - beta1) * g           (first moment)
        v <- beta2 * v + (1 - beta2) * g^2         (second moment)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(
        self,
        params: Mapping[str, Array],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = params
        self.lr = check_finite_scalar(lr, "lr", minimum=0.0)
        self.beta1, self.beta2 = (float(b) for b in betas)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        self.eps = check_finite_scalar(eps, "eps", minimum=0.0)
        self.t = 0
        self.m: list[Array] | None = None
        self.v: list[Array] | None = None

    def step(self, grads: Mapping[str, Array]) -> None:
        """One Adam update of every parameter from its gradient."""
        pairs = _flat_pairs(self.params, grads)
        if self.m is None:
            self.m = [array_module(p).zeros_like(p) for p, _ in pairs]
            self.v = [array_module(p).zeros_like(p) for p, _ in pairs]
        self.t += 1
        bias1 = 1 - self.beta1**self.t
        bias2 = 1 - self.beta2**self.t
        step_size = self.lr / bias1
        for (p, g), m, v in zip(pairs, self.m, self.v, strict=True):
            xp = array_module(p)
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            denom = xp.sqrt(v) / math.sqrt(bias2) + self.eps
            p -= step_size * m / denom
