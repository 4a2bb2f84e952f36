"""Do Python threads make NumPy's elementwise work faster? Measured, not assumed (issue 21).

    python benchmarks/threads_elementwise.py [--threads 2]

PyTorch splits a large elementwise operation over its threads inside one C call. minivae can
only split it between Python threads, each calling NumPy on its part: NumPy releases the GIL
inside its loops, but every call takes the GIL back and waits for it if the other thread holds
it. This script times, on this machine, the same work on one thread and split over ``--threads``:

1. one ufunc (add, sqrt) called 200 times on arrays of 2**13 .. 2**19 float32 entries;
2. minivae's Adam step on 835,384 parameters (the MNIST VAE), with ``Adam(threads=1)`` and
   ``threads=N``, alone and right after a matrix product on N BLAS threads (as in training,
   where the optimizer follows the backward pass: OpenBLAS's worker threads keep spinning for a
   while after a product, on the cores a second Python thread would use);
3. the Bernoulli loss of :mod:`minivae.accel.inplace` on 512 x 784 logits, whole on one thread
   and split by rows over N threads, alone and right after a product.

It prints a markdown table (medians of repeated runs, wall clock). No file is written.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import common
import numpy as np


def _median_ms(run: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def ufunc_rows(pool: ThreadPoolExecutor, threads: int) -> list[str]:
    rows = []
    for size in (2**13, 2**15, 2**17, 2**19):
        for name, op in (("add", lambda a, b: np.add(a, b, out=b)),
                         ("sqrt", lambda a, b: np.sqrt(a, out=b))):
            arrays = [(np.ones(size, np.float32), np.ones(size, np.float32))
                      for _ in range(threads)]

            def work(i: int, _op=op, _arrays=arrays) -> None:
                a, b = _arrays[i]
                for _ in range(200):
                    _op(a, b)

            one = _median_ms(lambda _w=work: [_w(i) for i in range(threads)], 5)

            def split(_w=work) -> None:
                futures = [pool.submit(_w, i) for i in range(1, threads)]
                _w(0)
                for future in futures:
                    future.result()

            many = _median_ms(split, 5)
            per_call = 1e3 * one / (200 * threads)
            rows.append(f"| {name}, {size:,} entries ({per_call:.1f} us a call) | {one:.2f} | "
                        f"{many:.2f} | {one / many:.2f}x |")
    return rows


def adam_rows(threads: int) -> list[str]:
    from minivae import Adam
    from minivae.params import Parameters

    rng = np.random.default_rng(0)
    n = 835_384
    a = rng.standard_normal((512, 784)).astype(np.float32)
    b = rng.standard_normal((784, 512)).astype(np.float32)
    c = np.empty((512, 512), np.float32)
    rows = []
    for after_product in (False, True):
        results = {}
        for t in (1, threads):
            params = Parameters(rng.standard_normal(n).astype(np.float32), {"w": (n,)})
            grads = Parameters(1e-2 * rng.standard_normal(n).astype(np.float32), {"w": (n,)})
            optimizer = Adam(params, threads=t)
            for _ in range(10):
                optimizer.step(grads)
            times = []
            for _ in range(60):
                if after_product:
                    np.matmul(a, b, out=c)
                start = time.perf_counter()
                optimizer.step(grads)
                times.append(time.perf_counter() - start)
            results[t] = 1e3 * statistics.median(times)
        where = "right after a product" if after_product else "alone"
        rows.append(f"| Adam, 835,384 parameters, {where} | {results[1]:.2f} | "
                    f"{results[threads]:.2f} | {results[1] / results[threads]:.2f}x |")
    return rows


def bernoulli_rows(pool: ThreadPoolExecutor, threads: int) -> list[str]:
    from minivae.accel import inplace

    rng = np.random.default_rng(0)
    logits = (3 * rng.standard_normal((512, 784)) - 4).astype(np.float32)
    x = (rng.random((512, 784)) < 0.12).astype(np.float32)
    a = rng.standard_normal((512, 784)).astype(np.float32)
    b = rng.standard_normal((784, 512)).astype(np.float32)
    c = np.empty((512, 512), np.float32)
    bounds = [512 * i // threads for i in range(threads + 1)]

    def split() -> None:
        futures = [pool.submit(inplace.bernoulli_entries, logits[lo:hi], x[lo:hi])
                   for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)]
        inplace.bernoulli_entries(logits[: bounds[1]], x[: bounds[1]])
        for future in futures:
            future.result()

    rows = []
    for after_product in (False, True):
        def one(after_product: bool = after_product) -> None:
            if after_product:
                np.matmul(a, b, out=c)
            inplace.bernoulli_entries(logits, x)

        def many(after_product: bool = after_product) -> None:
            if after_product:
                np.matmul(a, b, out=c)
            split()

        product = _median_ms(lambda: np.matmul(a, b, out=c), 30) if after_product else 0.0
        t1, tn = _median_ms(one, 40) - product, _median_ms(many, 40) - product
        where = "right after a product" if after_product else "alone"
        rows.append(f"| Bernoulli loss, 512 x 784, {where} | {t1:.2f} | {tn:.2f} | "
                    f"{t1 / tn:.2f}x |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    common.limit_threads(args.threads)  # BLAS threads for the products, as in training
    pool = ThreadPoolExecutor(max_workers=args.threads - 1 or 1)
    print(f"{common.cpu_model()}; NumPy {np.__version__}, BLAS: {common.blas_info()}\n")
    print(f"| work | 1 thread, ms | split over {args.threads} threads, ms | speed-up |")
    print("|---|---:|---:|---:|")
    for row in ufunc_rows(pool, args.threads) + adam_rows(args.threads) + bernoulli_rows(
            pool, args.threads):
        print(row, flush=True)
    pool.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
