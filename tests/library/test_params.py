"""Parameters: one flat buffer behind named views; checked assignment; on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from minivae import backend
from minivae.params import Parameters

SHAPES = {"W0": (3, 2), "b0": (2,), "W1": (2, 4)}


def test_views_share_one_flat_buffer(xp, to_xp, to_numpy):
    p = Parameters.zeros(SHAPES, np.float64, xp)
    assert p.flat.size == 6 + 2 + 8 and len(p) == 3 and list(p) == list(SHAPES)
    assert backend.array_module(p.flat) is xp and backend.array_module(p["W0"]) is xp
    p["b0"] = np.array([1.0, 2.0])  # a host array is copied onto the backend
    np.testing.assert_array_equal(to_numpy(p.flat[6:8]), [1.0, 2.0],
                                  err_msg="b0 must be a view into flat")
    p.flat[0] = 5.0
    assert float(p["W0"][0, 0]) == 5.0, "W0 must be a view into flat"
    view = p["W1"]
    p["W1"] = to_xp(np.ones((2, 4)))  # and so is an array of the backend
    assert bool(xp.shares_memory(view, p.flat)), "assignment must copy into views"
    assert np.all(to_numpy(view) == 1), "assignment must copy into views"
    assert p.shapes() == SHAPES and p.dtype == np.float64


def test_copy_and_zeros_like_are_independent(xp, to_numpy):
    p = Parameters.zeros(SHAPES, np.float32, xp)
    p["W0"] = np.ones((3, 2))
    q = p.copy()
    q["W0"] = np.zeros((3, 2))
    assert np.all(to_numpy(p["W0"]) == 1), "copy() must not share memory with the original"
    assert backend.array_module(q.flat) is xp, "copy() must stay on the backend"
    g = p.zeros_like()
    assert g.shapes() == p.shapes() and g.dtype == np.float32 and not to_numpy(g.flat).any()
    assert backend.array_module(g.flat) is xp, "zeros_like() must stay on the backend"


def test_assignment_checks_shape_values_and_names(xp, to_xp, to_numpy):
    p = Parameters.zeros(SHAPES, np.float64, xp)
    with pytest.raises(ValueError, match=r"parameter 'W0' has shape \(3, 2\), got .* \(2, 3\)"):
        p["W0"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match="parameter 'b0': the new value contains NaN or inf"):
        p["b0"] = np.array([0.0, np.nan])
    with pytest.raises(ValueError, match="NaN or inf"):
        p["b0"] = np.array([np.inf, 0.0])
    with pytest.raises(ValueError, match="NaN or inf"):
        p["b0"] = to_xp(np.array([0.0, np.inf]))  # checked on the backend too
    with pytest.raises(TypeError, match="must be real numbers, got dtype complex128"):
        p["b0"] = np.array([1j, 0])
    with pytest.raises(KeyError, match=r"no parameter 'W9'; this model has \['W0', 'b0', 'W1'\]"):
        p["W9"] = np.zeros(2)
    with pytest.raises(TypeError, match="cannot delete"):
        del p["W0"]
    assert not to_numpy(p.flat).any(), "a refused assignment must leave the parameters unchanged"


def test_flat_size_mismatch_is_refused(xp):
    with pytest.raises(ValueError, match="flat buffer has 5 entries, the shapes need 16"):
        Parameters(xp.zeros(5), SHAPES)
