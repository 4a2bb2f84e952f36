"""Fused GPU kernels: one pass over memory where NumPy-style code makes a dozen.

On a GPU every NumPy-style operation (``xp.exp(a)``, ``a * b``, ``a + b``) is one kernel launch
and one pass over memory. The Bernoulli loss and its gradient take 14 of them, an Adam step 13;
at this course's array sizes a launch costs more than its arithmetic. CuPy's
``ElementwiseKernel`` compiles a few lines of CUDA C, run once per entry, into one kernel. Each
kernel below is one equation that the library already writes in NumPy-style code; that plain
code stays the reference, and the library's functions use the kernel instead when it exists:

- ``bernoulli_nll``: softplus(l) - x l and (sigmoid(l) - x) / batch (losses.bernoulli_nll);
- ``kl_elementwise``: -1/2 (1 + logvar - mu^2 - exp(logvar)) (kl.kl_standard_normal_elementwise);
- ``kl_with_grads``: the same, with dmu and dlogvar (kl.kl_standard_normal_with_grads);
- ``reparameterize``: std = exp(logvar / 2), z = mu + std eps (reparam.reparameterize);
- ``reparam_backward``: dlogvar = dz eps std / 2 (reparam.reparameterize_backward);
- ``adam``, ``sgd``, ``sgd_momentum``: the optimizer updates, in place (optim.Adam, optim.SGD).

They are used by array modules that offer ``ElementwiseKernel`` (CuPy; NumPy has none, so the
CPU never sees them), while :func:`enabled` and the switch of all fast paths
(:func:`minivae.accel.enabled`) are both true. ``MINIVAE_FUSED_KERNELS=0`` in the environment or
``set_enabled(False)`` turns the kernels off, for example to measure what they buy
(``benchmarks/bench_gpu.py`` times both); ``MINIVAE_ACCEL=0`` turns off every fast path.
:func:`compiled` lists the kernel objects made so far, :func:`clear_cache` forgets them.

The optimizer kernels are compiled with ``--fmad=false``: without fused multiply-adds, each
entry goes through the same correctly rounded float operations as the NumPy update, so a CuPy
Adam step should give the NumPy step's numbers exactly (a GPU test checks it). The loss kernels
call ``exp`` and ``log1p``, whose last bit may differ between the GPU's maths library and
NumPy's: they agree to float rounding.

How they are checked without a GPU (``tests/library/test_kernels.py``): every source is compiled as
CUDA by ``nvcc`` when it is installed, and run on the CPU by compiling the same body as C++
with ``g++`` behind the stand-in backend, so the library's calls of these kernels run and are
compared with the NumPy reference; with real CuPy installed, CuPy parses every parameter list,
and for each way the library calls a kernel, CuPy's own code generator writes it and NVRTC
compiles it for an H100/H200 (sm_90) with CuPy's headers and the kernel's options.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

from . import _switch_from_environment
from . import enabled as _accel_enabled


@dataclass(frozen=True)
class KernelSource:
    """The parts of a CuPy ``ElementwiseKernel``: parameter lists, the CUDA C body, options.

    ``in_params``/``out_params`` are comma-separated ``"<type> <name>"`` pairs; ``T`` is the
    dtype of the arrays passed (float32 or float64), and a Python number given for a ``T``
    parameter is converted to it. The body runs once per entry: each array parameter names that
    entry, outputs are written in place (an output passed in is updated, a missing one is
    allocated).
    """

    name: str
    in_params: str
    out_params: str
    body: str
    options: tuple[str, ...] = field(default=())


# The bodies are CUDA C. `(T)1` is 1 in the kernel's float type: a plain `1.0` is a double
# and would make float32 kernels compute in float64. Names starting with `_`, `i` and `n` are
# CuPy's own, so none is used here.
SOURCES: dict[str, KernelSource] = {
    s.name: s
    for s in (
        KernelSource(
            "bernoulli_nll",
            "T logits, T x, T batch",
            "T loss, T dlogits",
            """
            // e = exp(-|l|), in (0, 1]: softplus and sigmoid from one exp, stable for any l
            const T e = exp(-fabs(logits));
            const T relu = logits > 0 ? logits : (T)0;
            loss = (relu + log1p(e)) - x * logits;        // softplus(l) - x * l
            const T sigmoid = (logits >= 0 ? (T)1 : e) / (e + (T)1);
            dlogits = (sigmoid - x) / batch;
            """,
        ),
        KernelSource(
            "kl_elementwise",
            "T mu, T logvar",
            "T kl",
            "kl = (T)-0.5 * ((((T)1 + logvar) - mu * mu) - exp(logvar));",
        ),
        KernelSource(
            "kl_with_grads",
            "T mu, T logvar, T batch",
            "T kl, T dmu, T dlogvar",
            """
            const T var = exp(logvar);
            kl = (T)-0.5 * ((((T)1 + logvar) - mu * mu) - var);
            dmu = mu / batch;
            dlogvar = ((T)0.5 * (var - (T)1)) / batch;
            """,
        ),
        KernelSource(
            "reparameterize",
            "T mu, T logvar, T eps",
            "T z, T stddev",
            """
            stddev = exp((T)0.5 * logvar);
            z = mu + stddev * eps;
            """,
        ),
        KernelSource(
            "reparam_backward",
            "T dz, T eps, T stddev",
            "T dlogvar",
            "dlogvar = (dz * eps) * ((T)0.5 * stddev);",
        ),
        KernelSource(
            "adam",
            "T g, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, "
            "T step_size, T sqrt_bias2, T adam_eps, T m_floor, T v_floor",
            "T p, T m, T v",
            """
            m = m * beta1 + g * one_minus_beta1;
            v = v * beta2 + (g * g) * one_minus_beta2;
            p = p - (m / (sqrt(v) / sqrt_bias2 + adam_eps)) * step_size;
            // keep the state out of the subnormal range (optim.subnormal_threshold);
            // the floors are 0 on the steps that do not flush
            if (fabs(m) < m_floor) m = 0;
            if (v < v_floor) v = 0;
            """,
            options=("--fmad=false",),
        ),
        KernelSource("sgd", "T g, T lr", "T p", "p = p - g * lr;", options=("--fmad=false",)),
        KernelSource(
            "sgd_momentum",
            "T g, T lr, T momentum",
            "T p, T velocity",
            """
            velocity = velocity * momentum + g;
            p = p - velocity * lr;
            """,
            options=("--fmad=false",),
        ),
    )
}

_enabled = _switch_from_environment("MINIVAE_FUSED_KERNELS")
_compiled: dict[tuple[int, str], Any] = {}


def enabled() -> bool:
    """The kernels' own switch: whether the library uses fused kernels on array modules that can
    compile them (while :func:`minivae.accel.enabled` is true too)."""
    return _enabled


def set_enabled(on: bool) -> bool:
    """Turn the fused kernels on or off (process-wide); returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(on)
    return previous


