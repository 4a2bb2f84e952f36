"""Optimizers, written by hand: SGD with momentum, and Adam.

Both update ``params`` in place from ``grads`` (mappings with the same names). When both are
:class:`~minivae.params.Parameters` (every model's are), the update runs on their flat buffers:
a handful of vectorised operations for the whole model rather than a few per array.

Each ``step`` is written as the textbook equations quoted in its docstring. Training runs a fast
version of the same update (:mod:`minivae.accel.updates`: in place, in cache-sized chunks,
optionally on ``threads`` threads, one fused kernel on CuPy), which gives the same numbers bit
for bit; ``minivae.accel.disabled()`` runs the equations below instead
(``tests/library/test_optim_fast.py`` compares the two).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import accel
from .accel import updates
from .backend import Array, array_module
from .params import Parameters
from .validation import check_finite_scalar, check_positive_int


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
    (PyTorch's convention; momentum = 0 is plain SGD.) ``threads``: how many threads share the
    update of a large flat buffer (see :mod:`minivae.accel.updates`).
    """

    def __init__(
        self,
        params: Mapping[str, Array],
        lr: float = 0.01,
        momentum: float = 0.0,
        threads: int = 1,
    ):
        self.params = params
        self.lr = check_finite_scalar(lr, "lr", minimum=0.0)
        self.momentum = check_finite_scalar(momentum, "momentum", minimum=0.0)
        self.threads = check_positive_int(threads, "threads")
        self.velocity: list[Array] | None = None
        self._runner = updates.ChunkRunner()  # the fast path's threads, if threads > 1

    def step(self, grads: Mapping[str, Array]) -> None:
        """One update of every parameter from its gradient."""
        pairs = _flat_pairs(self.params, grads)
        if self.momentum and self.velocity is None:
            self.velocity = [array_module(p).zeros_like(p) for p, _ in pairs]
        for i, (p, g) in enumerate(pairs):
            if accel.enabled():  # the same numbers, faster (see minivae.accel.updates)
                if self.momentum:
                    updates.sgd_momentum(p, g, self.velocity[i], lr=self.lr,
                                         momentum=self.momentum, threads=self.threads,
                                         runner=self._runner)
                else:
                    updates.sgd(p, g, lr=self.lr, threads=self.threads, runner=self._runner)
            elif self.momentum:
                v = self.velocity[i]
                v[...] = self.momentum * v + g
                p -= self.lr * v
            else:
                p -= self.lr * g


def subnormal_threshold(dtype: Any) -> float:
    """Adam state entries below this magnitude are set to 0 every ``flush_every`` steps.

    Why: floats below ``finfo(dtype).tiny`` (1.2e-38 in float32) are *subnormal*, and x86 CPUs
    compute with them through a slow path: one NumPy pass over an array with many of them runs
    several times slower. With ReLU and Adam they are common. A weight whose gradient is exactly 0
    (a pixel that is 0 in the whole batch, a dead ReLU unit) has its first moment multiplied by
    beta1 = 0.9 every step, and after about 800 such steps m is subnormal; v follows, slower.
    PyTorch suffers less (its kernels are vectorised differently); we keep the state out of
    that range instead.

    The threshold is ``tiny * 2**24``: a value above it needs a 2**24-fold decay to become
    subnormal, more than ``flush_every`` steps give. What it costs in accuracy: a flushed m entry
    moved its weight by at most step_size * threshold / eps per step (2e-26 for float32 and the
    default lr and eps: nothing at float32 resolution); a flushed v entry changes the denominator
    sqrt(v) / sqrt(1 - beta2^t) + eps by at most sqrt(threshold) / sqrt(1 - beta2^t), below
    2e-15 for float32 from the first flush on (t >= 64): nothing beside eps = 1e-8.
    """
    return float(np.finfo(dtype).tiny) * 2.0**24


class Adam:
    """Adam (Kingma & Ba 2015), in PyTorch's arithmetic so both give the same numbers.

        m <- beta1 * m + (1 - beta1) * g           (first moment)
        v <- beta2 * v + (1 - beta2) * g^2         (second moment)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Every ``flush_every`` steps, entries of m and v below :func:`subnormal_threshold` are set to
    0 (a speed measure with no visible effect on the result; see there). ``threads``: how many
    threads share the update of a large flat buffer (see :mod:`minivae.accel.updates`).
    """

    def __init__(
        self,
        params: Mapping[str, Array],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        threads: int = 1,
    ):
        self.params = params
        self.lr = check_finite_scalar(lr, "lr", minimum=0.0)
        self.beta1, self.beta2 = (float(b) for b in betas)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        self.eps = check_finite_scalar(eps, "eps", minimum=0.0)
        self.threads = check_positive_int(threads, "threads")
        self.t = 0
        self.m: list[Array] | None = None
        self.v: list[Array] | None = None
        # Flush often enough that an entry just above the threshold cannot decay below tiny
        # before the next flush: beta^flush_every >= 2**-24 for both betas (at most every 64).
        fastest = min((b for b in (self.beta1, self.beta2) if b > 0), default=0.5)
        self.flush_every = int(max(1, min(64, 24 * math.log(2) / -math.log(fastest))))
        self._runner = updates.ChunkRunner()  # the fast path's threads, if threads > 1

    def step(self, grads: Mapping[str, Array]) -> None:
        """One Adam update of every parameter from its gradient."""
        pairs = _flat_pairs(self.params, grads)
        if self.m is None:
            self.m = [array_module(p).zeros_like(p) for p, _ in pairs]
            self.v = [array_module(p).zeros_like(p) for p, _ in pairs]
        self.t += 1
        beta1, beta2, eps = self.beta1, self.beta2, self.eps
        step_size = self.lr / (1 - beta1**self.t)  # lr / (1 - beta1^t)
        sqrt_bias2 = math.sqrt(1 - beta2**self.t)  # sqrt(1 - beta2^t)
        flush = self.t % self.flush_every == 0
        for (p, g), m, v in zip(pairs, self.m, self.v, strict=True):
            flush_below = subnormal_threshold(p.dtype) if flush else None
            if accel.enabled():  # the same numbers, faster (see minivae.accel.updates)
                updates.adam(p, g, m, v, beta1=beta1, beta2=beta2, step_size=step_size,
                             sqrt_bias2=sqrt_bias2, eps=eps, flush_below=flush_below,
                             threads=self.threads, runner=self._runner)
                continue
            xp = array_module(p)
            m[...] = beta1 * m + (1 - beta1) * g
            v[...] = beta2 * v + (1 - beta2) * (g * g)
            p -= step_size * (m / (xp.sqrt(v) / sqrt_bias2 + eps))
            if flush_below is not None:  # keep m and v out of the subnormal range
                m[xp.abs(m) < flush_below] = 0
                if eps > 0:  # with eps = 0, a zero v could divide a nonzero m by 0
                    v[v < flush_below] = 0
