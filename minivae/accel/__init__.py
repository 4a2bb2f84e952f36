"""Speed, kept apart from the maths: each fast path here is tested against its plain reference.

The library's functions are written as the equations in their docstrings (``losses.bernoulli_nll``
is ``softplus(l) - x l`` and ``(sigmoid(l) - x) / batch``; ``Adam.step`` is the textbook update).
Where that plain code is too slow for training, the function hands its arguments to a fast
version kept here, the way ``kl.py`` and ``reparam.py`` use a fused kernel: the plain line is the
code, the fast path is a named switch beside it. The fast paths, and what they are compared with
(``tests/library/``):

- :mod:`.kernels`: fused CUDA kernels (CuPy only) for the elementwise pieces of the ELBO and for
  the optimizer updates, each replacing the plain lines beside its call (``kl.py``,
  ``reparam.py``, ``losses.py``, ``optim.py``): the optimizers give the same numbers bit for bit
  (compiled with ``--fmad=false``), the losses agree to float rounding (``exp``, ``log1p``);
- :func:`.inplace.bernoulli_entries`: ``losses.bernoulli_entries`` (the per-entry terms behind
  ``bernoulli_nll`` and ``bernoulli_nll_rows``) with one ``exp`` for softplus and sigmoid, in
  cache-sized blocks of rows, every pass written into the results or two scratch blocks; bit
  for bit;
- :func:`.inplace.activation_forward_in_place`, :func:`.inplace.activation_backward_in_place`:
  the ReLU written over its input's fresh array; bit for bit;
- :func:`.inplace.mlp_backward_into`: ``MLP.backward(dout, caches, grads)`` writing dW and db
  straight into the gradient buffer and skipping the unused data gradient; bit for bit;
- :mod:`.updates`: ``SGD.step`` and ``Adam.step`` in place, on NumPy in cache-sized chunks and
  optionally on several threads; bit for bit, whatever the chunking and thread count.

Beside them, :mod:`.blas` chooses how many BLAS threads ``fit`` lets a small model's matrix
products use (its own switch: ``fit(..., blas_threads=)``, ``MINIVAE_BLAS_THREADS``).

Which one runs: on CuPy the fused kernel where there is one; otherwise the in-place version
(NumPy, the stand-in, CuPy with the kernels off); the plain code when acceleration is off.

The switch, one for all of it (process-wide):

- :func:`enabled`, :func:`set_enabled` (returns the previous setting), and the context manager
  :func:`disabled` (``with accel.disabled(): ...`` runs the block on the plain references);
- ``MINIVAE_ACCEL=0`` (or ``false``, ``no``) in the environment starts a process with it off;
- the fused kernels also have their own switch, inside this one: ``MINIVAE_FUSED_KERNELS=0`` or
  ``kernels.set_enabled(False)`` turns off the kernels only (``benchmarks/bench_gpu.py`` times
  CuPy with and without them); a kernel runs only when both switches are on.

Why these and not more: see ``benchmarks/README.md`` (a profile of one training step).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def _switch_from_environment(name: str) -> bool:
    """False when the variable ``name`` says 0, false or no; True otherwise (and when unset)."""
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no")


_enabled = _switch_from_environment("MINIVAE_ACCEL")


def enabled() -> bool:
    """Whether the library's functions take their fast paths (True unless switched off)."""
    return _enabled


def set_enabled(on: bool) -> bool:
    """Turn every fast path on or off (process-wide); returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(on)
    return previous


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the block on the plain reference code (no fast path, no kernel); restores the switch."""
    previous = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)