def get(name: str, xp: types.ModuleType) -> Any | None:
    """The kernel ``name`` compiled for the array module ``xp``, or None to use plain code.

    None when ``xp`` cannot compile kernels (NumPy), or fused kernels or all fast paths are
    turned off. CuPy compiles a kernel at its first call and caches it on disk; this caches the
    object (see :func:`compiled`).
    """
    if not (_enabled and _accel_enabled()):
        return None
    make = getattr(xp, "ElementwiseKernel", None)
    if make is None:
        return None
    key = (id(xp), name)
    kernel = _compiled.get(key)
    if kernel is None:
        source = SOURCES[name]
        kernel = make(
            source.in_params, source.out_params, source.body, "minivae_" + source.name,
            options=source.options,
        )
        _compiled[key] = kernel
    return kernel


def compiled(xp: types.ModuleType) -> dict[str, Any]:
    """The kernel objects :func:`get` has made for the array module ``xp`` so far, by name.

    A new dict (changing it changes no cache). Kernels made by the CPU test double
    (:mod:`minivae.testing.host_kernels`) count their calls in ``kernel.calls``: tests and
    ``benchmarks/step_ops.py`` read them here.
    """
    return {name: kernel for (module_id, name), kernel in _compiled.items() if module_id == id(xp)}


def clear_cache(xp: types.ModuleType | None = None) -> None:
    """Forget the kernel objects made for ``xp`` (None: for every module); the next :func:`get`
    makes new ones, with whatever ``xp.ElementwiseKernel`` is then (tests install their own)."""
    for key in [key for key in _compiled if xp is None or key[0] == id(xp)]:
        del _compiled[key]
