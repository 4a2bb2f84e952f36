"""fit's BLAS-thread policy (minivae.accel.blas): one thread for small models or a busy machine."""

from __future__ import annotations

import numpy as np
import pytest

from minivae import VAE, fit
from minivae.accel import blas

SMALL = VAE(64, 8, (128,))  # 64 * 64 * 128 multiply-adds at batch 64: far below the threshold
LARGE = VAE(784, 20, (512,))  # 128 * 784 * 512 = 51 million at batch 128


def test_the_largest_product_is_batch_times_the_widest_layer():
    assert blas.largest_product(SMALL, 64) == 64 * 64 * 128
    assert blas.largest_product(LARGE, 128) == 128 * 784 * 512


def test_auto_uses_one_thread_for_the_course_models_and_leaves_large_ones(monkeypatch):
    monkeypatch.delenv("MINIVAE_BLAS_THREADS", raising=False)
    assert blas.threads_for(SMALL, 64) == 1
    assert blas.threads_for(LARGE, 128) == 1, "784 x 512 at batch 128 is still a course size"
    monkeypatch.setattr(blas, "_blas_own_threads", None)  # as without threadpoolctl
    assert blas.threads_for(LARGE, 512) is None, "205 million multiply-adds: BLAS keeps its own"


def test_explicit_counts_and_the_environment_switch(monkeypatch):
    assert blas.threads_for(LARGE, 128, 2) == 2
    assert blas.threads_for(LARGE, 128, None) is None
    monkeypatch.setenv("MINIVAE_BLAS_THREADS", "3")
    assert blas.threads_for(SMALL, 64) == 3
    monkeypatch.setenv("MINIVAE_BLAS_THREADS", "default")
    assert blas.threads_for(SMALL, 64) is None


@pytest.mark.parametrize("bad", [0, -1, "two", True, 1.5])
def test_bad_thread_counts_are_refused(bad, monkeypatch):
    monkeypatch.delenv("MINIVAE_BLAS_THREADS", raising=False)
    with pytest.raises(ValueError, match="blas_threads must be 'auto', None or a positive integer"):
        blas.threads_for(SMALL, 64, bad)
    monkeypatch.setenv("MINIVAE_BLAS_THREADS", str(bad))
    with pytest.raises(ValueError, match="MINIVAE_BLAS_THREADS"):
        blas.threads_for(SMALL, 64)


def test_fit_trains_under_the_limit_and_the_limit_changes_no_number(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []
    original = blas.limited

    def recording(threads):
        seen.append(threads)
        return original(threads)

    monkeypatch.setattr(blas, "limited", recording)
    x = (np.random.default_rng(0).random((96, 64)) < 0.3).astype(np.float32)
    runs = []
    for threads in ("auto", 2):
        model = VAE(64, 4, (32,), seed=1)
        history = fit(model, x, epochs=2, batch_size=32, progress=False, blas_threads=threads)
        runs.append(history.train["loss"])
    assert seen == [1, 2]
    assert runs[0] == runs[1], "tiny products: 1 and 2 BLAS threads compute the same numbers"
    assert threadpoolctl.threadpool_info() is not None


def _blas_threads_after_import(env: dict) -> int:
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, minivae, threadpoolctl; "
        "print(json.dumps([p['num_threads'] for p in threadpoolctl.threadpool_info() "
        "if p['user_api'] == 'blas']))"
    )
    full = {**os.environ, **env}
    full.pop("OPENBLAS_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                         check=True).stdout
    return max(json.loads(out))


def test_importing_minivae_limits_blas_to_one_thread_unless_told_otherwise():
    pytest.importorskip("threadpoolctl")
    assert _blas_threads_after_import({"MINIVAE_BLAS_THREADS": ""}) == 1
    assert _blas_threads_after_import({"MINIVAE_BLAS_THREADS": "2", "OMP_NUM_THREADS": "2"}) == 2


def test_fit_gives_a_large_model_back_blas_own_thread_count(monkeypatch):
    monkeypatch.delenv("MINIVAE_BLAS_THREADS", raising=False)
    monkeypatch.setattr(blas, "_blas_own_threads", 2)
    assert blas.threads_for(LARGE, 512) == 2
    assert blas.threads_for(SMALL, 64) == 1
