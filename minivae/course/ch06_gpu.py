"""The graded checks of problem set 06 (the GPU), with the reference maths they compare with and
the usual slips they recognise.

Each exercise is checked twice: on NumPy (are the numbers right?) and on
:mod:`minivae.testing.standin`, a strict stand-in for CuPy that raises ``StrayNumPyCall`` on any
NumPy call on its arrays — exactly where CuPy would fail::

    from minivae.course import ch06_gpu as ch06
    ch06.check_softplus(softplus, x)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..kl import kl_standard_normal
from ..layers import sigmoid
from ..layers import softplus as reference_softplus
from ..testing.standin import StrayNumPyCall, standin
from .ch00_backprop import adam_reference
from .feedback import ExerciseError, call, check_close, check_shape, check_type, unpack

Array = np.ndarray

_STRAY = (
    "On a GPU this fails: take xp = backend.array_module(x) and write xp.exp, xp.log1p, ... "
    "instead of np.exp, np.log1p, ..."
)


def on_standin(fn: Callable, *arrays: Array, mutates: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """Run ``fn`` on stand-in device copies of ``arrays``; explain a stray NumPy call."""
    device = [standin.asarray(a) for a in arrays]
    return call(
        fn,
        *device,
        mutates=mutates,
        explain={StrayNumPyCall: f"It called NumPy on device data. {_STRAY}"},
        **kwargs,
    )


class _Watched(np.ndarray):
    """An ndarray that counts the writes into it (p -= ..., p[...] = ..., out=p)."""

    writes = 0

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out", ())
        if any(o is self for o in out):
            self.writes += 1
        inputs = tuple(np.asarray(a) if isinstance(a, _Watched) else a for a in inputs)
        if out:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, _Watched) else o for o in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        return self if out and out[0] is self else result

    def __setitem__(self, key: Any, value: Any) -> None:
        self.writes += 1
        np.asarray(self)[key] = value


def _watched(a: Array) -> _Watched:
    w = np.array(a, copy=True).view(_Watched)
    w.writes = 0
    return w


def _on_device(name: str, value: Any) -> None:
    if backend.array_module(value) is not standin:
        raise ExerciseError(
            f"{name} came back as {type(value).__name__}, not a device array: keep the result on "
            "the device of the input (use xp, and no backend.to_numpy, .get() or np.asarray)"
        )


# ----------------------------------------------------------------------------- 1. softplus


def check_softplus(fn: Callable, x: Array) -> Array:
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), finite for |x| = 1e4, on NumPy and the device."""
    expected = reference_softplus(x)
    got = call(fn, x)
    check_type("softplus(x)", got, np.ndarray)
    check_shape("softplus(x)", got, x.shape)
    arr = np.asarray(got, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        big = np.abs(x) > 700
        raise ExerciseError(
            f"softplus(x) is not finite at x = {x[~np.isfinite(arr)][:3].tolist()}: exp of a "
            "number above ~709 overflows"
            + (" (these are the large |x|)" if np.all(big[~np.isfinite(arr)]) else "")
            + ". Use the stable form max(x, 0) + log1p(exp(-|x|)), where exp only sees "
            "non-positive numbers"
        )
    check_close(
        "softplus(x)",
        got,
        expected,
        rtol=1e-12,
        atol=1e-12,
        common_hints=False,
        hints=[
            (np.maximum(x, 0), "this is max(x, 0), the ReLU: add log1p(exp(-|x|))"),
            (
                np.log1p(np.exp(-np.abs(x))),
                "max(x, 0) is missing: softplus(x) = max(x, 0) + log1p(exp(-|x|))",
            ),
            (
                np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))) / np.log(2),
                "bits: log2 where the natural log belongs",
            ),
            (sigmoid(x), "this is the sigmoid, the derivative of softplus"),
            (
                np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x))),
                "this is softplus(-x): max(x, 0), not max(-x, 0)",
            ),
        ],
    )
    device_out = on_standin(fn, x)
    _on_device("softplus(x) on the stand-in", device_out)
    check_close(
        "softplus(x) on the stand-in",
        backend.to_numpy(device_out),
        expected,
        rtol=1e-12,
        atol=1e-12,
    )
    return got


