"""minivae.course.ch09_flows_iwae: its references are the library's, and its checks pass them.

The planted mistakes (tests/mistakes/ch09_flows_iwae.py) test that the checks fail, with the
right message, on wrong answers; these test that they pass right ones, given as the library's
functions in the exercises' signatures.
"""

from __future__ import annotations

import numpy as np
import pytest

from minivae import flows
from minivae.course import ch09_flows_iwae as ch09
from minivae.course.feedback import ExerciseError
from minivae.importance import log_mean_exp


def planar_step(z, u_hat, w, b):
    z_new, log_det, _ = flows.planar_forward(z, u_hat, w, b)
    return z_new, log_det


def planar_step_backward(dz_new, dlog_det, z, u_hat, w, b):
    _, _, cache = flows.planar_forward(z, u_hat, w, b)
    dz, du, dw, db = flows.planar_backward(dz_new, dlog_det, cache)
    return dz, du.sum(axis=0), dw.sum(axis=0), float(db.sum())


def constrain_u(u, w):
    return flows.constrain_u(u, w)[0]


def test_planar_inputs_have_the_asked_for_uhat_dot_w():
    z, u_hat, w, b = ch09.planar_inputs(seed=0, batch=4, d=3, uw=-0.6)
    assert z.shape == (4, 3) and u_hat.shape == w.shape == (3,) and isinstance(b, float)
    assert u_hat @ w == pytest.approx(-0.6, rel=1e-12)


@pytest.mark.parametrize("uw", [-0.9, 0.4, 3.0])
def test_the_checks_pass_the_library(uw):
    z, u_hat, w, b = ch09.planar_inputs(seed=1, batch=5, d=3, uw=uw)
    ch09.check_planar_step(planar_step, z, u_hat, w, b)
    assert ch09.check_log_det_against_jacobian(planar_step, z, u_hat, w, b) < 1e-6
    rng = np.random.default_rng(2)
    ch09.check_planar_step_backward(planar_step_backward, rng.normal(size=(5, 3)),
                                    rng.normal(size=5), z, u_hat, w, b)


def test_the_constraint_check_passes_the_library_for_extreme_wu():
    rng = np.random.default_rng(3)
    w = rng.normal(size=4)
    pairs = [(a * w / (w @ w), w) for a in (-900.0, -3.0, 0.0, 2.0, 800.0)]
    ch09.check_constrain_u(constrain_u, pairs)


def test_the_iwae_reference_is_the_library_bound_and_its_gradient():
    rng = np.random.default_rng(4)
    log_w = rng.normal(size=(6, 3)) * 3 - 50
    loss, dlog_w = ch09.iwae_reference(log_w)
    assert loss == pytest.approx(-float(log_mean_exp(log_w, axis=0).mean()), rel=1e-13)
    np.testing.assert_allclose(dlog_w.sum(axis=0), -np.ones(3) / 3, rtol=1e-13)
    ch09.check_iwae_loss_and_dlogw(ch09.iwae_reference, log_w)
    ch09.check_iwae_loss_and_dlogw(ch09.iwae_reference, log_w * 100 - 10_000)
    assert ch09.check_dlogw_is_the_gradient(ch09.iwae_reference, log_w) < 1e-6


def test_a_wrong_log_det_is_caught_by_the_jacobian_check():
    z, u_hat, w, b = ch09.planar_inputs(seed=5, batch=3, d=2, uw=1.5)

    def wrong(z, u_hat, w, b):
        z_new, log_det = planar_step(z, u_hat, w, b)
        return z_new, -log_det

    with pytest.raises(ExerciseError, match="log_det differs from log"):
        ch09.check_log_det_against_jacobian(wrong, z, u_hat, w, b)
