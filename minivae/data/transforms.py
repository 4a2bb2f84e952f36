"""The few transforms a VAE needs before training: a seeded split, binarize, scale, standardize.

- ``train_test_split``: a seeded split of one or more arrays along their first axis.
- ``binarize``, ``scale_to_unit``, ``standardize``: shape-preserving transforms.

Everything returned is NumPy; move it to a GPU with the backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..validation import all_finite

__all__ = ["binarize", "scale_to_unit", "standardize", "train_test_split"]


def train_test_split(
    *arrays: Any, test_fraction: float = 0.2, seed: int | None = 0, stratify: Any = None
) -> list[np.ndarray]:
    """Split arrays along their first axis into a random train part and test part.

    The same permutation (drawn from ``numpy.random.default_rng(seed)``) is applied to every
    array, so rows stay aligned (images with their labels). The test part has
    ``round(test_fraction * n)`` rows, at least 1 and at most n - 1.

    With ``stratify=y`` (labels, shape (n,)) the split is made class by class: each class c with
    n_c rows puts ``round(test_fraction * n_c)`` of them (at least 1 and at most n_c - 1) in the
    test part, so both parts keep the classes' proportions. Each part is then shuffled, so a
    data set sorted by class (such as :func:`~minivae.data.load_mnist_5k`) comes out mixed.

    Parameters
    ----------
    *arrays : arrays of shape (n, ...), all with the same n >= 2
    test_fraction : float in (0, 1)
    seed : int or None
        The same seed always gives the same split.
    stratify : None or array of shape (n,)
        Class labels (any values that ``numpy.unique`` sorts) to keep in proportion; every
        class needs at least 2 rows.

    Returns
    -------
    list ``[a_train, a_test, b_train, b_test, ...]``: for each input, its train then its test
    part, so ``x_train, x_test = train_test_split(x)`` and
    ``x_train, x_test, y_train, y_test = train_test_split(x, y)``.
    """
    if not arrays:
        raise TypeError("train_test_split needs at least one array, got none")
    if isinstance(test_fraction, (bool, np.bool_)) or not isinstance(
        test_fraction, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    converted = []
    for i, a in enumerate(arrays):
        arr = np.asarray(a)
        if arr.ndim == 0:
            raise ValueError(f"array {i} is a scalar; expected an array of shape (n, ...)")
        converted.append(arr)
    lengths = [a.shape[0] for a in converted]
    if len(set(lengths)) != 1:
        shapes = ", ".join(str(tuple(a.shape)) for a in converted)
        raise ValueError(
            f"all arrays must have the same length along the first axis, got shapes {shapes}"
        )
    n = lengths[0]
    if n < 2:
        raise ValueError(f"need at least 2 rows to split into train and test, got {n}")
    rng = np.random.default_rng(seed)
    if stratify is None:
        n_test = min(max(int(round(float(test_fraction) * n)), 1), n - 1)
        order = rng.permutation(n)
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        train_idx, test_idx = _stratified_indices(stratify, n, float(test_fraction), rng)
    out: list[np.ndarray] = []
    for a in converted:
        out.extend([a[train_idx], a[test_idx]])
    return out


def _stratified_indices(
    stratify: Any, n: int, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices with each class split in proportion, both parts shuffled."""
    labels = np.asarray(stratify)
    if labels.shape != (n,):
        raise ValueError(
            f"stratify must hold one label per row, shape ({n},), got shape {labels.shape}"
        )
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        lonely = classes[counts < 2].tolist()
        raise ValueError(
            f"stratify: every class needs at least 2 rows to appear in train and test, "
            f"classes {lonely} have 1"
        )
    train_parts, test_parts = [], []
    for c, n_c in enumerate(counts):
        rows = rng.permutation(np.flatnonzero(inverse == c))
        n_test = min(max(int(round(test_fraction * n_c)), 1), int(n_c) - 1)
        test_parts.append(rows[:n_test])
        train_parts.append(rows[n_test:])
    # shuffle each part: otherwise its rows would come class by class
    return rng.permutation(np.concatenate(train_parts)), rng.permutation(np.concatenate(test_parts))


def _check_float_array(x: Any, name: str = "x") -> np.ndarray:
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x, dtype=np.float64)
        else:
            raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    # CuPy arrays (e.g. a model's samples) are copied to the host; NumPy refuses them implicitly
    x = np.asarray(x) if backend.array_module(x) is np else backend.to_numpy(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); need at least one value")
    if not all_finite(x):
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite values; data must be finite")
    return x


def _float_dtype(x: np.ndarray) -> np.dtype:
    """float64 stays float64; everything else (float32, float16, integers) becomes float32."""
    return np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)


