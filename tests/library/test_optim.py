"""Optimizers by hand (no torch needed): the update equations, and refused hyperparameters.

The update tests run on every backend (see conftest.py): on the stand-in and on CuPy the
optimizer takes its device path (on CuPy, a fused kernel) and must give the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from minivae import SGD, Adam
from minivae.params import Parameters


def _params(values, xp=np) -> Parameters:
    p = Parameters.zeros({"w": (len(values),)}, np.float64, xp)
    p["w"] = xp.asarray(np.array(values, dtype=np.float64))
    return p


def test_plain_sgd_step(xp, to_xp, to_numpy):
    p = _params([1.0, -2.0], xp)
    g = p.zeros_like()
    g["w"] = to_xp(np.array([0.5, 1.0]))
    SGD(p, lr=0.1).step(g)
    np.testing.assert_allclose(to_numpy(p["w"]), [0.95, -2.1], rtol=1e-15,
                               err_msg="p <- p - lr * g")


def test_sgd_momentum_accumulates_velocity(xp, to_xp, to_numpy):
    p = _params([0.0], xp)
    g = p.zeros_like()
    g["w"] = to_xp(np.array([1.0]))
    opt = SGD(p, lr=0.1, momentum=0.9)
    opt.step(g)  # v = 1, p = -0.1
    opt.step(g)  # v = 1.9, p = -0.29
    np.testing.assert_allclose(to_numpy(p["w"]), [-0.29], rtol=1e-14,
                               err_msg="heavy-ball momentum: v <- m v + g, p <- p - lr v")


def test_adam_first_step_is_lr_times_sign(xp, to_xp, to_numpy):
    # after bias correction, m / sqrt(v) = g / |g| on the first step: each entry moves by ~lr
    p = _params([1.0, 1.0, 1.0], xp)
    g = p.zeros_like()
    g["w"] = to_xp(np.array([1e-3, -5.0, 200.0]))
    Adam(p, lr=0.01, eps=1e-12).step(g)
    np.testing.assert_allclose(to_numpy(p["w"]), [0.99, 1.01, 0.99], rtol=1e-8,
                               err_msg="Adam's first step must be lr * sign(g) (bias correction)")


def test_adam_minimises_a_quadratic(xp, to_numpy):
    p = _params([3.0, -4.0], xp)
    opt = Adam(p, lr=0.1)
    g = p.zeros_like()
    for _ in range(500):
        g["w"] = 2 * p["w"]
        opt.step(g)
    w = to_numpy(p["w"])
    assert np.abs(w).max() < 0.05, f"Adam did not minimise |w|^2: w = {w}"


def test_dict_and_parameters_paths_agree(xp, to_xp, to_numpy):
    rng = np.random.default_rng(0)
    start, grad = rng.standard_normal(4), rng.standard_normal(4)
    flat = _params(start, xp)
    g = flat.zeros_like()
    g["w"] = to_xp(grad)
    plain = {"w": to_xp(start.copy())}
    a, b = Adam(flat, lr=0.1), Adam(plain, lr=0.1)
    for _ in range(3):
        a.step(g)
        b.step({"w": to_xp(grad)})
    np.testing.assert_array_equal(to_numpy(flat["w"]), to_numpy(plain["w"]))


def test_adam_and_sgd_on_a_device_give_numpys_numbers(device_backend_name, to_numpy):
    """200 steps in float32 on the device path (on CuPy: the fused kernels, compiled without
    fused multiply-adds) against NumPy: the same numbers, bit for bit."""
    from minivae import backend

    xp = backend.get(device_backend_name)
    rng = np.random.default_rng(1)
    start = rng.standard_normal(1000).astype(np.float32)
    grads = rng.standard_normal((200, 1000)).astype(np.float32)
    grads[1:, :300] = 0  # gradients that stay 0 drive Adam's state towards the subnormal range
    for make in (lambda p: Adam(p, lr=1e-2), lambda p: SGD(p, lr=0.1, momentum=0.9)):
        host, device = {"w": start.copy()}, {"w": xp.asarray(start)}
        host_opt, device_opt = make(host), make(device)
        for g in grads:
            host_opt.step({"w": g})
            device_opt.step({"w": xp.asarray(g)})
        np.testing.assert_array_equal(to_numpy(device["w"]), host["w"],
                                      err_msg=type(host_opt).__name__)


def test_bad_hyperparameters_are_refused():
    p = _params([0.0])
    with pytest.raises(ValueError, match=r"lr must be >= 0.0, got -0.1"):
        SGD(p, lr=-0.1)
    with pytest.raises(ValueError, match=r"lr must be >= 0.0, got -0.001"):
        Adam(p, lr=-1e-3)
    with pytest.raises(ValueError, match="lr must be finite"):
        Adam(p, lr=float("nan"))
    with pytest.raises(ValueError, match="momentum must be >= 0.0"):
        SGD(p, momentum=-0.5)
    with pytest.raises(ValueError, match=r"betas must lie in \[0, 1\), got \(0.9, 1.0\)"):
        Adam(p, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="lr must be a real number, got 'fast'"):
        SGD(p, lr="fast")


def test_mismatched_grads_are_refused():
    with pytest.raises(ValueError, match=r"same names; differing: \['v'\]"):
        SGD({"w": np.zeros(2)}).step({"w": np.zeros(2), "v": np.zeros(1)})
    p = _params([0.0])
    other = Parameters.zeros({"w": (2,)}, np.float64)
    with pytest.raises(ValueError, match="same names and shapes"):
        Adam(p).step(other)
