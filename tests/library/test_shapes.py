"""The shapes data set: seeded, well-typed, factors in range, and every factor visible."""

import numpy as np
import pytest

from minivae.data.shapes import FACTOR_NAMES, factor_grids, make_shapes, render, traverse_factor


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make_shapes(64, seed=3), make_shapes(64, seed=3), make_shapes(64, seed=4)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.factors, b.factors)
    assert not np.array_equal(a.factors, c.factors)
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("size", [20, 32])
def test_shapes_dtypes_and_binary_pixels(size):
    data = make_shapes(50, seed=0, size=size)
    assert data.x.shape == (50, size * size) and data.x.dtype == np.float32
    assert data.factors.shape == (50, 5) and data.factors.dtype == np.int64
    assert data.values.shape == (50, 5) and data.values.dtype == np.float64
    assert set(np.unique(data.x)) <= {0.0, 1.0}
    assert data.images().shape == (50, size, size)
    assert len(data) == 50 and data.factor_names == FACTOR_NAMES


def test_factors_in_range_and_values_match_the_grids():
    data = make_shapes(2000, seed=1)
    for j, name in enumerate(FACTOR_NAMES):
        grid = data.grids[name]
        assert data.factors[:, j].min() >= 0 and data.factors[:, j].max() < len(grid)
        # uniform draws: with 2000 rows every value of every grid appears
        assert len(np.unique(data.factors[:, j])) == len(grid)
        np.testing.assert_array_equal(data.values[:, j], grid[data.factors[:, j]])
    assert data.n_values == (4, 4, 6, 10, 10)


def test_every_image_shows_a_shape_inside_the_frame():
    data = make_shapes(500, seed=2)
    images = data.images()
    assert images.sum(axis=(1, 2)).min() >= 8  # no empty image, even the smallest shape
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    assert border.sum() == 0  # nothing is cut off by the edge


@pytest.mark.parametrize("factor", FACTOR_NAMES)
def test_each_factor_changes_the_image(factor):
    grids = factor_grids()
    # a heart (no rotational symmetry) of middle size in the middle
    base = np.array([3.0, grids["scale"][1], grids["rotation"][1], 0.5, 0.5])
    grid = grids[factor]
    images = traverse_factor(base, factor, grid)
    assert images.shape == (len(grid), 20, 20)
    for i in range(len(grid) - 1):
        assert np.abs(images[i] - images[i + 1]).sum() > 0, f"{factor} step {i} changed nothing"


def test_larger_scale_covers_more_pixels_and_x_moves_the_centre_of_mass():
    grids = factor_grids()
    base = np.array([1.0, 0.7, 0.3, 0.5, 0.5])  # an ellipse, turned a little
    areas = traverse_factor(base, "scale", grids["scale"]).sum(axis=(1, 2))
    assert np.all(np.diff(areas) > 0)
    images = traverse_factor(base, "x", grids["x"])
    cols = (images.sum(axis=1) * np.arange(20)).sum(axis=1) / images.sum(axis=(1, 2))
    assert np.all(np.diff(cols) > 0)
    images = traverse_factor(base, "y", grids["y"])
    rows = (images.sum(axis=2) * np.arange(20)).sum(axis=1) / images.sum(axis=(1, 2))
    assert np.all(np.diff(rows) > 0)


def test_the_four_shapes_differ():
    base = np.array([0.0, 1.0, 0.3, 0.5, 0.5])
    images = traverse_factor(base, "shape", np.arange(4.0))
    flat = images.reshape(4, -1)
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(flat[i] - flat[j]).sum() >= 8


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="n must"):
        make_shapes(0)
    with pytest.raises(ValueError, match=r"\(n, 5\)"):
        render(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="shape ids"):
        render(np.array([[7.0, 1.0, 0.0, 0.5, 0.5]]))