def binarize(
    x: Any, threshold: float = 0.5, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Turn grey levels in [0, 1] into 0/1 values, for a Bernoulli likelihood.

    Deterministic (``rng is None``): ``x_bin = 1[x > threshold]``.
    Stochastic (``rng`` a ``numpy.random.Generator`` or an int seed): each pixel is an
    independent draw ``x_bin ~ Bernoulli(x)``, i.e. ``1[u < x]`` with ``u ~ U(0, 1)``;
    ``threshold`` is then unused. Stochastic binarization keeps the grey levels as probabilities
    (the usual choice for binarized MNIST).

    Returns an array of the same shape as ``x``, float32 (float64 if ``x`` is float64),
    holding only 0.0 and 1.0.
    """
    x = _check_float_array(x)
    dtype = _float_dtype(x)
    if rng is None:
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise TypeError(f"threshold must be a real number, got {threshold!r}") from None
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        return (x > threshold).astype(dtype)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        rng = np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}"
        )
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            "stochastic binarization treats x as probabilities, so x must lie in [0, 1], "
            f"got values in [{lo:g}, {hi:g}]; scale it first (scale_to_unit)"
        )
    return (rng.random(x.shape) < x).astype(dtype)


def scale_to_unit(x: Any) -> np.ndarray:
    """Min-max scale a whole dataset to [0, 1]: ``(x - x.min()) / (x.max() - x.min())``.

    One minimum and one maximum over all entries (not per column), so images keep their relative
    contrast. Returns the same shape, float32 (float64 if ``x`` is float64). A constant array has
    no range to scale and raises ValueError.
    """
    x = _check_float_array(x)
    dtype = _float_dtype(x)
    x64 = x.astype(np.float64)
    lo, hi = float(x64.min()), float(x64.max())
    if hi == lo:
        raise ValueError(
            f"x is constant (every value is {lo:g}); it has no range to scale to [0, 1]"
        )
    out = (x64 - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(dtype)


def _standardize_f64(
    x: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing columns are redone below
        if mean is None:
            mean = x64.mean(axis=0)
        if std is None:
            std = x64.std(axis=0)
            std = np.where(std > 0, std, 1.0)  # a constant column is centred, not divided by 0
            # a column of finite values near 1e154 or above overflows in the squares: its std
            # came out inf (and every value / inf = 0). Compute it on the column scaled by its
            # largest magnitude instead: std(x) = s * std(x / s), exact up to rounding.
            overflowed = ~np.isfinite(std) | ~np.isfinite(mean)
            if overflowed.any():
                mean, std = mean.copy(), std.copy()
                for j in np.flatnonzero(overflowed):
                    scale = float(np.abs(x64[:, j]).max())
                    scaled = x64[:, j] / scale
                    mean[j], std[j] = scale * scaled.mean(), scale * scaled.std()
        x_std = (x64 - mean) / std
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and np.isfinite(x_std).all()):
        raise ValueError(
            "standardize overflows float64 on this x (values up to "
            f"{float(np.abs(x64).max()):.3g}); rescale it first"
        )
    return x_std, mean, std


def standardize(
    x: Any, mean: Any = None, std: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardize columns: ``x_std = (x - mean) / std``.

    Parameters
    ----------
    x : array, shape (n, d)
    mean, std : arrays of shape (d,), or None
        None: computed from ``x`` (column mean, population std; a constant column gets std 1 so
        it is centred rather than divided by zero). Pass the training set's ``mean`` and ``std``
        to transform a test set with the same statistics.

    Returns
    -------
    (x_std, mean, std) : x_std of shape (n, d), float32 (float64 if ``x`` is float64);
    mean and std of shape (d,), same dtype as x_std.
    """
    x = _check_float_array(x)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, d), got shape {x.shape}")
    dtype = _float_dtype(x)
    d = x.shape[1]
    checked = []
    for name, value in (("mean", mean), ("std", std)):
        if value is None:
            checked.append(None)
            continue
        value = _check_float_array(value, name).astype(np.float64)
        if value.shape != (d,):
            raise ValueError(
                f"{name} must have shape ({d},) to match x of shape {x.shape}, got {value.shape}"
            )
        checked.append(value)
    mean_arr, std_arr = checked
    if std_arr is not None and not (std_arr > 0).all():
        raise ValueError(f"std must be > 0 in every column, got minimum {std_arr.min():g}")
    x_std, mean_out, std_out = _standardize_f64(x, mean_arr, std_arr)
    with np.errstate(over="ignore"):  # reported below
        out = x_std.astype(dtype), mean_out.astype(dtype), std_out.astype(dtype)
    for name, value, value64 in zip(("x_std", "mean", "std"), out, (x_std, mean_out, std_out),
                                    strict=True):
        if not np.isfinite(value).all():
            raise ValueError(
                f"standardize: {name} overflows {dtype.name} (values up to "
                f"{float(np.abs(value64).max()):.3g}); pass float64 data, or rescale them"
            )
    return out
