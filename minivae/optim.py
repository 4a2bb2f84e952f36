"""Optimizers, written by hand: SGD with momentum, and Adam.

Both update ``params`` in place from ``grads`` (mappings with the same names). When both are
:class:`~minivae.params.Parameters` (every model's are), the update runs on their flat buffers:
a handful of vectorised operations for the whole model rather than a few per array.

The update equations are the textbook ones, quoted in each docstring. The code below computes
exactly those numbers, but arranged for speed (this is one of the few named places where the
library trades plainness for it; see ``benchmarks/``). On the CPU, in a VAE epoch, a textbook
``p -= lr * m / (sqrt(v) + eps)`` spends more time creating and filling temporary arrays than
computing. So:

1. every operation writes into an existing array (``out=``): no temporaries;
2. the flat buffer is updated in chunks of ``CHUNK`` entries with one scratch chunk, so the
   dozen passes of one update stay in the CPU's caches (chunks much smaller than ``CHUNK`` lose
   more to NumPy's per-call overhead, a microsecond or two per call, than they gain);
3. with ``threads=2`` (or more), a large buffer is split between that many Python threads
   (NumPy releases the GIL inside its loops, so two threads update two halves at once, as
   PyTorch's kernels do). The default is 1: on a machine whose cores are busy with other work,
   threads that wait for each other are much slower than one;
4. Adam's state is kept out of the subnormal range (see :func:`subnormal_threshold`).

None of this changes a number: each entry goes through the same operations in the same order,
whatever the chunking and threading (``tests/library/test_optim_fast.py`` checks this against a
plain textbook Adam).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .accel import kernels
from .backend import array_module
from .params import Parameters
from .validation import check_finite_scalar, check_positive_int

Array = Any

#: Entries per chunk of the flat buffer (float32: 512 KiB per array). Measured on a 2-core AMD EPYC:
#: 2**14 -> 2.1 ms per step of an 835k-parameter Adam, 2**17 -> 1.6 ms, one whole pass -> 1.7 ms.
CHUNK = 2**17

_pool: ThreadPoolExecutor | None = None
_pool_workers = 0


def _check_threads(threads: int) -> int:
    return check_positive_int(threads, "threads")


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


def _run_chunked(update: Any, arrays: tuple[Array, ...], threads: int) -> None:
    """Call ``update(*slices, scratch)`` on consecutive chunks of the same-shaped ``arrays``.

    NumPy 1-D buffers are cut into chunks of ``CHUNK`` entries and, when large, shared between
    ``threads`` threads (contiguous halves, each with its own scratch). Any other array (CuPy,
    the stand-in backend, a parameter of a plain dict) is updated whole: a GPU wants one big
    kernel, not many small ones.
    """
    global _pool, _pool_workers
    first = arrays[0]
    if type(first) is not np.ndarray or first.ndim != 1 or first.size <= CHUNK:
        update(*arrays, array_module(first).empty_like(first))
        return
    n = first.size
    parts = min(threads, -(-n // CHUNK))  # at least one chunk per thread
    bounds = [n * i // parts for i in range(parts + 1)]

    def run_part(i: int) -> None:
        scratch = np.empty(CHUNK, dtype=first.dtype)
        for start in range(bounds[i], bounds[i + 1], CHUNK):
            stop = min(start + CHUNK, bounds[i + 1])
            update(*(a[start:stop] for a in arrays), scratch[: stop - start])

    if parts == 1:
        run_part(0)
        return
    if _pool is None or _pool_workers < parts - 1:
        _pool = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="minivae-optim")
        _pool_workers = parts - 1
    futures = [_pool.submit(run_part, i) for i in range(1, parts)]
    run_part(0)
    for f in futures:
        f.result()


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum.

        v <- momentum * v + g
        p <- p - lr * v
    (PyTorch's convention; momentum = 0 is plain SGD.)
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
        self.threads = _check_threads(threads)
        self.velocity: list[Array] | None = None

    def step(self, grads: Mapping[str, Array]) -> None:
        """One update of every parameter from its gradient."""
        pairs = _flat_pairs(self.params, grads)
        if not self.momentum:
            for p, g in pairs:
                fused = kernels.get("sgd", array_module(p))
                if fused is not None:  # on a GPU, the update as one kernel (minivae.accel.kernels)
                    fused(g, self.lr, p)
                else:
                    _run_chunked(self._plain_chunk, (p, g), self.threads)
            return
        if self.velocity is None:
            self.velocity = [array_module(p).zeros_like(p) for p, _ in pairs]
        for (p, g), v in zip(pairs, self.velocity, strict=True):
            fused = kernels.get("sgd_momentum", array_module(p))
            if fused is not None:
                fused(g, self.lr, self.momentum, p, v)
            else:
                _run_chunked(self._momentum_chunk, (p, g, v), self.threads)

    def _plain_chunk(self, p: Array, g: Array, tmp: Array) -> None:
        xp = array_module(p)
        xp.multiply(g, self.lr, out=tmp)  # p <- p - lr * g
        xp.subtract(p, tmp, out=p)

    def _momentum_chunk(self, p: Array, g: Array, v: Array, tmp: Array) -> None:
        xp = array_module(p)
        xp.multiply(v, self.momentum, out=v)  # v <- momentum * v + g
        xp.add(v, g, out=v)
        xp.multiply(v, self.lr, out=tmp)  # p <- p - lr * v
        xp.subtract(p, tmp, out=p)


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
    threads share the update of a large flat buffer (see the module docstring).
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
        self.threads = _check_threads(threads)
        self.t = 0
        self.m: list[Array] | None = None
        self.v: list[Array] | None = None
        # Flush often enough that an entry just above the threshold cannot decay below tiny
        # before the next flush: beta^flush_every >= 2**-24 for both betas (at most every 64).
        fastest = min((b for b in (self.beta1, self.beta2) if b > 0), default=0.5)
        self.flush_every = int(max(1, min(64, 24 * math.log(2) / -math.log(fastest))))
        self._flush_now = False
        self._threshold = 0.0

    def step(self, grads: Mapping[str, Array]) -> None:
        """One Adam update of every parameter from its gradient."""
        pairs = _flat_pairs(self.params, grads)
        if self.m is None:
            self.m = [array_module(p).zeros_like(p) for p, _ in pairs]
            self.v = [array_module(p).zeros_like(p) for p, _ in pairs]
        self.t += 1
        bias1 = 1 - self.beta1**self.t
        bias2 = 1 - self.beta2**self.t
        self._step_size = self.lr / bias1
        self._sqrt_bias2 = math.sqrt(bias2)
        self._flush_now = self.t % self.flush_every == 0
        for (p, g), m, v in zip(pairs, self.m, self.v, strict=True):
            self._threshold = subnormal_threshold(p.dtype)
            fused = kernels.get("adam", array_module(p))
            if fused is None:
                _run_chunked(self._chunk, (p, g, m, v), self.threads)
                continue
            # on a GPU, _chunk's update as one kernel, with the same numbers (minivae.accel.kernels)
            m_floor = self._threshold if self._flush_now else 0.0
            v_floor = m_floor if self.eps > 0 else 0.0
            fused(g, self.beta1, 1 - self.beta1, self.beta2, 1 - self.beta2, self._step_size,
                  self._sqrt_bias2, self.eps, m_floor, v_floor, p, m, v)

    def _chunk(self, p: Array, g: Array, m: Array, v: Array, tmp: Array) -> None:
        """The update above on one chunk, in place; ``tmp`` is scratch of the same shape."""
        xp = array_module(p)
        # m <- beta1 * m + (1 - beta1) * g
        xp.multiply(m, self.beta1, out=m)
        xp.multiply(g, 1 - self.beta1, out=tmp)
        xp.add(m, tmp, out=m)
        # v <- beta2 * v + (1 - beta2) * g^2
        xp.multiply(v, self.beta2, out=v)
        xp.multiply(g, g, out=tmp)
        xp.multiply(tmp, 1 - self.beta2, out=tmp)
        xp.add(v, tmp, out=v)
        # p <- p - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        xp.sqrt(v, out=tmp)
        xp.divide(tmp, self._sqrt_bias2, out=tmp)
        xp.add(tmp, self.eps, out=tmp)
        xp.divide(m, tmp, out=tmp)
        xp.multiply(tmp, self._step_size, out=tmp)
        xp.subtract(p, tmp, out=p)
        if self._flush_now:  # keep m and v out of the subnormal range: see subnormal_threshold
            m[xp.abs(m) < self._threshold] = 0
            if self.eps > 0:  # with eps = 0, a zero v could divide a nonzero m by 0
                v[v < self._threshold] = 0
