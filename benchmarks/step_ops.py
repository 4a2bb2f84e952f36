"""What one VAE training step asks of a GPU, counted on the CPU: array operations and read-backs.

    python benchmarks/step_ops.py [--batch 128] [--hidden 512]

On CuPy every array operation of the step (``a * b``, ``xp.exp(a)``, ``a.sum()``, ``x @ W``, a
fused kernel) is at least one kernel launch, queued by the CPU; at this course's sizes the
launches, not the arithmetic, set the time of a step. Every read-back to the host
(``float(a.sum())``) makes the CPU wait until the GPU has finished everything queued so far.
This script runs one training step (``VAE.loss_and_grads`` on checked data and ``Adam.step``,
as ``fit`` does, plus ``fit``'s finite-gradient check) on the stand-in backend, which behaves
like CuPy on the CPU, and counts both, with minivae's fused kernels (run on the CPU by
``minivae/testing/host_kernels.py``, which needs g++) and without them.

It counts operations, not kernels: a matrix product is one cuBLAS call (one or more kernels), a
reduction may be one or two kernels; views (``h[:, :k]``, ``W.T``) and ``empty`` allocations
launch nothing and are not counted. It measures no time; ``bench_gpu.py`` does, on a GPU.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from minivae import VAE, Adam  # noqa: E402
from minivae.accel import kernels  # noqa: E402
from minivae.testing.standin import DeviceArray, StandInModule, _Random, standin  # noqa: E402
from minivae.train import _check_finite  # noqa: E402

OPERATORS = ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
             "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__",
             "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__neg__",
             "__iadd__", "__isub__", "__imul__", "__itruediv__", "__setitem__"]
READS = ["__float__", "__bool__", "__int__", "__format__"]
ALLOCATIONS = {"empty", "empty_like"}  # memory, no kernel


@contextlib.contextmanager
def counting() -> Iterator[tuple[collections.Counter, list[str]]]:
    """Count stand-in operations (by name) and host read-backs while the block runs."""
    ops: collections.Counter = collections.Counter()
    reads: list[str] = []
    saved = {name: DeviceArray.__dict__[name] for name in
             [*OPERATORS, *READS, "__getattr__", "__getitem__"]}
    saved_module = StandInModule.__getattr__
    saved_draw = _Random.Generator.__getattr__

    def counted(label, function):
        def wrapper(*args, **kwargs):
            ops[label] += 1
            return function(*args, **kwargs)

        return wrapper

    def read(name):
        def wrapper(self, *args):
            reads.append(name.strip("_"))
            return saved[name](self, *args)

        return wrapper

    def method(self, name):
        attr = saved["__getattr__"](self, name)
        return counted(f"a.{name}()", attr) if callable(attr) else attr

    def getitem(self, key):
        if isinstance(key, DeviceArray):  # indexing with a device array: a gather
            ops["a[rows]"] += 1
        return saved["__getitem__"](self, key)

    def module_function(self, name):
        attr = saved_module(self, name)
        if callable(attr) and not isinstance(attr, type) and name not in ALLOCATIONS:
            return counted(f"xp.{name}", attr)
        return attr

    def draw(self, name):
        return counted(f"rng.{name}", saved_draw(self, name))

    try:
        for name in OPERATORS:
            setattr(DeviceArray, name, counted(name, saved[name]))
        for name in READS:
            setattr(DeviceArray, name, read(name))
        DeviceArray.__getattr__ = method
        DeviceArray.__getitem__ = getitem
        StandInModule.__getattr__ = module_function
        _Random.Generator.__getattr__ = draw
        yield ops, reads
    finally:
        for name, value in saved.items():
            setattr(DeviceArray, name, value)
        StandInModule.__getattr__ = saved_module
        _Random.Generator.__getattr__ = saved_draw


def count_step(batch: int, hidden: int, fused: bool) -> tuple[collections.Counter, list[str]]:
    """Operations and read-backs of one training step (the second: the first sets up state)."""
    previous = kernels.set_enabled(fused)
    try:
        rng = np.random.default_rng(0)
        x = standin.asarray((rng.random((batch, 784)) < 0.2).astype(np.float32))
        model = VAE(784, 20, (hidden,), seed=0, backend="standin")
        data = model.prepare(x)  # fit checks the data once, before the steps
        optimizer = Adam(model.params, lr=1e-3)
        for step in range(2):
            launched = {name: k.calls for (_, name), k in kernels._compiled.items()}
            with counting() as (ops, reads):
                terms, grads = model.loss_and_grads(data)
                _check_finite(terms, grads, 0, step)
                optimizer.step(grads)
            for (_, name), kernel in kernels._compiled.items():  # the fused kernels' own count
                if kernel.calls > launched.get(name, 0):
                    ops[f"kernel {name}"] += kernel.calls - launched.get(name, 0)
        return ops, reads
    finally:
        kernels.set_enabled(previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args(argv)
    from minivae.testing.host_kernels import CXX, HostElementwiseKernel

    runs = {"without fused kernels": count_step(args.batch, args.hidden, fused=False)}
    if CXX is None:
        print("no C++ compiler (g++): the fused-kernel column is left out")
    else:
        compiled = dict(kernels._compiled)  # the kernel cache, put back afterwards
        standin.ElementwiseKernel = HostElementwiseKernel
        try:
            runs["with fused kernels"] = count_step(args.batch, args.hidden, fused=True)
        finally:
            del standin.ElementwiseKernel
            kernels._compiled.clear()
            kernels._compiled.update(compiled)
    print(f"One training step, VAE 784-{args.hidden}-20, batch {args.batch}, Adam "
          "(stand-in backend: each operation is at least one kernel launch on CuPy)\n")
    print("| | " + " | ".join(runs) + " |")
    print("|---|" + "---:|" * len(runs))
    print("| array operations | " + " | ".join(str(sum(o.values())) for o, _ in runs.values())
          + " |")
    print("| host read-backs | " + " | ".join(str(len(r)) for _, r in runs.values()) + " |")
    for title, (ops, reads) in runs.items():
        print(f"\n{title}: " + ", ".join(f"{name} {n}" for name, n in ops.most_common()))
        print(f"  read-backs: {', '.join(reads) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
