"""Data sets that come with an installed package, so they need no network.

- ``load_digits()``: scikit-learn's bundled 8x8 handwritten digits, 1797 images, pixels in [0, 1].
- ``load_breast_cancer()``: scikit-learn's bundled Wisconsin table, 569 rows x 30 features.

scikit-learn is a dependency of the course, not of the library: it is imported inside the loaders.
Everything returned is NumPy (float32 data, int64 labels); move it to a GPU with the backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .transforms import standardize as standardize_columns

__all__ = ["load_breast_cancer", "load_digits"]

_SKLEARN_MISSING = (
    "{what} needs scikit-learn, which comes with the course's dependencies: "
    "pip install 'minivae[course]'  (or: pip install scikit-learn)"
)


def _sklearn_datasets(what: str) -> Any:
    try:
        from sklearn import datasets
    except ImportError as err:  # pragma: no cover - exercised by monkeypatching in the tests
        raise ImportError(_SKLEARN_MISSING.format(what=what)) from err
    return datasets


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's bundled 8x8 digits, scaled to [0, 1].

    Returns
    -------
    x : float32 array, shape (1797, 64)
        Row-major 8x8 images, ``pixel / 16`` (the raw pixels are counts 0..16), so x is in [0, 1].
    y : int64 array, shape (1797,)
        The digit, 0..9.
    """
    datasets = _sklearn_datasets("load_digits()")
    bunch = datasets.load_digits()
    x = (np.asarray(bunch.data, dtype=np.float64) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    return x, y


def load_breast_cancer(standardize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's bundled breast-cancer (Wisconsin diagnostic) table.

    Parameters
    ----------
    standardize : bool
        If True (default), each of the 30 columns is shifted and scaled to mean 0 and standard
        deviation 1 over the whole table: ``(x - mean) / std``. For a held-out evaluation, load
        with ``standardize=False`` and use :func:`standardize` with the training statistics.

    Returns
    -------
    x : float32 array, shape (569, 30)
    y : int64 array, shape (569,)
        0 = malignant, 1 = benign (scikit-learn's coding).
    """
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"standardize must be True or False, got {standardize!r}")
    datasets = _sklearn_datasets("load_breast_cancer()")
    bunch = datasets.load_breast_cancer()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    if standardize:
        x, _, _ = standardize_columns(x)  # float64 in, float64 out
    return x.astype(np.float32), y
