"""How many threads BLAS may use while a small model trains.

A small model's matrix products (the 8x8 digits through 256 hidden units: about a million
multiply-adds each) finish in microseconds; splitting them over threads costs more than it saves,
and on a laptop whose cores are busy with other work OpenBLAS's threads wait for each other, so
a lecture that takes 22 s with one thread takes 3 minutes with the default (measured on chapter
03's lecture with two other CPU-bound processes running; a 784 x 256 model at batch 128 took
482 s instead of about 10 s with the machine's load at 8). Only large products (the MNIST
benchmark's 784 x 512 at batch 512: 205 million multiply-adds) gain from two threads, and only on
an idle machine. So minivae uses one BLAS thread in the process that imports it
(:func:`apply_process_default`, at ``import minivae``: a learner's own ``loss_and_grads``,
``log_likelihood`` or imputation cell is as small as a training step), and
:func:`minivae.train.fit` gives BLAS back its own thread count while it trains a model whose
largest product is at least :data:`SMALL_PRODUCT`. The rule depends on the model and the batch
size only, not on how busy the machine is, so the same seed still gives the same numbers on the
same machine (the thread count can change the last digits of a large product's sums).

Switch: ``fit(..., blas_threads=N)`` sets N threads, ``blas_threads=None`` leaves BLAS as it is;
the environment variable ``MINIVAE_BLAS_THREADS`` (a number, or ``default``: BLAS's own count
and no limit at import) does the same for the whole process and every call of ``fit`` that does
not say. Needs threadpoolctl (a course dependency); without it
BLAS is left alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

#: Multiply-adds of a step's largest matrix product below which fit uses one BLAS thread (64 M:
#: the course's models up to 784 x 512 at batch 128 are below it).
SMALL_PRODUCT = 2**26

AUTO = "auto"

#: BLAS's own thread count before :func:`apply_process_default` limited it (None: not limited).
_blas_own_threads: int | None = None


def largest_product(model: Any, batch_size: int) -> int:
    """batch_size * n_in * n_out of the model's widest layer (its largest matrix product)."""
    largest = 0
    for network in model.networks():
        sizes = network.sizes
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            largest = max(largest, batch_size * n_in * n_out)
    return largest


def threads_for(model: Any, batch_size: int, blas_threads: Any = AUTO) -> int | None:
    """The BLAS thread count for training ``model`` at ``batch_size``; None = leave BLAS alone."""
    if blas_threads == AUTO:
        env = os.environ.get("MINIVAE_BLAS_THREADS", "").strip()
        if env == "default":
            return None
        if env:
            blas_threads = env
        else:
            if largest_product(model, batch_size) < SMALL_PRODUCT:
                return 1
            return _blas_own_threads  # what BLAS had before minivae's import limited it
    if blas_threads is None:
        return None
    threads = 0
    if isinstance(blas_threads, str) and blas_threads.strip().isdigit():
        threads = int(blas_threads)  # from MINIVAE_BLAS_THREADS
    elif isinstance(blas_threads, int) and not isinstance(blas_threads, bool):
        threads = blas_threads
    elif type(blas_threads).__module__ == "numpy" and hasattr(blas_threads, "is_integer"):
        threads = int(blas_threads) if float(blas_threads).is_integer() else 0
    if threads < 1:
        raise ValueError(
            f"blas_threads must be 'auto', None or a positive integer (also "
            f"MINIVAE_BLAS_THREADS), got {blas_threads!r}"
        )
    return threads


@contextlib.contextmanager
def limited(threads: int | None) -> Iterator[None]:
    """Within the block, BLAS uses at most ``threads`` threads (None: unchanged)."""
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl is a course dependency, not the library's
        yield
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def apply_process_default() -> None:
    """One BLAS thread for this process, or ``MINIVAE_BLAS_THREADS`` of them ('default': BLAS's
    own count, left alone). Called once, by ``import minivae``; needs threadpoolctl (a course
    dependency), without which BLAS is left alone. A bad value is reported by ``fit``."""
    global _blas_own_threads
    env = os.environ.get("MINIVAE_BLAS_THREADS", "").strip()
    if env == "default" or (env and not env.isdigit()) or env == "0":
        return
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # threadpoolctl is a course dependency, not the library's
        return
    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    if not counts:
        return
    _blas_own_threads = max(counts)
    threadpool_limits(limits=int(env) if env else 1, user_api="blas")
