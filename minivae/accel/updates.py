"""The optimizers' updates, fast: in place, in cache-sized chunks, optionally on several threads.

:class:`minivae.optim.SGD` and :class:`minivae.optim.Adam` write their updates as the textbook
equations; this module computes exactly those numbers, arranged for speed. On the CPU, in a VAE
epoch, a textbook ``p -= lr * m / (sqrt(v) + eps)`` spends more time creating and filling
temporary arrays than computing. So:

1. every operation writes into an existing array (``out=``): no temporaries;
2. a NumPy flat buffer is updated in chunks of :data:`CHUNK` entries with one scratch chunk, so
   the dozen passes of one update stay in the CPU's caches (chunks much smaller than ``CHUNK``
   lose more to NumPy's per-call overhead, a microsecond or two per call, than they gain);
3. with ``threads=2`` (or more), a large buffer is split between that many Python threads
   (NumPy releases the GIL inside its loops, so two threads update two halves at once, as
   PyTorch's kernels do). The default is 1: on a machine whose cores are busy with other work,
   threads that wait for each other are much slower than one;
4. on CuPy, each update is one fused kernel (:mod:`minivae.accel.kernels`) instead.

None of this changes a number: each entry goes through the same operations in the same order as
in the plain update, whatever the chunking and threading (``tests/library/test_optim_fast.py``).

Every function takes its hyperparameters as arguments; the only state is the
:class:`ChunkRunner`'s thread pool, owned by one optimizer.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..backend import Array, array_module
from . import kernels

#: Entries per chunk of the flat buffer (float32: 256 KiB per array; the five arrays of a chunk,
#: 1.25 MiB, stay in a core's L2 cache). Per step of an 835k-parameter Adam, 1 thread: on a 2-core
#: AMD EPYC 2**14 -> 2.1 ms, 2**17 -> 1.6 ms, one whole pass -> 1.7 ms; on the 2-core Xeon of
#: today's benchmarks (2 MiB of L2 per core) 2**14 -> 2.08 ms, 2**15 -> 1.90, 2**16 -> 1.85,
#: 2**17 -> 1.96 (``python benchmarks/bench_cpu.py`` reports the machine).
CHUNK = 2**16


class ChunkRunner:
    """Runs an in-place update over same-shaped arrays, chunk by chunk, on up to ``threads``.

    ``run(update, arrays, threads, **hyper)`` calls ``update(*slices, scratch, **hyper)`` on
    consecutive chunks of ``arrays`` (``scratch``: an array of the chunk's shape for temporaries).
    NumPy 1-D buffers are cut into chunks of :data:`CHUNK` entries and, when large, shared
    between the threads (contiguous parts, each with its own scratch). Any other array (CuPy,
    the stand-in, a parameter of a plain dict) is updated whole: a GPU wants one big kernel, not
    many small ones.

    Lifecycle of the threads: the pool is made at the first call that uses more than one
    thread and belongs to this runner (each optimizer has its own); :meth:`close` shuts it down,
    as does dropping the runner (its optimizer) or leaving the interpreter. A closed runner
    makes a new pool if it is used again.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._workers = 0
        self._close_pool: weakref.finalize | None = None
        self._lock = threading.Lock()

    def run(self, update: Callable[..., None], arrays: tuple[Array, ...], threads: int,
            **hyper: Any) -> None:
        first = arrays[0]
        if type(first) is not np.ndarray or first.ndim != 1 or first.size <= CHUNK:
            update(*arrays, array_module(first).empty_like(first), **hyper)
            return
        n = first.size
        parts = min(threads, -(-n // CHUNK))  # at least one chunk per thread
        bounds = [n * i // parts for i in range(parts + 1)]

        def run_part(i: int) -> None:
            scratch = np.empty(CHUNK, dtype=first.dtype)
            for start in range(bounds[i], bounds[i + 1], CHUNK):
                stop = min(start + CHUNK, bounds[i + 1])
                update(*(a[start:stop] for a in arrays), scratch[: stop - start], **hyper)

        if parts == 1:
            run_part(0)
            return
        pool = self._pool_of(parts - 1)
        futures = [pool.submit(run_part, i) for i in range(1, parts)]
        run_part(0)  # this thread takes the first part
        for future in futures:
            future.result()

    def _pool_of(self, workers: int) -> ThreadPoolExecutor:
        """The pool, with at least ``workers`` threads (a larger one replaces a smaller one)."""
        with self._lock:
            if self._pool is None or self._workers < workers:
                self.close()
                self._pool = ThreadPoolExecutor(max_workers=workers,
                                                thread_name_prefix="minivae-optim")
                self._workers = workers
                # shut the pool down with the runner, without the finalizer keeping it alive
                self._close_pool = weakref.finalize(self, self._pool.shutdown, wait=False)
            return self._pool

    def close(self) -> None:
        """Shut the thread pool down (its threads end); a later :meth:`run` makes a new one."""
        if self._close_pool is not None:
            self._close_pool()  # calls pool.shutdown once, and detaches the finalizer
        self._pool, self._close_pool, self._workers = None, None, 0


# ---------------------------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------------------------


def sgd(p: Array, g: Array, *, lr: float, threads: int, runner: ChunkRunner) -> None:
    """p <- p - lr * g, in place (on CuPy one fused kernel)."""
    fused = kernels.get("sgd", array_module(p))
    if fused is not None:
        fused(g, lr, p)
    else:
        runner.run(_sgd_chunk, (p, g), threads, lr=lr)


def _sgd_chunk(p: Array, g: Array, tmp: Array, *, lr: float) -> None:
    xp = array_module(p)
    xp.multiply(g, lr, out=tmp)  # p <- p - lr * g
    xp.subtract(p, tmp, out=p)


def sgd_momentum(p: Array, g: Array, velocity: Array, *, lr: float, momentum: float,
                 threads: int, runner: ChunkRunner) -> None:
    """velocity <- momentum * velocity + g;  p <- p - lr * velocity, in place."""
    fused = kernels.get("sgd_momentum", array_module(p))
    if fused is not None:
        fused(g, lr, momentum, p, velocity)
    else:
        runner.run(_sgd_momentum_chunk, (p, g, velocity), threads, lr=lr, momentum=momentum)


def _sgd_momentum_chunk(p: Array, g: Array, velocity: Array, tmp: Array, *, lr: float,
                        momentum: float) -> None:
    xp = array_module(p)
    xp.multiply(velocity, momentum, out=velocity)  # velocity <- momentum * velocity + g
    xp.add(velocity, g, out=velocity)
    xp.multiply(velocity, lr, out=tmp)  # p <- p - lr * velocity
    xp.subtract(p, tmp, out=p)


# ---------------------------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------------------------


def adam(
    p: Array, g: Array, m: Array, v: Array, *, beta1: float, beta2: float, step_size: float,
    sqrt_bias2: float, eps: float, flush_below: float | None, threads: int, runner: ChunkRunner,
) -> None:
    """One Adam update of ``p`` and its state ``m``, ``v``, in place:

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        p <- p - step_size * m / (sqrt(v) / sqrt_bias2 + eps)

    with ``step_size = lr / (1 - beta1^t)`` and ``sqrt_bias2 = sqrt(1 - beta2^t)``. Then, when
    ``flush_below`` is a number, entries of m (and of v, when eps > 0) below it in magnitude are
    set to 0 (:func:`minivae.optim.subnormal_threshold` says why).
    """
    fused = kernels.get("adam", array_module(p))
    if fused is None:
        runner.run(_adam_chunk, (p, g, m, v), threads, beta1=beta1, beta2=beta2,
                   step_size=step_size, sqrt_bias2=sqrt_bias2, eps=eps, flush_below=flush_below)
        return
    m_floor = 0.0 if flush_below is None else flush_below  # a floor of 0 flushes nothing
    v_floor = m_floor if eps > 0 else 0.0
    fused(g, beta1, 1 - beta1, beta2, 1 - beta2, step_size, sqrt_bias2, eps, m_floor, v_floor,
          p, m, v)


def _adam_chunk(p: Array, g: Array, m: Array, v: Array, tmp: Array, *, beta1: float,
                beta2: float, step_size: float, sqrt_bias2: float, eps: float,
                flush_below: float | None) -> None:
    """:func:`adam` on one chunk, in place; ``tmp`` is scratch of the same shape."""
    xp = array_module(p)
    # m <- beta1 * m + (1 - beta1) * g
    xp.multiply(m, beta1, out=m)
    xp.multiply(g, 1 - beta1, out=tmp)
    xp.add(m, tmp, out=m)
    # v <- beta2 * v + (1 - beta2) * g^2
    xp.multiply(v, beta2, out=v)
    xp.multiply(g, g, out=tmp)
    xp.multiply(tmp, 1 - beta2, out=tmp)
    xp.add(v, tmp, out=v)
    # p <- p - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    xp.sqrt(v, out=tmp)
    xp.divide(tmp, sqrt_bias2, out=tmp)
    xp.add(tmp, eps, out=tmp)
    xp.divide(m, tmp, out=tmp)
    xp.multiply(tmp, step_size, out=tmp)
    xp.subtract(p, tmp, out=p)
    if flush_below is not None:  # keep m and v out of the subnormal range
        m[xp.abs(m) < flush_below] = 0
        if eps > 0:  # with eps = 0, a zero v could divide a nonzero m by 0
            v[v < flush_below] = 0
