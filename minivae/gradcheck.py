"""Gradient checking by central finite differences, in float64.

    df/dx_i  ~=  (f(x + h e_i) - f(x - h e_i)) / (2 h)

Central differences have error O(h^2) (one-sided ones O(h)); with h = 1e-6 in float64 the
rounding error is about 1e-16 / 1e-6 = 1e-10, so a correct gradient shows a relative error
around 1e-7 or smaller, and a wrong one around 1e-2 or larger. float32 cannot tell them apart:
its rounding error alone is about 1e-7 / 1e-6 = 0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .backend import Array


def rel_error(a: Array, b: Array) -> float:
    """max |a - b| / max(|a| + |b|): 0 for equal arrays, about 1 for unrelated ones."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs equal shapes, got {a.shape} and {b.shape}")
    scale = float(np.max(np.abs(a) + np.abs(b))) if a.size else 0.0
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b))) / scale


def numerical_gradient(f: Callable[[], float], x: Array, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``f`` takes no arguments and reads ``x``, which is changed in place entry by entry and
    restored. ``x`` must be float64 (see the module docstring). Returns an array shaped like x.
    """
    if np.dtype(str(x.dtype)) != np.float64:
        raise TypeError(
            f"gradient checks need float64 arrays, got {x.dtype}: in float32 the rounding error "
            "(~1e-7 / h) swamps the difference; build the model with dtype='float64'"
        )
    grad = np.zeros(x.shape)
    if not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous so that it can be perturbed in place")
    flat = x.reshape(-1)  # a view: writing to it changes x
    for i in range(flat.size):
        old = float(flat[i])
        flat[i] = old + h
        f_plus = float(f())
        flat[i] = old - h
        f_minus = float(f())
        flat[i] = old
        grad.reshape(-1)[i] = (f_plus - f_minus) / (2 * h)
    return grad


def check_gradients(
    f: Callable[[], float],
    params: Mapping[str, Array],
    grads: Mapping[str, Array],
    h: float = 1e-6,
    names: list[str] | None = None,
) -> dict[str, float]:
    """Relative error between analytic ``grads`` and central differences of ``f``, per parameter.

    ``f()`` must recompute the loss from ``params`` (perturbed in place) with everything else fixed,
    e.g. the same ``eps``. Returns name -> rel_error; expect ~1e-7 or less when the gradient
    is right.
    """
    errors = {}
    for name in names if names is not None else list(params):
        analytic = np.array(grads[name], dtype=np.float64, copy=True)
        numeric = numerical_gradient(f, params[name], h)
        errors[name] = rel_error(analytic, numeric)
    return errors