# ----------------------------------------------------------------------------- 2. KL


def check_kl_and_grads(fn: Callable, mu: Array, logvar: Array) -> float:
    """(kl, dmu, dlogvar) as minivae.kl, 0 for q = p, and on the device: kl a float, gradients
    on the device."""
    batch, latent = mu.shape
    kl_ref, dmu_ref, dlogvar_ref = kl_standard_normal(mu, logvar)
    var = np.exp(logvar)
    per_entry = -0.5 * (1 + logvar - mu**2 - var)
    names = ["kl", "dmu", "dlogvar"]
    kl, dmu, dlogvar = unpack(call(fn, mu, logvar), names, "kl_and_grads(mu, logvar)")
    check_type("kl", kl, float)
    check_close(
        "kl",
        kl,
        kl_ref,
        rtol=1e-10,
        sizes={"batch": batch, "latent": latent},
        hints=[
            (
                -kl_ref,
                "your KL has the wrong sign: KL = -1/2 * sum(1 + logvar - mu^2 - exp(logvar))",
            ),
            (2 * kl_ref, "your KL is twice too large: the factor 1/2 is missing"),
            (
                float(per_entry.mean()),
                "your KL is averaged over the latents: it is a SUM over "
                "them, then a mean over the batch",
            ),
            (
                float(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(0.5 * logvar))) / batch,
                "this uses exp(0.5 * logvar), the std, where the variance exp(logvar) belongs",
            ),
        ],
    )
    check_shape("dmu", dmu, mu.shape)
    check_close(
        "dmu",
        dmu,
        dmu_ref,
        rtol=1e-10,
        sizes={"batch": batch, "latent": latent},
        hints=[(mu, "dmu is missing the 1/batch: dmu = mu / batch")],
    )
    check_shape("dlogvar", dlogvar, logvar.shape)
    check_close(
        "dlogvar",
        dlogvar,
        dlogvar_ref,
        rtol=1e-10,
        sizes={"batch": batch, "latent": latent},
        hints=[
            (
                dlogvar_ref * 2,
                "dlogvar is twice too large: d/dlogvar of "
                "1/2 (exp(logvar) - logvar) is 1/2 (exp(logvar) - 1)",
            ),
            (
                0.5 * (np.exp(0.5 * logvar) - 1) / batch,
                "dlogvar uses exp(0.5 * logvar), the std: "
                "the derivative of exp(logvar) is "
                "exp(logvar)",
            ),
        ],
    )
    zeros = np.zeros((4, 2))
    kl0 = unpack(call(fn, zeros, zeros), names, "kl_and_grads(mu, logvar)")[0]
    check_close("KL of N(0, I) from N(0, I)", kl0, 0.0, atol=1e-12)
    device_kl, device_dmu, device_dlogvar = unpack(
        on_standin(fn, mu, logvar), names, "kl_and_grads(mu, logvar) on the stand-in"
    )
    if backend.array_module(device_kl) is standin:
        raise ExerciseError(
            "kl is still a device array on the stand-in: return a Python float, float(...) of "
            "the sum (one read-back per call)"
        )
    check_close("kl on the stand-in", float(device_kl), kl_ref, rtol=1e-10)
    _on_device("dmu on the stand-in", device_dmu)
    _on_device("dlogvar on the stand-in", device_dlogvar)
    check_close(
        "dlogvar on the stand-in", backend.to_numpy(device_dlogvar), dlogvar_ref, rtol=1e-10
    )
    return kl


# ----------------------------------------------------------------------------- 3. in-place Adam


