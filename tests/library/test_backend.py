"""The backend: one code path for NumPy and CuPy.

CI has no GPU, so the GPU path is proven sound there by running the models through a stand-in
array namespace (minivae/testing/standin.py) that fails on any call bypassing the backend, exactly
where CuPy would fail. On a machine with a GPU the same tests also run on CuPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from minivae import VAE, Adam, Autoencoder, backend, fit
from minivae.testing.standin import DeviceArray, StrayNumPyCall, standin

GPU = backend.gpu_available()
BACKENDS = [
    "numpy",
    "standin",
    pytest.param(
        "cupy",
        marks=(pytest.mark.gpu,
               pytest.mark.skipif(not GPU, reason="CuPy with a usable NVIDIA GPU not found")),
    ),
]


def test_standin_refuses_numpy_calls_on_device_data():
    a = standin.ones((2, 3))
    with pytest.raises(StrayNumPyCall, match="np.exp called on device data"):
        np.exp(a)
    with pytest.raises(StrayNumPyCall, match="np.concatenate"):
        np.concatenate([a, a])
    with pytest.raises(StrayNumPyCall, match="NumPy array was mixed"):
        _ = a + np.ones((2, 3))
    with pytest.raises(StrayNumPyCall, match="implicit conversion"):
        np.asarray(a)
    # what is allowed: operators, methods, scalars, the module's own functions
    b = standin.exp(a) * 2.0 + a.sum(axis=0)
    assert isinstance(b, DeviceArray)
    assert backend.array_module(b) is standin
    np.testing.assert_allclose(backend.to_numpy(b), np.exp(1.0) * 2 + 2)


def test_standin_reductions_and_single_entries_stay_on_the_device():
    # As in CuPy: a.sum() and a[0, 1] are 0-d device arrays, not host scalars, so mixing them
    # with NumPy arrays is refused, and reading them back is explicit (float, bool, format)
    a = standin.asarray(np.arange(6.0).reshape(2, 3))
    for value in (a.sum(), a[1, 2], standin.max(a), (a > 2).all()):
        assert isinstance(value, DeviceArray) and value.shape == ()
    with pytest.raises(StrayNumPyCall, match="NumPy array was mixed"):
        _ = a.sum() * np.ones(3)
    assert float(a.sum()) == 15.0 and int(a[1, 2]) == 5 and not bool((a > 2).all())
    assert f"{a.sum():.2f}" == "15.00"
    assert a.sum().item() == 15.0 and type(a.sum().item()) is float


def test_standin_generator_offers_only_what_cupys_does():
    rng = standin.random.default_rng(0)
    assert isinstance(rng.standard_normal((2, 3), dtype=np.float32), DeviceArray)
    for name in ("normal", "permutation", "choice", "shuffle"):  # NumPy has them, CuPy not
        with pytest.raises(StrayNumPyCall, match=f"{name}\\(\\) is not a method of CuPy's"):
            getattr(rng, name)
    try:
        import cupy
    except ImportError:
        return
    # every draw the stand-in allows exists in the installed CuPy (no GPU needed to look)
    offered = {n for n in dir(cupy.random.Generator) if not n.startswith("_")}
    assert rng.METHODS <= offered, sorted(rng.METHODS - offered)


def test_opcount_counts_the_stand_ins_operations_and_read_backs():
    """The operation counter of minivae.testing (what a GPU would be asked to launch and read)."""
    from collections import Counter

    from minivae.testing import opcount

    a = standin.asarray(np.arange(6.0).reshape(2, 3))
    with opcount.counting() as outer:
        b = a * 2 + 1  # two operations
        with opcount.counting() as inner:  # blocks nest; each counts what ran inside it
            total = float(b.sum())  # one operation, one read-back
        standin.exp(b)
        standin.empty_like(b)  # memory only: not counted
        _ = b.T, b[:, :2], b.shape  # views and attributes: not counted
        b[standin.asarray(np.array([1, 0]))]  # a gather by device indices
        b[0, 1] = 5.0
        host = b.get()  # a copy to the host is a read-back
        np.ones(3) * 2  # NumPy arrays are not watched
    a * 3  # outside any block: counted by nobody
    assert total == 36.0 and host.shape == (2, 3)
    assert inner.ops == Counter({"a.sum()": 1}) and inner.reads == ["float"]
    assert outer.ops == Counter({"__mul__": 1, "__add__": 1, "a.sum()": 1, "xp.exp": 1,
                                 "a[rows]": 1, "__setitem__": 1})
    assert outer.n_ops == 6 and outer.reads == ["float", "get"] and outer.to_device == 1


def test_a_training_step_is_counted_the_same_each_time():
    """Two identical steps launch the same operations (the counter loses and invents nothing)."""
    from minivae.testing import opcount

    model = VAE(12, 2, (8,), seed=0, backend="standin")
    batch = model.prepare(standin.asarray(
        (np.random.default_rng(0).random((16, 12)) < 0.5).astype(np.float32)))
    optimizer = Adam(model.params)
    counts = []
    for _ in range(3):
        with opcount.counting() as count:
            _, grads = model.loss_and_grads(batch)
            optimizer.step(grads)
        counts.append(count)
    assert counts[1].ops == counts[2].ops and counts[1].n_ops > 40
    assert counts[1].reads == counts[2].reads and len(counts[1].reads) == 3


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_vae_same_loss_and_grads_on_every_backend(backend_name, likelihood):
    rng = np.random.default_rng(0)
    x = rng.random((16, 12)).astype(np.float32)
    eps = rng.standard_normal((16, 3)).astype(np.float32)
    ref = VAE(12, 3, (10,), likelihood=likelihood, seed=3)
    model = VAE(12, 3, (10,), likelihood=likelihood, seed=3, backend=backend_name)
    terms_ref, grads_ref = ref.loss_and_grads(x, eps)
    terms, grads = model.loss_and_grads(x, eps)
    # float32 on different hardware may sum in another order: float32 tolerance
    for key in terms_ref:
        assert terms[key] == pytest.approx(terms_ref[key], rel=1e-5), key
    np.testing.assert_allclose(backend.to_numpy(grads.flat), grads_ref.flat, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_training_evaluation_and_sampling_run_on_every_backend(backend_name):
    rng = np.random.default_rng(1)
    x = rng.random((40, 12)).astype(np.float32)
    model = VAE(12, 2, (8,), seed=0, backend=backend_name)
    history = fit(model, x[:32], x[32:], epochs=2, batch_size=8, progress=False)
    assert history.epochs == 2 and np.isfinite(history.val["loss"]).all()
    assert backend.to_numpy(model.log_likelihood(x[:3], k=4)).shape == (3,)
    assert backend.to_numpy(model.sample(5)).shape == (5, 12)
    assert backend.to_numpy(model.reconstruct(x[:2])).shape == (2, 12)
    ae = Autoencoder(12, 2, (8,), seed=0, backend=backend_name)
    fit(ae, x, epochs=1, batch_size=8, progress=False)
    assert backend.to_numpy(ae.reconstruct(x[:2])).shape == (2, 12)


def test_standin_training_matches_numpy_exactly():
    """Same seed, same data: the stand-in run reproduces the NumPy run number for number."""
    x = np.random.default_rng(2).random((48, 12)).astype(np.float32)
    runs = []
    for name in ("numpy", "standin"):
        model = VAE(12, 2, (8,), seed=5, backend=name)
        model.rng = np.random.default_rng(9)  # one generator kind for both, so eps agree
        runs.append(fit(model, x, x, epochs=3, batch_size=16, progress=False).train["loss"])
    assert runs[0] == runs[1]


def test_adam_on_standin_arrays_matches_numpy():
    a = VAE(6, 2, (4,), seed=0)
    b = VAE(6, 2, (4,), seed=0, backend="standin")
    grads = np.random.default_rng(0).standard_normal(a.params.flat.shape).astype(np.float32)
    a.grads.flat[...] = grads
    b.grads.flat[...] = standin.asarray(grads)
    opt_a, opt_b = Adam(a.params), Adam(b.params)
    for _ in range(3):
        opt_a.step(a.grads)
        opt_b.step(b.grads)
    np.testing.assert_array_equal(backend.to_numpy(b.params.flat), a.params.flat)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        backend.use("tpu")
    with pytest.raises(ValueError, match="expected 'numpy' or 'cupy'"):
        VAE(4, 2, (3,), backend="jax")


@pytest.mark.skipif(GPU, reason="this machine has a usable GPU")
def test_asking_for_cupy_without_a_gpu_says_so():
    with pytest.raises(RuntimeError, match="cupy"):
        backend.use("cupy")
    assert backend.default_name() == "numpy"  # a failed use() leaves the default alone


@pytest.mark.skipif(GPU, reason="this machine has a usable GPU")
def test_real_cupy_without_a_gpu_is_refused_with_the_reason():
    """`import cupy` works without a GPU; the backend asks cupy.cuda.is_available() first."""
    pytest.importorskip("cupy", reason="CuPy not installed")
    with pytest.raises(RuntimeError, match=r"no usable NVIDIA GPU \(cupy.cuda.is_available"):
        VAE(4, 2, (3,), backend="cupy")
    assert backend.gpu_available() is False


def test_use_sets_the_default_for_new_models():
    try:
        backend.use("standin")
        model = VAE(4, 2, (3,))
        assert model.xp is standin and isinstance(model.params.flat, DeviceArray)
    finally:
        backend.use("numpy")
    assert VAE(4, 2, (3,)).xp is np


def test_to_numpy_and_to_device_round_trip():
    host = np.arange(6.0).reshape(2, 3)
    device = backend.to_device(host, standin)
    assert isinstance(device, DeviceArray)
    np.testing.assert_array_equal(backend.to_numpy(device), host)
    assert backend.to_numpy(host) is host  # no copy for NumPy


def test_standin_is_a_named_backend_and_gpu_helpers_are_safe_without_a_gpu():
    model = VAE(4, 2, (3,), backend="standin")
    assert model.xp is standin
    assert backend.device_name(np) == "CPU (numpy)"
    backend.synchronize(np)  # a no-op on the CPU
    assert backend.gpu_available() is GPU
