"""Tests for minivae.data: bundled datasets, the seeded split and the transforms."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from minivae import data


@pytest.fixture
def sklearn():
    """The loaders need scikit-learn (a course dependency); their tests skip without it."""
    return pytest.importorskip("sklearn")


# ----------------------------------------------------------------------------------------------
# loaders
# ----------------------------------------------------------------------------------------------


def test_load_digits_shapes_dtypes_range(sklearn):
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y).tolist()) == set(range(10))
    # pixel / 16: every value is a multiple of 1/16
    np.testing.assert_allclose(x * 16, np.round(x * 16), atol=1e-5)


def test_load_digits_matches_sklearn(sklearn):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = data.load_digits()
    np.testing.assert_allclose(x, bunch.data / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(y, bunch.target)


def test_load_breast_cancer_standardized(sklearn):
    x, y = data.load_breast_cancer()
    assert x.shape == (569, 30) and x.dtype == np.float32
    assert y.shape == (569,) and y.dtype == np.int64
    assert set(np.unique(y).tolist()) == {0, 1}
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-4)


def test_load_breast_cancer_raw(sklearn):
    from sklearn.datasets import load_breast_cancer

    x, _ = data.load_breast_cancer(standardize=False)
    np.testing.assert_allclose(x, load_breast_cancer().data, rtol=1e-6)
    assert x.mean() > 10  # raw, unscaled features (areas in the hundreds)
    with pytest.raises(TypeError, match="standardize"):
        data.load_breast_cancer(standardize="yes")


def test_missing_sklearn_gives_install_hint(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install 'minivae\[course\]'"):
        data.load_digits()
    with pytest.raises(ImportError, match="scikit-learn"):
        data.load_breast_cancer()


# ----------------------------------------------------------------------------------------------
# train_test_split
# ----------------------------------------------------------------------------------------------


def test_split_sizes_and_disjoint():
    x = np.arange(100, dtype=np.float32).reshape(50, 2)
    x_train, x_test = data.train_test_split(x, test_fraction=0.2, seed=0)
    assert x_train.shape == (40, 2) and x_test.shape == (10, 2)
    together = np.sort(np.concatenate([x_train[:, 0], x_test[:, 0]]))
    np.testing.assert_array_equal(together, x[:, 0])  # a partition: nothing lost, nothing twice


def test_split_keeps_rows_aligned():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10) * 7
    x_train, x_test, y_train, y_test = data.train_test_split(x, y, test_fraction=0.3, seed=1)
    np.testing.assert_array_equal(x_train[:, 0] / 3 * 7, y_train)
    np.testing.assert_array_equal(x_test[:, 0] / 3 * 7, y_test)
    assert len(y_test) == 3


def test_split_seeded():
    x = np.arange(200).reshape(100, 2)
    a = data.train_test_split(x, seed=5)
    b = data.train_test_split(x, seed=5)
    c = data.train_test_split(x, seed=6)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    # shuffled, not the last rows
    assert not np.array_equal(a[1], x[-20:])


def test_split_small_fraction_keeps_one_row_each_side():
    x = np.arange(3)
    x_train, x_test = data.train_test_split(x, test_fraction=0.01)
    assert len(x_test) == 1 and len(x_train) == 2
    x_train, x_test = data.train_test_split(x, test_fraction=0.99)
    assert len(x_test) == 2 and len(x_train) == 1


def test_split_errors():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"same length.*\(10, 2\).*\(9,\)"):
        data.train_test_split(x, np.zeros(9))
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            data.train_test_split(x, test_fraction=bad)
    with pytest.raises(TypeError, match="test_fraction"):
        data.train_test_split(x, test_fraction="0.2")
    with pytest.raises(TypeError, match="at least one array"):
        data.train_test_split()
    with pytest.raises(ValueError, match="at least 2 rows"):
        data.train_test_split(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="scalar"):
        data.train_test_split(np.float32(3.0))


# ----------------------------------------------------------------------------------------------
# transforms
# ----------------------------------------------------------------------------------------------


def test_binarize_deterministic():
    x = np.array([[0.0, 0.3, 0.5, 0.51, 1.0]], dtype=np.float32)
    out = data.binarize(x)
    np.testing.assert_array_equal(out, [[0, 0, 0, 1, 1]])
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(data.binarize(x, threshold=0.2), [[0, 1, 1, 1, 1]])
    assert data.binarize(x.astype(np.float64)).dtype == np.float64


def test_binarize_stochastic_is_bernoulli_and_seeded():
    x = np.full((200, 100), 0.3, dtype=np.float32)
    x[:, :10] = 0.0
    x[:, 10:20] = 1.0
    out = data.binarize(x, rng=np.random.default_rng(0))
    assert set(np.unique(out).tolist()) <= {0.0, 1.0}
    assert (out[:, :10] == 0).all() and (out[:, 10:20] == 1).all()
    # 16000 Bernoulli(0.3) draws: std of the mean is ~0.0036, so 0.02 is > 5 sigma
    assert abs(out[:, 20:].mean() - 0.3) < 0.02
    np.testing.assert_array_equal(out, data.binarize(x, rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(data.binarize(x, rng=3), data.binarize(x, rng=3))
    assert not np.array_equal(data.binarize(x, rng=3), data.binarize(x, rng=4))


def test_binarize_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\].*\[-1, 2\]"):
        data.binarize(np.array([-1.0, 2.0]), rng=0)
    with pytest.raises(TypeError, match="Generator"):
        data.binarize(np.array([0.5]), rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="NaN"):
        data.binarize(np.array([0.5, np.nan]))
    with pytest.raises(TypeError, match="threshold"):
        data.binarize(np.array([0.5]), threshold="half")
    with pytest.raises(TypeError, match="array"):
        data.binarize("pixels")


def test_scale_to_unit():
    x = np.array([[2.0, 4.0], [6.0, 10.0]])
    out = data.scale_to_unit(x)
    np.testing.assert_allclose(out, [[0.0, 0.25], [0.5, 1.0]])
    assert out.dtype == np.float64
    pixels = np.array([[0, 128, 255]], dtype=np.uint8)
    out = data.scale_to_unit(pixels)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 128 / 255, 1.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="constant"):
        data.scale_to_unit(np.ones((3, 3)))
    with pytest.raises(ValueError, match="empty"):
        data.scale_to_unit(np.zeros((0, 3)))


def test_standardize_roundtrip_and_reuse():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(500, 4)).astype(np.float32)
    x_std, mean, std = data.standardize(x)
    assert x_std.shape == x.shape and x_std.dtype == np.float32
    assert mean.shape == (4,) and std.shape == (4,)
    np.testing.assert_allclose(x_std.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_std.std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(x_std * std + mean, x, rtol=1e-5, atol=1e-5)
    # the test set is transformed with the training statistics, not its own
    x_test = x[:10] + 100.0
    test_std, mean2, std2 = data.standardize(x_test, mean, std)
    np.testing.assert_allclose(test_std, (x_test - mean) / std, rtol=1e-5)
    np.testing.assert_array_equal(mean2, mean)
    np.testing.assert_array_equal(std2, std)


def test_standardize_constant_column_is_centred_not_nan():
    x = np.array([[1.0, 3.0], [1.0, 5.0]])
    x_std, _, std = data.standardize(x)
    assert np.isfinite(x_std).all()
    np.testing.assert_array_equal(x_std[:, 0], 0.0)
    assert std[0] == 1.0


def test_standardize_errors():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"mean must have shape \(3,\).*\(2,\)"):
        data.standardize(x, mean=np.zeros(2))
    with pytest.raises(ValueError, match="std must be > 0"):
        data.standardize(x, std=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        data.standardize(np.zeros(5))
    with pytest.raises(TypeError, match="real numbers"):
        data.standardize(np.array([["a", "b"]]))
