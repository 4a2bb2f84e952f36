"""How many threads BLAS may use while a small model trains.

A small model's matrix products (the 8x8 digits through 256 hidden units: about a million
multiply-adds each) finish in microseconds; splitting them over threads costs more than it saves,
and on a laptop whose cores are busy with other work OpenBLAS's threads wait for each other, so
a lecture that takes 22 s with one thread takes 3 minutes with the default (measured on chapter
03's lecture with two other CPU-bound processes running). Large products (the MNIST benchmark's
784 x 512 at batch 128: 51 million) do gain from two threads. So :func:`minivae.train.fit` limits
BLAS to one thread when the largest product of a step is below :data:`SMALL_PRODUCT`, and leaves
BLAS alone otherwise.

Switch: ``fit(..., blas_threads=N)`` sets N threads, ``blas_threads=None`` leaves BLAS as it is;
the environment variable ``MINIVAE_BLAS_THREADS`` (a number, or ``default``) does the same for
every call of ``fit`` that does not say. Needs threadpoolctl (a course dependency); without it
BLAS is left alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

#: Multiply-adds of a step's largest matrix product below which one BLAS thread is faster.
SMALL_PRODUCT = 2**24

AUTO = "auto"


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
            return 1 if largest_product(model, batch_size) < SMALL_PRODUCT else None
    if blas_threads is None:
        return None
    try:
        threads = int(blas_threads)
    except (TypeError, ValueError):
        threads = 0
    if isinstance(blas_threads, bool) or threads < 1:
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
