"""Shared helpers of the core-library tests: finite-difference checks and measured-error reports.

Every check prints one line ``FD-ERR <what> <error>`` or ``TORCH-ERR <what> <error>``; run the
tests with ``-s`` to see the errors that were measured (``grep ERR``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from minivae.gradcheck import check_gradients


def report(kind: str, what: str, err: float) -> float:
    """Print ``<kind> <what> <err>`` (kind: FD-ERR or TORCH-ERR) and return err."""
    print(f"{kind} {what} {err:.3e}")
    return err


def fd_max_error(
    what: str,
    f: Callable[[], float],
    arrays: Mapping[str, np.ndarray],
    analytic: Mapping[str, np.ndarray],
    h: float = 1e-6,
) -> float:
    """Largest relative error between ``analytic`` and central differences of ``f`` over ``arrays``.

    ``f()`` recomputes the scalar from ``arrays`` (float64, perturbed in place entry by entry).
    """
    for name, a in arrays.items():
        assert a.dtype == np.float64, f"{name}: finite differences need float64, got {a.dtype}"
    errors = check_gradients(f, arrays, analytic, h=h)
    worst = max(errors, key=errors.get)
    return report("FD-ERR", f"{what} (worst: {worst})", errors[worst])


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.1):
    """Normal draws with |x| >= margin, so that kinks (ReLU at 0) are not straddled by x +- h."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin + x, x)
