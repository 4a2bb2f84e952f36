"""The fused GPU kernels (minivae/accel/kernels.py), checked on a machine without a GPU.

- nvcc (when installed) compiles every kernel body as CUDA, in float32 and float64;
- real CuPy (when installed) parses every kernel's parameter lists, and, with NVRTC, writes the
  CUDA source of every kernel as the library calls it and compiles it for sm_90 (H100/H200);
- g++ runs the same bodies on the CPU behind the stand-in backend
  (minivae/testing/host_kernels.py), so the library's GPU code path runs, and its numbers are
  compared with the NumPy reference:
  exactly for the optimizers, to float rounding for the losses (exp and log1p may differ in
  the last bit between maths libraries).

On a machine with a GPU, the last tests compare CuPy with and without the kernels.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from minivae import SGD, VAE, Adam, Autoencoder, accel, backend
from minivae.accel import kernels
from minivae.kl import kl_standard_normal, kl_standard_normal_elementwise
from minivae.losses import bernoulli_nll
from minivae.reparam import reparameterize, reparameterize_backward
from minivae.testing import host_kernels, opcount
from minivae.testing.host_kernels import (
    CXX,
    NVCC,
    cuda_source,
    cupy_generated_code,
    nvrtc_compile_as_cupy,
    nvrtc_ptx,
)
from minivae.testing.standin import standin

GPU = backend.gpu_available()
DTYPES = [np.float32, np.float64]
# float rounding of results that pass through exp/log1p: a few ulps, relative
RTOL = {np.float32: 2e-6, np.float64: 1e-14}


@pytest.fixture
def fused_standin():
    """The stand-in backend with ``ElementwiseKernel``: the library takes its GPU code path."""
    if CXX is None:
        pytest.skip("no C++ compiler (g++) to run the kernel bodies on the CPU")
    with host_kernels.installed() as module:
        yield module


def calls(name: str) -> int:
    """How many times the kernel ``name`` ran on the stand-in backend."""
    kernel = kernels.compiled(standin).get(name)
    return 0 if kernel is None else kernel.calls


def host(a):
    return backend.to_numpy(a)


# ---------------------------------------------------------------------------------------------
# The sources, compiled without running
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(NVCC is None, reason="nvcc (the CUDA compiler) not installed")
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_every_kernel_compiles_as_cuda(tmp_path, ctype):
    source = tmp_path / "kernels.cu"
    source.write_text(cuda_source(list(kernels.SOURCES.values()), ctype))
    result = subprocess.run(
        [NVCC, "--ptx", "-o", str(tmp_path / "kernels.ptx"), str(source)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, f"nvcc refused the kernels:\n{result.stderr}"
    ptx = (tmp_path / "kernels.ptx").read_text()
    for name in kernels.SOURCES:
        assert f".entry minivae_{name}(" in ptx, f"kernel {name} missing from the PTX"
    if ctype == "float":  # a bare double literal (1.0 instead of (T)1) would compute in float64
        assert re.search(r"\.f64\b", ptx) is None, "a float32 kernel computes in float64"


@pytest.mark.parametrize("ctype", ["float", "double"])
def test_every_kernel_compiles_with_nvrtc_and_its_options(ctype):
    """NVRTC is what CuPy compiles with; each kernel with its own options, as CuPy passes them.

    An optimizer kernel compiled with --fmad=false has no fused multiply-add left in it (the
    precondition for giving NumPy's numbers exactly); exp and log1p may use fma internally.
    """
    pytest.importorskip("cupy", reason="CuPy not installed")
    for name, source in kernels.SOURCES.items():
        ptx = nvrtc_ptx(cuda_source([source], ctype), source.options)
        if ptx is None:
            pytest.skip("NVRTC (libnvrtc, e.g. pip install nvidia-cuda-nvrtc) not found")
        assert f".entry minivae_{name}(".encode() in ptx
        if "--fmad=false" in source.options:
            assert b"fma.rn" not in ptx, f"{name}: compiled with fused multiply-adds"
        if ctype == "float":
            assert re.search(rb"\.f64\b", ptx) is None, f"{name}: float32 kernel uses float64"


def test_real_cupy_parses_every_kernel():
    cupy = pytest.importorskip("cupy", reason="CuPy not installed")
    kernels.clear_cache(cupy)
    try:
        for name in kernels.SOURCES:  # builds cupy.ElementwiseKernel; compiling waits for a call
            kernel = kernels.get(name, cupy)
            assert isinstance(kernel, cupy.ElementwiseKernel)
            assert kernel.nin + kernel.nout == len(kernels.SOURCES[name].in_params.split(",")) + \
                len(kernels.SOURCES[name].out_params.split(","))
        assert sorted(kernels.compiled(cupy)) == sorted(kernels.SOURCES)
    finally:
        kernels.clear_cache(cupy)


def _run_every_kernel(dtype: str) -> None:
    """Each kernel called by the library as in training: a VAE step with Adam, and SGD."""
    rng = np.random.default_rng(8)
    x = (rng.random((16, 12)) < 0.4).astype(dtype)
    model = VAE(12, 3, (8,), seed=0, dtype=dtype, backend="standin")
    optimizer = Adam(model.params, lr=1e-3)
    for _ in range(2):
        _, grads = model.loss_and_grads(x)
        optimizer.step(grads)
    model.loss(x)  # evaluation: the KL without its gradients
    for momentum in (0.0, 0.9):
        params = {"w": standin.asarray(rng.standard_normal(10).astype(dtype))}
        SGD(params, lr=0.1, momentum=momentum).step(
            {"w": standin.asarray(rng.standard_normal(10).astype(dtype))})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_generates_and_nvrtc_compiles_every_kernel_as_the_library_calls_it(
        fused_standin, dtype):
    """The closest check to the device without one: for every distinct way the library calls
    each kernel (which arguments are scalars, which arrays are column slices), CuPy's own code
    generator writes the kernel and NVRTC compiles it, with CuPy's headers and each kernel's
    options, to machine code for an H100/H200 (sm_90). A body that clashes with CuPy's loop
    (its variable ``i``, ``_ind``), a parameter CuPy would type differently, or an option NVRTC
    refuses fails here, not on the first call on a GPU."""
    pytest.importorskip("cupy", reason="CuPy not installed")
    if nvrtc_ptx("", ()) is None:
        pytest.skip("NVRTC (libnvrtc, e.g. pip install nvidia-cuda-nvrtc) not found")
    _run_every_kernel(dtype)
    for name, source in kernels.SOURCES.items():
        kernel = kernels.compiled(standin).get(name)
        assert kernel is not None and kernel.signatures, f"the library never called {name}"
        for kernel_dtype, signature in kernel.signatures:
            assert kernel_dtype == dtype
            try:
                code = cupy_generated_code(source, dtype, signature)
            except (AttributeError, TypeError) as err:  # CuPy internals moved: say so
                pytest.skip(f"this CuPy's ElementwiseKernel code generator changed: {err}")
            cubin, ptx = nvrtc_compile_as_cupy(code, source.options)
            assert len(cubin) > 0 and f".entry {name}(" in ptx, name
            if "--fmad=false" in source.options:
                assert "fma.rn" not in ptx, f"{name}: compiled with fused multiply-adds"
            if dtype == "float32":
                assert re.search(r"\.f64\b", ptx) is None, f"{name}: float32 kernel uses float64"


def test_the_cupy_compile_check_can_fail(fused_standin):
    """Planted faults the check above must catch, so that its passing means something."""
    import dataclasses

    pytest.importorskip("cupy", reason="CuPy not installed")
    if nvrtc_ptx("", ()) is None:
        pytest.skip("NVRTC (libnvrtc, e.g. pip install nvidia-cuda-nvrtc) not found")
    from cupy.cuda.compiler import CompileException

    _run_every_kernel("float32")
    source = kernels.SOURCES["kl_with_grads"]
    ((_, signature),) = kernels.compiled(standin)["kl_with_grads"].signatures
    assert ("array", 2, False) in signature  # mu and logvar: column slices, a 2-D loop
    for body, message in [(source.body + " undefined_name = 1;", "undefined_name"),
                          (source.body + " _ind = 0;", "no operator")]:  # CuPy's own variable
        bad = dataclasses.replace(source, body=body)
        with pytest.raises(CompileException, match=message):
            nvrtc_compile_as_cupy(cupy_generated_code(bad, "float32", signature), bad.options)
    double_literal = dataclasses.replace(source, body=source.body.replace("(T)1", "1.0"))
    _, ptx = nvrtc_compile_as_cupy(
        cupy_generated_code(double_literal, "float32", signature), double_literal.options)
    assert re.search(r"\.f64\b", ptx), "a double literal should show as float64 in the PTX"


def test_numpy_never_uses_kernels_and_the_switch_turns_them_off(fused_standin):
    assert kernels.get("adam", np) is None
    assert kernels.get("adam", fused_standin) is not None
    previous = kernels.set_enabled(False)
    try:
        assert previous is True and kernels.get("adam", fused_standin) is None
    finally:
        kernels.set_enabled(previous)
    # the switch of every fast path turns the kernels off too, and leaves their own switch alone
    with accel.disabled():
        assert kernels.get("adam", fused_standin) is None and kernels.enabled()
    assert kernels.get("adam", fused_standin) is not None


def test_the_kernel_cache_is_public_and_installing_host_kernels_leaves_nothing_behind():
    if CXX is None:
        pytest.skip("no C++ compiler (g++) to run the kernel bodies on the CPU")
    assert kernels.compiled(standin) == {}
    with host_kernels.installed():
        kernel = kernels.get("sgd", standin)
        assert kernels.compiled(standin) == {"sgd": kernel}
        assert kernels.get("sgd", standin) is kernel  # made once, then cached
        with pytest.raises(RuntimeError, match="already installed"):
            with host_kernels.installed():
                pass
    assert kernels.compiled(standin) == {} and not hasattr(standin, "ElementwiseKernel")
    assert kernels.get("sgd", standin) is None


def test_environment_variable_turns_kernels_off():
    code = "from minivae.accel import kernels; print(kernels.enabled())"
    for value, expected in (("0", "False"), ("no", "False"), ("1", "True")):
        env = {**os.environ, "MINIVAE_FUSED_KERNELS": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == expected, (value, out.stderr)


# ---------------------------------------------------------------------------------------------
# Each kernel against the plain code it replaces, through the library's own functions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_nll_kernel_matches_numpy(fused_standin, dtype):
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((33, 17)) * 6).astype(dtype)
    logits[0, :4] = [1e4, -1e4, 0.0, -0.0]  # saturated and zero logits
    x = (rng.random((33, 17)) < 0.5).astype(dtype)
    x[1] = rng.random(17)  # probabilities, not only 0/1
    loss_ref, dlogits_ref = bernoulli_nll(logits, x)
    loss, dlogits = bernoulli_nll(standin.asarray(logits), standin.asarray(x))
    assert calls("bernoulli_nll") == 1
    assert loss == pytest.approx(loss_ref, rel=RTOL[dtype])
    assert host(dlogits).dtype == dtype
    np.testing.assert_allclose(host(dlogits), dlogits_ref, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_and_reparameterization_kernels_match_numpy(fused_standin, dtype):
    rng = np.random.default_rng(1)
    h = rng.standard_normal((20, 10)).astype(dtype)
    mu, logvar = h[:, :5], h[:, 5:]  # column slices of one array, as in the VAE
    eps = rng.standard_normal((20, 5)).astype(dtype)
    dz = rng.standard_normal((20, 5)).astype(dtype)
    h_dev, eps_dev, dz_dev = (standin.asarray(a) for a in (h, eps, dz))
    mu_dev, logvar_dev = h_dev[:, :5], h_dev[:, 5:]

    def close(got, expected):
        np.testing.assert_allclose(host(got), expected, rtol=RTOL[dtype], atol=1e-300)

    close(kl_standard_normal_elementwise(mu_dev, logvar_dev),
          kl_standard_normal_elementwise(mu, logvar))
    kl_ref, dmu_ref, dlogvar_ref = kl_standard_normal(mu, logvar)
    kl, dmu, dlogvar = kl_standard_normal(mu_dev, logvar_dev)
    assert kl == pytest.approx(kl_ref, rel=RTOL[dtype])
    close(dmu, dmu_ref)
    close(dlogvar, dlogvar_ref)
    z_ref, cache_ref = reparameterize(mu, logvar, eps)
    z, cache = reparameterize(mu_dev, logvar_dev, eps_dev)
    close(z, z_ref)
    close(cache[0], cache_ref[0])
    for got, expected in zip(reparameterize_backward(dz_dev, cache),
                             reparameterize_backward(dz, cache_ref), strict=True):
        close(got, expected)
    assert [calls(n) for n in ("kl_elementwise", "kl_with_grads", "reparameterize",
                               "reparam_backward")] == [1, 1, 1, 1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_kernel_gives_numpys_numbers_exactly(fused_standin, dtype):
    """Through 200 steps with flushes of the subnormal range (small betas flush every 24)."""
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(3000).astype(dtype)
    ref = {"w": p0.copy()}
    dev = {"w": standin.asarray(p0)}
    kwargs = dict(lr=1e-2, betas=(0.5, 0.6), eps=1e-8)
    opt_ref, opt_dev = Adam(ref, **kwargs), Adam(dev, **kwargs)
    assert opt_ref.flush_every == 24
    for step in range(200):
        g = rng.standard_normal(3000).astype(dtype)
        if step > 0:
            g[:1000] = 0  # gradients that stay 0: their m and v decay towards subnormals
        opt_ref.step({"w": g})
        opt_dev.step({"w": standin.asarray(g)})
    assert calls("adam") == 200
    np.testing.assert_array_equal(host(dev["w"]), ref["w"])
    np.testing.assert_array_equal(host(opt_dev.m[0]), opt_ref.m[0])
    np.testing.assert_array_equal(host(opt_dev.v[0]), opt_ref.v[0])
    if dtype is np.float32:  # 0.5**200 is below float32's subnormal threshold, not float64's
        assert (opt_ref.m[0][:1000] == 0).all()  # the flush did happen


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_kernels_give_numpys_numbers_exactly(fused_standin, momentum):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(500).astype(np.float32)
    ref, dev = {"w": p0.copy()}, {"w": standin.asarray(p0)}
    opt_ref, opt_dev = SGD(ref, lr=0.1, momentum=momentum), SGD(dev, lr=0.1, momentum=momentum)
    for _ in range(20):
        g = rng.standard_normal(500).astype(np.float32)
        opt_ref.step({"w": g})
        opt_dev.step({"w": standin.asarray(g)})
    assert calls("sgd_momentum" if momentum else "sgd") == 20
    np.testing.assert_array_equal(host(dev["w"]), ref["w"])


# ---------------------------------------------------------------------------------------------
# Whole models on the kernel path
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vae_loss_and_grads_on_the_kernel_path_match_numpy(fused_standin, dtype):
    rng = np.random.default_rng(4)
    x = (rng.random((24, 30)) < 0.4).astype(dtype)
    eps = rng.standard_normal((24, 3)).astype(dtype)
    ref = VAE(30, 3, (16,), seed=1, dtype=dtype)
    model = VAE(30, 3, (16,), seed=1, dtype=dtype, backend="standin")
    terms_ref, grads_ref = ref.loss_and_grads(x, eps)
    terms, grads = model.loss_and_grads(x, eps)
    for name in ("bernoulli_nll", "kl_with_grads", "reparameterize", "reparam_backward"):
        assert calls(name) == 1, f"the VAE did not run the {name} kernel"
    assert calls("kl_elementwise") == 0  # the KL and its gradients come from one kernel
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for key in terms_ref:
        assert terms[key] == pytest.approx(terms_ref[key], rel=rtol), key
    np.testing.assert_allclose(host(grads.flat), grads_ref.flat, rtol=rtol, atol=rtol * 1e-2)


def test_a_training_step_reads_back_only_its_loss_terms(fused_standin):
    """On a GPU, reading a number back (float(), bool()) makes the CPU wait for the GPU, so a
    training step reads only the three numbers it reports (recon, the KL penalty, the KL) and
    the optimizer none; the finite-gradient check of ``fit`` adds one. A regression guard for
    GPU speed: a new read-back in the step fails here."""
    model = VAE(30, 3, (16,), seed=1, backend="standin")
    optimizer = Adam(model.params, lr=1e-3)
    x = standin.asarray((np.random.default_rng(4).random((24, 30)) < 0.4).astype(np.float32))
    batch = model.prepare(x)
    with opcount.counting() as count:
        _, grads = model.loss_and_grads(batch)  # checked data: the checks read back, not the step
    assert len(count.reads) <= 3, (
        f"the loss and gradients read {len(count.reads)} numbers back: {count.reads}")
    assert count.ops["kernel bernoulli_nll"] == 1  # the count sees the fused kernels too
    optimizer.step(grads)  # the first step also makes Adam's state (two xp.zeros_like)
    with opcount.counting() as count:
        optimizer.step(grads)
    assert count.reads == [], f"the Adam step read numbers back: {count.reads}"
    assert dict(count.ops) == {"kernel adam": 1}, count.ops  # the whole update: one launch


def test_training_on_the_kernel_path_follows_numpy(fused_standin):
    from minivae import fit

    x = (np.random.default_rng(5).random((64, 20)) < 0.3).astype(np.float32)
    losses = []
    for name in ("numpy", "standin"):
        model = VAE(20, 2, (12,), seed=2, backend=name)
        model.rng = np.random.default_rng(7)  # one generator kind for both, so eps agree
        history = fit(model, x, x, epochs=4, batch_size=16, progress=False)
        losses.append(history.train["loss"])
    assert calls("adam") == 16
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    ae = Autoencoder(20, 2, (12,), loss="bernoulli", seed=0, backend="standin")
    fit(ae, x, epochs=1, batch_size=16, progress=False)
    assert calls("bernoulli_nll") > 16  # the autoencoder's loss ran on the kernel too


# ---------------------------------------------------------------------------------------------
# On a real GPU: CuPy with the kernels against CuPy without them and against NumPy
# ---------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="CuPy with a usable NVIDIA GPU not found")
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_cupy_kernels_match_plain_cupy_and_numpy(likelihood):
    import cupy

    rng = np.random.default_rng(6)
    x = (rng.random((128, 784)) < 0.3).astype(np.float32)
    eps = rng.standard_normal((128, 16)).astype(np.float32)
    results = {}
    for name, fused in (("numpy", True), ("cupy-plain", False), ("cupy-fused", True)):
        previous = kernels.set_enabled(fused)
        try:
            model = VAE(784, 16, (256,), likelihood=likelihood, seed=0,
                        backend="numpy" if name == "numpy" else "cupy")
            terms, grads = model.loss_and_grads(x, eps)
            results[name] = (terms, backend.to_numpy(grads.flat))
        finally:
            kernels.set_enabled(previous)
    assert kernels.get("bernoulli_nll", cupy) is not None
    for name in ("cupy-plain", "cupy-fused"):
        for key in ("loss", "recon", "kl"):
            assert results[name][0][key] == pytest.approx(results["numpy"][0][key], rel=1e-5)
        np.testing.assert_allclose(results[name][1], results["numpy"][1], rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="CuPy with a usable NVIDIA GPU not found")
def test_cupy_adam_kernel_gives_numpys_numbers_exactly():
    import cupy

    rng = np.random.default_rng(7)
    p0 = rng.standard_normal(100_000).astype(np.float32)
    ref, dev = {"w": p0.copy()}, {"w": cupy.asarray(p0)}
    opt_ref, opt_dev = Adam(ref, lr=1e-2), Adam(dev, lr=1e-2)
    for _ in range(70):  # past the first flush (step 64)
        g = rng.standard_normal(100_000).astype(np.float32)
        opt_ref.step({"w": g})
        opt_dev.step({"w": cupy.asarray(g)})
    np.testing.assert_array_equal(backend.to_numpy(dev["w"]), ref["w"])
