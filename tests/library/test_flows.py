"""Planar flows (minivae.flows): every backward by finite differences in float64, the log-det
against the determinant of a finite-difference Jacobian, the invertibility constraint, PyTorch
autograd, every backend, the 2-D targets and the toy fit.

The parameters are chosen so that wᵀu takes both signs and large values (|wᵀu| up to ~6, where
m(wᵀu) - wᵀu is far from 0): with wᵀu near 0 and ‖w‖ near 1, a ‖w‖ written for ‖w‖² or a flipped
log-det would pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

from minivae import backend, rel_error
from minivae.flows import (
    TARGETS,
    PlanarFlow,
    banana_log_density,
    constrain_u,
    constrain_u_backward,
    flow_backward,
    flow_forward,
    planar_backward,
    planar_forward,
    ring_log_density,
    sum_to,
)
from minivae.layers import softplus
from minivae.optim import Adam

FD_TOL = 1e-7


def _steps(rng: np.random.Generator, batch: int, d: int, k: int, amortised: bool = True):
    """K steps whose wᵀu has both signs and |wᵀu| > 1 for most points; ‖w‖ far from 1."""
    lead = (batch,) if amortised else ()
    steps = []
    for i in range(k):
        w = rng.normal(size=(*lead, d)) * (0.5 + 0.35 * i)  # ‖w‖ from ~0.8 to ~2.5
        sign = np.where(rng.random((*lead, 1)) < 0.5, -1.0, 1.0) if amortised else (-1.0) ** i
        u = sign * 2.0 * w / (w * w).sum(axis=-1, keepdims=True) ** 0.5 + 0.5 * rng.normal(
            size=(*lead, d)
        )
        b = np.asarray(rng.normal(size=lead))
        steps.append((u, w, b))
    return steps


def _wu(steps) -> np.ndarray:
    return np.concatenate([np.ravel((u * w).sum(axis=-1)) for u, w, _ in steps])


def test_the_test_parameters_have_both_signs_of_wu():
    a = _wu(_steps(np.random.default_rng(0), 6, 3, 4))
    assert (a < -1).any() and (a > 1).any(), f"wᵀu must take both signs, got {np.round(a, 2)}"


# ----------------------------------------------------------------------------- the constraint


def test_constrained_u_satisfies_the_invertibility_condition_exactly():
    rng = np.random.default_rng(1)
    u = rng.normal(size=(200, 3)) * 4
    w = rng.normal(size=(200, 3)) * rng.uniform(0.05, 5, size=(200, 1))
    u_hat, _ = constrain_u(u, w)
    a = (w * u).sum(axis=1)
    uw = (u_hat * w).sum(axis=1)
    # ûᵀw = m(wᵀu) = -1 + softplus(wᵀu): the squared norm makes this exact for every ‖w‖
    np.testing.assert_allclose(uw, -1 + softplus(a), rtol=1e-10, atol=1e-12,
                               err_msg="ûᵀw must equal m(wᵀu) (is the norm squared?)")
    # > -1 exactly where softplus(wᵀu) is representable next to 1; = -1 (rounded) below
    assert (uw >= -1 - 1e-12).all() and (uw[a > -30] > -1).all(), "ûᵀw must exceed -1"
    # û - u is a multiple of w: only the component along w changes
    diff = u_hat - u
    cross = diff - ((diff * w).sum(1, keepdims=True) / (w * w).sum(1, keepdims=True)) * w
    assert np.abs(cross).max() < 1e-10, "û - u must be parallel to w"
    # where wᵀu is large, m(a) ≈ a - 1: û ≈ u - w / ‖w‖² (ûᵀw = wᵀu - 1)
    big = a > 15
    expected = -w[big] / (w[big] ** 2).sum(axis=1, keepdims=True)
    assert big.any() and np.abs(diff[big] - expected).max() < 1e-6


def test_without_the_constraint_a_planar_step_can_fold_space():
    """wᵀu < -1 without the constraint: the determinant changes sign, the map is not invertible."""
    w = np.array([1.0, 0.0])
    u = np.array([-3.0, 0.0])  # wᵀu = -3
    z = np.stack([np.linspace(-3, 3, 61), np.zeros(61)], axis=1)
    with np.errstate(invalid="ignore"):  # log of a negative determinant
        z_raw, _, cache = planar_forward(z, u, w, 0.0)
    det_raw = cache[-1]
    assert (det_raw < 0).any(), "with wᵀu = -3 some determinants are negative"
    assert (np.diff(z_raw[:, 0]) < 0).any(), "the unconstrained map folds the line"
    u_hat, _ = constrain_u(u, w)
    z_new, log_det, _ = planar_forward(z, u_hat, w, 0.0)
    assert np.all(np.diff(z_new[:, 0]) > 0), "the constrained map is monotone along w"
    assert np.all(np.isfinite(log_det))


def test_a_constrained_step_is_inverted_by_bisection_along_w():
    """z' = z + û tanh(wᵀz + b) is a bijection: recover z from z' (1-D root along w)."""
    rng = np.random.default_rng(2)
    for u, w, b in _steps(rng, 1, 3, 4, amortised=False):
        u_hat, _ = constrain_u(u, w)
        z = rng.normal(size=(50, 3)) * 2
        z_new, _, _ = planar_forward(z, u_hat, w, b)
        # wᵀz' + b = s + ûᵀw tanh(s) is strictly increasing in s = wᵀz + b: bisect for s
        target = z_new @ w + b
        uw = float(u_hat @ w)
        lo, hi = np.full(50, -50.0), np.full(50, 50.0)
        for _ in range(200):
            mid = (lo + hi) / 2
            below = mid + uw * np.tanh(mid) < target
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        z_back = z_new - np.outer(np.tanh(lo), u_hat)
        np.testing.assert_allclose(z_back, z, atol=1e-9, err_msg="the step is not inverted")


def test_constrain_u_backward_finite_differences():
    rng = np.random.default_rng(3)
    for (u, w, _), shape in zip(_steps(rng, 5, 3, 3), [(5, 3)] * 3, strict=True):
        u, w = u.copy(), w.copy()
        du_hat = rng.normal(size=shape)
        _, cache = constrain_u(u, w)
        du, dw = constrain_u_backward(du_hat, cache)

        def f(u=u, w=w, du_hat=du_hat) -> float:
            return float((du_hat * constrain_u(u, w)[0]).sum())

        err = fd_max_error("constrain_u", f, {"u": u, "w": w}, {"u": du, "w": dw})
        assert err < FD_TOL, f"û's backward disagrees with finite differences: {err:.2e}"


# ----------------------------------------------------------------------------- one step, K steps


@pytest.mark.parametrize("amortised", [True, False], ids=["amortised", "global"])
def test_planar_step_backward_finite_differences(amortised):
    rng = np.random.default_rng(4)
    (u, w, b), = _steps(rng, 6, 3, 1, amortised)
    u_hat, _ = constrain_u(u, w)
    u_hat, w, b = u_hat.copy(), w.copy(), np.array(b, dtype=np.float64)
    z = rng.normal(size=(6, 3)) * 1.5
    dz_new, dlog_det = rng.normal(size=(6, 3)), rng.normal(size=6)
    _, _, cache = planar_forward(z, u_hat, w, b)
    dz, du_hat, dw, db = planar_backward(dz_new, dlog_det, cache)

    def f() -> float:
        z_new, log_det, _ = planar_forward(z, u_hat, w, b)
        return float((dz_new * z_new).sum() + (dlog_det * log_det).sum())

    analytic = {"z": dz, "u_hat": sum_to(du_hat, u_hat.shape), "w": sum_to(dw, w.shape),
                "b": sum_to(db, b.shape)}
    err = fd_max_error(f"planar step ({'amortised' if amortised else 'global'})", f,
                       {"z": z, "u_hat": u_hat, "w": w, "b": b}, analytic)
    assert err < FD_TOL, f"the planar step's backward disagrees with finite differences: {err:.2e}"


@pytest.mark.parametrize("amortised", [True, False], ids=["amortised", "global"])
def test_k_steps_backward_finite_differences_through_the_constraint(amortised):
    rng = np.random.default_rng(5)
    steps = [tuple(np.array(p, dtype=np.float64) for p in s)
             for s in _steps(rng, 5, 3, 4, amortised)]
    z0 = rng.normal(size=(5, 3))
    dz_k, dlog_det = rng.normal(size=(5, 3)), rng.normal(size=5)
    _, _, caches = flow_forward(z0, steps)
    dz0, grads = flow_backward(dz_k, dlog_det, caches)

    def f() -> float:
        z_k, log_det, _ = flow_forward(z0, steps)
        return float((dz_k * z_k).sum() + (dlog_det * log_det).sum())

    arrays, analytic = {"z0": z0}, {"z0": dz0}
    for i, ((u, w, b), (du, dw, db)) in enumerate(zip(steps, grads, strict=True)):
        arrays.update({f"u{i}": u, f"w{i}": w, f"b{i}": b})
        analytic.update({f"u{i}": sum_to(du, u.shape), f"w{i}": sum_to(dw, w.shape),
                         f"b{i}": sum_to(db, b.shape)})
    err = fd_max_error(f"4 planar steps ({'amortised' if amortised else 'global'})", f, arrays,
                       analytic)
    assert err < FD_TOL, f"the flow's backward disagrees with finite differences: {err:.2e}"


def test_log_det_is_the_log_determinant_of_the_jacobian_per_point():
    """Σ log|det| against the determinant of the finite-difference Jacobian of z0 -> z_K, for
    every point of the batch (a log-det summed over the batch, a flipped sign or a ‖w‖ for
    ‖w‖² all fail here)."""
    rng = np.random.default_rng(6)
    d, n = 3, 5
    steps = _steps(rng, n, d, 4)
    z0 = rng.normal(size=(n, d))
    z_k, log_det, _ = flow_forward(z0, steps)
    assert log_det.shape == (n,), f"one log-det per point: expected ({n},), got {log_det.shape}"
    h = 1e-6
    worst = 0.0
    for i in range(n):
        jac = np.empty((d, d))
        for j in range(d):
            step = np.zeros((n, d))
            step[i, j] = h
            jac[:, j] = (flow_forward(z0 + step, steps)[0][i]
                         - flow_forward(z0 - step, steps)[0][i]) / (2 * h)
        sign, logabs = np.linalg.slogdet(jac)
        assert sign > 0, "the constrained flow must preserve orientation"
        worst = max(worst, abs(logabs - log_det[i]))
    report("FD-ERR", "log|det J| of 4 planar steps vs slogdet(FD Jacobian)", worst)
    assert worst < 1e-7, f"log_det differs from log|det J| by {worst:.2e}"


def test_zero_steps_is_the_identity():
    z0 = np.random.default_rng(0).normal(size=(4, 3))
    z, log_det, caches = flow_forward(z0, [])
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(log_det, np.zeros(4))
    dz0, grads = flow_backward(np.ones((4, 3)), -1.0, caches)
    np.testing.assert_array_equal(dz0, np.ones((4, 3)))
    assert grads == []


def test_k_samples_broadcast_over_amortised_parameters():
    """z (k, batch, d) with per-example (batch, d) parameters equals k separate batches."""
    rng = np.random.default_rng(7)
    steps = _steps(rng, 4, 3, 3)
    z0 = rng.normal(size=(5, 4, 3))
    z_k, log_det, _ = flow_forward(z0, steps)
    assert z_k.shape == (5, 4, 3) and log_det.shape == (5, 4)
    for i in range(5):
        z_i, ld_i, _ = flow_forward(z0[i], steps)
        np.testing.assert_allclose(z_k[i], z_i, rtol=1e-13)
        np.testing.assert_allclose(log_det[i], ld_i, rtol=1e-13)


def test_sum_to():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(sum_to(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(sum_to(g, (3, 1)), g.sum(axis=0).sum(axis=1, keepdims=True))
    assert sum_to(np.arange(5.0), ()) == 10.0
    with pytest.raises(ValueError, match="cannot sum a gradient of shape"):
        sum_to(np.ones(3), (1, 3))


# ----------------------------------------------------------------------------- PyTorch


def test_flow_and_its_gradients_equal_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    steps = _steps(rng, 6, 3, 5)
    z0 = rng.normal(size=(6, 3))
    dz_k, dlog_det = rng.normal(size=(6, 3)), rng.normal(size=6)
    z_k, log_det, caches = flow_forward(z0, steps)
    dz0, grads = flow_backward(dz_k, dlog_det, caches)

    # the same maths, written from the formulas, differentiated by autograd
    tz = torch.tensor(z0, requires_grad=True)
    tsteps = [tuple(torch.tensor(np.asarray(p), requires_grad=True) for p in s) for s in steps]
    z, total = tz, torch.zeros(6, dtype=torch.float64)
    for u, w, b in tsteps:
        a = (w * u).sum(-1, keepdim=True)
        # logaddexp, not F.softplus: torch's softplus is linear above 20 (an approximation)
        m = -1 + torch.logaddexp(a, torch.zeros_like(a))
        u_hat = u + (m - a) * w / (w * w).sum(-1, keepdim=True)
        s = (w * z).sum(-1) + b
        psi = (1 - torch.tanh(s) ** 2)[:, None] * w
        total = total + torch.log(torch.abs(1 + (u_hat * psi).sum(-1)))
        z = z + u_hat * torch.tanh(s)[:, None]
    ((z * torch.from_numpy(dz_k)).sum() + (total * torch.from_numpy(dlog_det)).sum()).backward()

    err = max(rel_error(z_k, z.detach().numpy()), rel_error(log_det, total.detach().numpy()))
    report("TORCH-ERR", "planar flow z_K, log_det", err)
    assert err < 1e-12
    err = rel_error(dz0, tz.grad.numpy())
    for (du, dw, db), (u, w, b) in zip(grads, tsteps, strict=True):
        err = max(err, rel_error(du, u.grad.numpy()), rel_error(dw, w.grad.numpy()),
                  rel_error(db, b.grad.numpy()))
    report("TORCH-ERR", "planar flow gradients (z0, u, w, b of 5 steps)", err)
    assert err < 1e-10, f"a flow gradient differs from torch autograd: {err:.2e}"


# ----------------------------------------------------------------------------- backends


def test_flow_on_every_backend_gives_numpys_numbers(backend_name, xp, to_xp,
                                                    assert_matches_numpy):
    rng = np.random.default_rng(9)
    steps = _steps(rng, 4, 3, 3)
    z0 = rng.normal(size=(4, 3))
    dz_k, dlog_det = rng.normal(size=(4, 3)), rng.normal(size=4)
    z_ref, ld_ref, caches = flow_forward(z0, steps)
    dz_ref, grads_ref = flow_backward(dz_k, dlog_det, caches)

    dev_steps = [tuple(to_xp(np.asarray(p)) for p in s) for s in steps]
    z, ld, dev_caches = flow_forward(to_xp(z0), dev_steps)
    dz, grads = flow_backward(to_xp(dz_k), to_xp(dlog_det), dev_caches)
    assert_matches_numpy(z, z_ref, err_msg="z_K")
    assert_matches_numpy(ld, ld_ref, err_msg="log_det")
    assert_matches_numpy(dz, dz_ref, err_msg="dz0")
    for got, ref in zip(grads, grads_ref, strict=True):
        for g, r, name in zip(got, ref, ["du", "dw", "db"], strict=True):
            assert_matches_numpy(g, r, err_msg=name)


# ----------------------------------------------------------------------------- 2-D targets


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_gradients_finite_differences(name):
    fn = TARGETS[name]
    z = np.random.default_rng(10).normal(size=(7, 2)) * 2
    _, grad = fn(z)
    err = fd_max_error(f"{name} target", lambda: float(fn(z)[0].sum()), {"z": z}, {"z": grad})
    assert err < FD_TOL


def test_targets_have_their_shape():
    # the ring's density peaks on the circle of radius 2, near z1 = +-2
    log_p, _ = ring_log_density(np.array([[2.0, 0.0], [0.0, 0.0], [0.0, 2.0], [-2.0, 0.0]]))
    assert log_p[0] > log_p[2] > log_p[1] and log_p[0] == pytest.approx(log_p[3])
    # the banana's ridge: z2 = z1^2 / 2 - 1.5
    log_p, _ = banana_log_density(np.array([[2.0, 0.5], [2.0, -1.5], [0.0, -1.5]]))
    assert log_p[0] > log_p[1] and log_p[2] > log_p[1]
    with pytest.raises(ValueError, match=r"z must be \(\.\.\., 2\)"):
        ring_log_density(np.zeros((3, 3)))


# ----------------------------------------------------------------------------- the toy flow


def test_planar_flow_objective_gradient_finite_differences():
    flow = PlanarFlow(2, 4, init_scale=1.5, seed=3, dtype="float64")
    eps = np.random.default_rng(11).normal(size=(9, 2))
    terms, grads = flow.objective(eps, "ring", beta=0.7)
    assert terms["loss"] == pytest.approx(
        terms["log_q"] - 0.7 * terms["log_target"], rel=1e-12
    )
    analytic = {name: np.array(g) for name, g in grads.items()}
    err = fd_max_error("PlanarFlow objective (ring, beta 0.7)",
                       lambda: flow.objective(eps, "ring", 0.7, need_grads=False)[0]["loss"],
                       flow.params, analytic)
    assert err < FD_TOL


def test_planar_flow_log_q_is_a_normalised_density():
    """q_K(z_K) = q_0(z_0) / |det|: the mean of p̃/q_K over draws of q_K estimates the same Z as
    a quadrature of p̃ (a wrong log-det would bias it)."""
    flow = PlanarFlow(2, 6, init_scale=1.0, seed=1, dtype="float64")
    # make the flow non-trivial but keep q_K broad enough to cover the banana
    _, z, log_q = flow.sample(200_000, rng=np.random.default_rng(0))
    log_p, _ = banana_log_density(z)
    log_ratio = log_p - log_q
    m = log_ratio.max()
    z_is = np.exp(m) * np.exp(log_ratio - m).mean()
    se = np.exp(m) * np.exp(log_ratio - m).std() / np.sqrt(log_ratio.size)
    grid = np.linspace(-12, 12, 1201)
    g1, g2 = np.meshgrid(grid, grid)
    lp, _ = banana_log_density(np.stack([g1.ravel(), g2.ravel()], axis=1))
    z_quad = np.exp(lp).sum() * (grid[1] - grid[0]) ** 2
    print(f"banana Z: quadrature {z_quad:.4f}, importance sampling {z_is:.4f} +- {se:.4f}")
    assert abs(z_is - z_quad) < 5 * se + 1e-3 * z_quad


def test_planar_flow_training_lowers_the_kl_and_is_reproducible():
    def train(seed: int) -> tuple[float, float]:
        flow = PlanarFlow(2, 8, seed=seed)
        opt = Adam(flow.params, lr=0.02)
        rng = np.random.default_rng(seed)
        eval_eps = np.random.default_rng(99).normal(size=(4000, 2))
        before = flow.objective(eval_eps, "banana", need_grads=False)[0]["loss"]
        for _ in range(300):
            _, grads = flow.objective(rng.normal(size=(128, 2)), "banana")
            opt.step(grads)
        return before, flow.objective(eval_eps, "banana", need_grads=False)[0]["loss"]

    before, after = train(0)
    assert after < before - 0.5, f"300 Adam steps should lower the KL: {before:.3f} -> {after:.3f}"
    assert train(0) == (before, after), "the same seed must give the same numbers"


def test_planar_flow_on_every_backend_matches_numpy(backend_name, assert_matches_numpy):
    ref = PlanarFlow(2, 3, seed=4)
    dev = PlanarFlow(2, 3, seed=4, backend_name=backend_name)
    eps = np.random.default_rng(12).normal(size=(10, 2))
    t_ref, g_ref = ref.objective(eps, "ring")
    t_dev, g_dev = dev.objective(eps, "ring")
    for key in t_ref:
        assert t_dev[key] == pytest.approx(t_ref[key], rel=1e-12)
    assert_matches_numpy(g_dev.flat, g_ref.flat)


def test_planar_flow_bad_input():
    with pytest.raises(ValueError, match="n_steps must be an integer >= 0"):
        PlanarFlow(2, -1)
    with pytest.raises(ValueError, match="dim"):
        PlanarFlow(0, 2)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        PlanarFlow(2, 2, dtype="int32")
    flow = PlanarFlow(2, 2)
    with pytest.raises(ValueError, match=r"eps must be \(n, 2\), got shape \(5, 3\)"):
        flow.objective(np.zeros((5, 3)), "ring")
    with pytest.raises(ValueError, match="beta"):
        flow.objective(np.zeros((5, 2)), "ring", beta=-1.0)
    with pytest.raises(KeyError):
        flow.objective(np.zeros((5, 2)), "no such target")


def test_planar_flow_float32_default_backend_arrays():
    flow = PlanarFlow(2, 2, seed=0, dtype="float32")
    z0, z, log_q = flow.sample(5)
    assert z.dtype == np.float32 and z.shape == (5, 2) and log_q.shape == (5,)
    assert backend.array_module(z) is np
