"""Reproducibility, as the README states it: the same seeds, machine and BLAS thread count give
identical numbers; 1 and 2 BLAS threads differ only in the last digits.

The numbers of the README come from ``test_one_and_two_blas_threads`` (run it with ``-s`` to see
them): the 784 -> 512 -> 20 VAE, float32, 4096 binary rows, batch 128, 2 epochs of Adam.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from minivae import VAE, fit


def test_a_seeded_run_is_identical_when_rerun():
    rng = np.random.default_rng(0)
    x = (rng.random((256, 20)) < 0.4).astype(np.float32)
    runs = []
    for _ in range(2):
        model = VAE(20, 3, (16,), seed=5)
        history = fit(model, x, x[:64], epochs=2, batch_size=32, seed=7, progress=False)
        runs.append((model.params.flat.copy(), history.train, history.val, model.sample(4)))
    (p1, t1, v1, s1), (p2, t2, v2, s2) = runs
    np.testing.assert_array_equal(p1, p2)
    assert t1 == t2 and v1 == v2
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores for 2 BLAS threads")
def test_one_and_two_blas_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(0)
    x = (rng.random((4096, 784)) < 0.3).astype(np.float32)
    x_val = (rng.random((512, 784)) < 0.3).astype(np.float32)
    eps = np.random.default_rng(1).standard_normal((128, 20))

    def one_step(threads: int):
        model = VAE(784, 20, (512,), seed=0)
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            terms, grads = model.loss_and_grads(x[:128], eps)
        return terms["loss"], grads.flat.copy()

    def training(threads: int):
        model = VAE(784, 20, (512,), seed=0)
        history = fit(model, x, x_val, epochs=2, batch_size=128, seed=0, progress=False,
                      blas_threads=threads)
        return model.params.flat.copy(), history.train["loss"][-1], history.val["loss"][-1]

    loss1, grad1 = one_step(1)
    loss2, grad2 = one_step(2)
    again = one_step(1)
    assert again[0] == loss1 and np.array_equal(again[1], grad1), "1 thread, rerun: not identical"
    params1, train1, val1 = training(1)
    params2, train2, val2 = training(2)
    for threads, (params, train, val) in ((1, (params1, train1, val1)),
                                          (2, (params2, train2, val2))):
        rerun = training(threads)
        assert np.array_equal(rerun[0], params) and rerun[1:] == (train, val), \
            f"{threads} BLAS thread(s), rerun: not identical"
    weight_diff = float(np.abs(params1 - params2).max())
    largest = float(np.abs(params1).max())
    print(f"\none step: loss {loss1:.9g} vs {loss2:.9g} (|diff| {abs(loss1 - loss2):.2g}), "
          f"max |gradient diff| {np.abs(grad1 - grad2).max():.2g} (largest |gradient| "
          f"{np.abs(grad1).max():.2g})")
    print(f"2 epochs (64 steps): train loss {train1:.9g} vs {train2:.9g} (|diff| "
          f"{abs(train1 - train2):.2g}), val loss |diff| {abs(val1 - val2):.2g}, max |weight "
          f"diff| {weight_diff:.2g} ({weight_diff / largest:.2g} of the largest weight "
          f"{largest:.2g}), {np.mean(params1 != params2):.0%} of the weights differ")
    # the last digits only: float32 rounding, not a different training run
    assert np.abs(grad1 - grad2).max() < 1e-5 * np.abs(grad1).max()
    assert weight_diff < 1e-3 * largest
    assert abs(train1 - train2) < 1e-6 * abs(train1) and abs(val1 - val2) < 1e-6 * abs(val1)
