"""Count what code asks of a GPU, on the CPU: array operations and read-backs to the host.

On CuPy every array operation (``a * b``, ``xp.exp(a)``, ``a.sum()``, ``x @ W``, a fused
kernel) is at least one kernel launch, queued by the CPU; at this course's sizes the launches,
not the arithmetic, set the time of a training step. Every read-back to the host
(``float(a.sum())``) makes the CPU wait until the GPU has finished everything queued so far.
Run the code on the stand-in backend (:mod:`minivae.testing.standin`), which behaves like CuPy
on the CPU, inside :func:`counting`::

    batch = model.prepare(x)                   # a VAE(..., backend="standin") and its data
    with opcount.counting() as count:
        terms, grads = model.loss_and_grads(batch)
    count.n_ops, count.ops.most_common(3), count.reads   # how many, which, ['float', ...]

It counts operations, not kernels: a matrix product is one cuBLAS call (one or more kernels), a
reduction may be one or two kernels; views (``h[:, :k]``, ``W.T``) and ``empty`` allocations
launch nothing and are not counted. A fused kernel run by :mod:`minivae.testing.host_kernels`
counts as one operation, ``"kernel <name>"``. It measures no time; ``benchmarks/bench_gpu.py``
does, on a GPU. Used by ``benchmarks/step_ops.py`` and by the tests that guard the training
step's read-backs.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from .standin import observing


@dataclass
class Count:
    """What the stand-in was asked to do inside one :func:`counting` block."""

    #: array operations by name (``"__mul__"``, ``"a.sum()"``, ``"xp.exp"``, ``"kernel adam"``)
    ops: collections.Counter[str] = field(default_factory=collections.Counter)
    #: read-backs to the host, in order ("float", "bool", "int", "format", "get")
    reads: list[str] = field(default_factory=list)
    #: host arrays copied to the device (``xp.asarray``)
    to_device: int = 0

    @property
    def n_ops(self) -> int:
        """The number of array operations (each at least one kernel launch on CuPy)."""
        return sum(self.ops.values())

    def record(self, kind: str, name: str) -> None:
        """The stand-in's observer callback (:func:`minivae.testing.standin.observing`)."""
        if kind == "op":
            self.ops[name] += 1
        elif kind == "kernel":
            self.ops[f"kernel {name}"] += 1
        elif kind == "read":
            self.reads.append(name)
        elif kind == "to_device":
            self.to_device += 1
        # "alloc": memory only, no kernel


@contextlib.contextmanager
def counting() -> Iterator[Count]:
    """Count the stand-in's array operations and host read-backs while the block runs.

    Only the stand-in backend is watched (NumPy arrays are not counted). Blocks may nest: each
    counts what ran inside it.
    """
    count = Count()
    with observing(count.record):
        yield count
