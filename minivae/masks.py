"""Missing-data masks: the convention, checks, and two ways to make masks.

**The mask convention, stated once:** a mask is a boolean array of the shape of ``x``,
``True`` = observed, ``False`` = missing. Every function that takes a mask checks it
(:func:`check_mask`). The values of ``x`` at missing entries are never read (they may hold NaN).

- :func:`mcar_mask`: missing completely at random, each entry with the same rate.
- :func:`block_mask`: one occluded rectangle per image (a hand over a digit).
- :func:`zero_fill`: ``where(mask, x, 0)``, what an encoder sees of an incomplete row.

Training on incomplete data is :func:`minivae.train.fit` with ``mask=``; the likelihoods count
observed entries only (:mod:`minivae.likelihoods`); imputation is :mod:`minivae.imputation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend
from .backend import Array
from .validation import check_positive_int, check_probability

__all__ = ["block_mask", "check_mask", "check_real_array", "mcar_mask", "zero_fill"]


def check_real_array(x: Any, name: str = "x", *, floating: bool = False) -> Any:
    """``x`` as an array of real numbers (a list or tuple is converted to NumPy).

    With ``floating``, integer arrays are refused too (a mean of them would be truncated).
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        if not isinstance(x, (list, tuple)):
            raise TypeError(f"{name} must be an array, got {type(x).__name__}")
        x = np.asarray(x)
    kind = np.dtype(str(x.dtype)).kind
    if kind not in ("f" if floating else "fiu"):
        what = "floating-point numbers" if floating else "real numbers"
        hint = "; convert it first, e.g. x.astype(np.float64)" if kind in "iub" else ""
        raise TypeError(f"{name} must hold {what}, got dtype {x.dtype}{hint}")
    return x


def check_mask(mask: Any, shape: Sequence[int], name: str = "mask") -> Any:
    """Check a mask against the data's ``shape`` and return it (a boolean array, True = observed).

    A mask must be a boolean array of exactly ``shape``, with at least one observed entry in
    every row: a row with nothing observed carries no information to impute it from.
    """
    shape = tuple(int(s) for s in shape)
    if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
        if isinstance(mask, (list, tuple)):
            mask = np.asarray(mask)
        else:
            raise TypeError(
                f"{name} must be a boolean array of shape {shape} (True = observed), "
                f"got {type(mask).__name__}"
            )
    if np.dtype(str(mask.dtype)) != np.bool_:
        raise TypeError(
            f"{name} must be a boolean array (True = observed, False = missing), got dtype "
            f"{mask.dtype}; build one with e.g. mask = ~np.isnan(x) or mcar_mask(...)"
        )
    if tuple(mask.shape) != shape:
        raise ValueError(
            f"{name} must have the shape of x {shape} (True = observed), "
            f"got shape {tuple(mask.shape)}"
        )
    if len(shape) == 2:
        xp = backend.array_module(mask)
        empty = ~xp.any(mask, axis=1)
        if bool(empty.any()):
            rows = backend.to_numpy(xp.flatnonzero(empty))[:5].tolist()
            raise ValueError(
                f"{name} has {int(empty.sum())} row(s) with no observed entry (e.g. rows {rows}); "
                "every row needs at least one observed value (True) to be imputed from"
            )
    return mask


def mcar_mask(shape: Sequence[int], missing_rate: float, seed: Any = 0) -> np.ndarray:
    """Missing completely at random: each entry is missing independently with ``missing_rate``.

    Returns a boolean array of ``shape`` (True = observed). For a 2-D shape (n, d), a row that
    would come out with nothing observed gets one entry, chosen at random, observed again, so
    the realised rate is a hair below ``missing_rate`` when that rate is close to 1.
    """
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(check_positive_int(s, "each size in shape") for s in shape)
    missing_rate = check_probability(missing_rate, "missing_rate", strict_maximum=True)
    rng = backend.generator(seed, np)
    mask = rng.random(shape) >= missing_rate
    if len(shape) == 2:
        empty = np.flatnonzero(~mask.any(axis=1))
        mask[empty, rng.integers(0, shape[1], size=empty.size)] = True
    return mask


def block_mask(
    n: int, image_shape: Sequence[int], block_size: int | Sequence[int], seed: Any = 0
) -> np.ndarray:
    """Occlude one square (or ``(bh, bw)`` rectangle) at a random place in each of n images.

    Returns a boolean array (n, h * w), flat like the images (True = observed): in image i the
    pixels of a block of ``block_size`` whose top-left corner is drawn uniformly among the
    positions where the block fits are False.
    """
    n = check_positive_int(n, "n")
    if len(tuple(image_shape)) != 2:
        raise ValueError(f"image_shape must be (h, w), got {image_shape!r}")
    h, w = (check_positive_int(s, "image_shape") for s in image_shape)
    if isinstance(block_size, (int, np.integer)):
        block_size = (int(block_size), int(block_size))
    bh, bw = (check_positive_int(s, "block_size") for s in block_size)
    if bh > h or bw > w or bh * bw == h * w:
        raise ValueError(
            f"block_size {(bh, bw)} must fit in image_shape {(h, w)} and leave a pixel observed"
        )
    rng = backend.generator(seed, np)
    tops = rng.integers(0, h - bh + 1, size=n)
    lefts = rng.integers(0, w - bw + 1, size=n)
    mask = np.ones((n, h, w), dtype=bool)
    for i in range(n):
        mask[i, tops[i] : tops[i] + bh, lefts[i] : lefts[i] + bw] = False
    return mask.reshape(n, h * w)


def zero_fill(x: Array, mask: Array) -> Array:
    """x with every missing entry set to 0: ``where(mask, x, 0)`` (also clears NaNs there).

    x: an array of real numbers (a list is converted); mask: booleans of exactly x's shape
    (:func:`check_mask`; no broadcasting, which would silently apply one row's mask to all).
    """
    x = check_real_array(x, "x")
    mask = check_mask(mask, x.shape)
    xp = backend.array_module(x, mask)  # a NumPy mask may go with CuPy data, and vice versa
    x, mask = backend.to_device(x, xp), backend.to_device(mask, xp)
    return xp.where(mask, x, 0).astype(x.dtype, copy=False)