def check_adam_step(
    fn: Callable,
    p0: Array,
    gradients: list[Array],
    lr: float = 0.1,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> Array:
    """Each step from the reference's p, m, v: p, m and v updated in place to Adam's values, g
    unchanged, None returned; then the whole run on the stand-in."""
    settings = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps}
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(gradients, start=1):
        p_ref, m_ref, v_ref = adam_reference(p, g, m, v, t, **settings)
        slips = [
            (
                adam_reference(p, g, m, v, t, **settings, correct_m=False, correct_v=False)[0],
                "p is off: the bias corrections 1 - beta1**t and 1 - beta2**t are missing",
            ),
            (
                adam_reference(p, g, m, v, t, **settings, correct_m=False)[0],
                "p is off: the bias correction of the first moment, 1 - beta1**t, is missing",
            ),
            (
                adam_reference(p, g, m, v, t, **settings, correct_v=False)[0],
                "p is off: the bias correction of the second moment, 1 - beta2**t, is missing",
            ),
            (
                adam_reference(p, g, m, v, t, **settings, square_root=False)[0],
                "p is off: the denominator needs the square root of v, sqrt(v)",
            ),
            (
                adam_reference(p, g, m, v, t, **settings, eps_inside=True)[0],
                "eps is inside the square root: it is added after, sqrt(v_hat) + eps",
            ),
            (2 * p - p_ref, "p moved uphill: the update subtracts the step, p -= ..."),
            (
                p - (p - p_ref) * 1e-3 / lr,
                f"lr is ignored: the step is lr = {lr:g} times m_hat / (sqrt(v_hat) + eps)",
            ),
        ]
        p_new, m_new, v_new = _watched(p), m.copy(), v.copy()
        result = call(
            fn,
            p_new,
            g,
            m_new,
            v_new,
            t,
            **settings,
            mutates=("p", "m", "v"),
            explain={StrayNumPyCall: _STRAY},
        )
        if result is not None:
            what = "an array" if isinstance(result, np.ndarray) else type(result).__name__
            raise ExerciseError(
                f"adam_step returned {what}: it must update p, m and v in place and return None"
            )
        when = f"after step t = {t}"
        writes, p_new = p_new.writes, np.asarray(p_new)
        if np.array_equal(p_new, p) and writes:
            raise ExerciseError(
                f"p was written in place but did not change at step t = {t}: the step is 0. Is "
                "the denominator infinite? At the first step t = 1, so the bias corrections "
                "are 1 - beta1**1 and 1 - beta2**1 (beta**(t - 1) = 1 divides by 0)"
            )
        if np.array_equal(p_new, p):
            raise ExerciseError(
                "p did not change: update it in place (p -= ...), not with p = p - ... (that "
                "rebinds a local name and leaves the caller's array as it was)"
            )
        if np.array_equal(m_new, m) and not np.array_equal(m_ref, m):
            raise ExerciseError(
                "m did not change: update the moment in place (m *= beta1; m += (1 - beta1) * g), "
                "not with m = ..., or the next step starts from the old m"
            )
        if np.array_equal(v_new, v) and not np.array_equal(v_ref, v):
            raise ExerciseError(
                "v did not change: update the moment in place (v *= beta2; "
                "v += (1 - beta2) * g * g), not with v = ..."
            )
        check_close(
            f"m {when}",
            m_new,
            m_ref,
            rtol=1e-10,
            hints=[((1 - beta1) * m + beta1 * g, "m has beta1 and 1 - beta1 swapped")],
        )
        check_close(
            f"v {when}",
            v_new,
            v_ref,
            rtol=1e-10,
            hints=[(beta2 * v + (1 - beta2) * g, "v averages g; it should average g * g")],
        )
        if t == 1 and not np.all(np.isfinite(p_new)):
            raise ExerciseError(
                "p after step t = 1 is not finite: at the first step t = 1, so the bias "
                "corrections are 1 - beta1**1 and 1 - beta2**1 (beta**(t - 1) = 1 divides by 0)"
            )
        check_close(f"p {when}", p_new, p_ref, rtol=1e-9, atol=1e-12, hints=slips)
        p, m, v = p_ref, m_ref, v_ref
    # the whole run on the stand-in: every step on device arrays
    device = [standin.asarray(a) for a in (p0, np.zeros_like(p0), np.zeros_like(p0))]
    for t, g in enumerate(gradients, start=1):
        call(
            fn,
            device[0],
            standin.asarray(g),
            device[1],
            device[2],
            t,
            **settings,
            mutates=("p", "m", "v"),
            explain={StrayNumPyCall: f"It called NumPy on device data. {_STRAY}"},
        )
    check_close("p on the stand-in", backend.to_numpy(device[0]), p, rtol=1e-9)
    return p
