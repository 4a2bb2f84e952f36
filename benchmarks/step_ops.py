"""What one VAE training step asks of a GPU, counted on the CPU: array operations and read-backs.

    python benchmarks/step_ops.py [--batch 128] [--hidden 512]

On CuPy every array operation of the step (``a * b``, ``xp.exp(a)``, ``a.sum()``, ``x @ W``, a
fused kernel) is at least one kernel launch, queued by the CPU; at this course's sizes the
launches, not the arithmetic, set the time of a step. Every read-back to the host
(``float(a.sum())``) makes the CPU wait until the GPU has finished everything queued so far.
This script runs one training step (``VAE.loss_and_grads`` on checked data and ``Adam.step``,
as ``fit`` does, plus ``fit``'s finite-gradient check) on the stand-in backend, which behaves
like CuPy on the CPU, and counts both (``minivae.testing.opcount``), with minivae's fused
kernels (run on the CPU by ``minivae.testing.host_kernels``, which needs g++) and without them.

It counts operations, not kernels: a matrix product is one cuBLAS call (one or more kernels), a
reduction may be one or two kernels; views (``h[:, :k]``, ``W.T``) and ``empty`` allocations
launch nothing and are not counted. It measures no time; ``bench_gpu.py`` does, on a GPU.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from minivae import VAE, Adam
from minivae.accel import kernels
from minivae.testing import host_kernels, opcount
from minivae.testing.standin import standin
from minivae.validation import all_finite


def count_step(batch: int, hidden: int, fused: bool) -> opcount.Count:
    """Operations and read-backs of one training step (the second: the first sets up state)."""
    previous = kernels.set_enabled(fused)
    try:
        rng = np.random.default_rng(0)
        x = standin.asarray((rng.random((batch, 784)) < 0.2).astype(np.float32))
        model = VAE(784, 20, (hidden,), seed=0, backend="standin")
        data = model.prepare(x)  # fit checks the data once, before the steps
        optimizer = Adam(model.params, lr=1e-3)
        for _ in range(2):
            with opcount.counting() as count:
                terms, grads = model.loss_and_grads(data)
                # fit's check before each step: the loss terms (host numbers) and one sum of
                # the flat gradient buffer
                finite = all(math.isfinite(v) for v in terms.values()) and all_finite(grads.flat)
                optimizer.step(grads)
            assert finite, "the step's loss or gradients are not finite"
        return count
    finally:
        kernels.set_enabled(previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args(argv)
    runs = {"without fused kernels": count_step(args.batch, args.hidden, fused=False)}
    if host_kernels.CXX is None:
        print("no C++ compiler (g++): the fused-kernel column is left out")
    else:
        with host_kernels.installed():
            runs["with fused kernels"] = count_step(args.batch, args.hidden, fused=True)
    print(f"One training step, VAE 784-{args.hidden}-20, batch {args.batch}, Adam "
          "(stand-in backend: each operation is at least one kernel launch on CuPy)\n")
    print("| | " + " | ".join(runs) + " |")
    print("|---|" + "---:|" * len(runs))
    print("| array operations | " + " | ".join(str(c.n_ops) for c in runs.values()) + " |")
    print("| host read-backs | " + " | ".join(str(len(c.reads)) for c in runs.values()) + " |")
    for title, count in runs.items():
        print(f"\n{title}: " + ", ".join(f"{name} {n}" for name, n in count.ops.most_common()))
        print(f"  read-backs: {', '.join(count.reads) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
