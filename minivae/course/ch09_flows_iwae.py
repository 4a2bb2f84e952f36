"""The graded checks of problem set 09 (planar flows and the IWAE objective), with the reference
maths they compare with and the usual slips they recognise::

    from minivae.course import ch09_flows_iwae as ch09
    ch09.check_planar_step(planar_step, z, u_hat, w, b)

Each exercise is graded on its own: a check computes its reference first (from
:mod:`minivae.flows` and :mod:`minivae.importance`), runs the learner's function on copies of its
inputs (:func:`~minivae.course.feedback.call`), and compares. Each slip is written out here as
the number it would give, so a hint fires only when the learner's numbers are exactly those.

The exercises work with ONE planar step with global parameters: z (batch, d), û and w (d,),
b a number, as in the 2-D toy of the lecture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import flows
from ..gradcheck import numerical_gradient
from ..importance import log_mean_exp, normalized_weights
from .feedback import (
    ExerciseError,
    call,
    check_close,
    check_finite,
    check_gradient,
    check_shape,
    check_type,
    unpack,
)

Array = np.ndarray
Hints = list[tuple[object, str]]

__all__ = [
    "check_constrain_u",
    "check_dlogw_is_the_gradient",
    "check_iwae_loss_and_dlogw",
    "check_log_det_against_jacobian",
    "check_planar_step",
    "check_planar_step_backward",
    "iwae_reference",
    "planar_inputs",
    "planar_reference",
]


# ----------------------------------------------------------------------------- inputs


def planar_inputs(
    seed: int, batch: int, d: int, uw: float, scale: float = 1.5
) -> tuple[Array, Array, Array, float]:
    """z (batch, d), û (d,) with ûᵀw = ``uw`` exactly, w (d,) with ‖w‖ far from 1, b (float).

    ``uw`` must be > -1 (an invertible step); a negative one makes the log-det slips show.
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d) * 1.3
    v = rng.normal(size=d)
    u_hat = v + (uw - v @ w) / (w @ w) * w
    z = rng.normal(size=(batch, d)) * scale
    return z, u_hat, w, float(rng.normal())


# ----------------------------------------------------------------------------- 1. the step


def planar_reference(z: Array, u_hat: Array, w: Array, b: float) -> tuple[Array, Array]:
    """z_new = z + û tanh(wᵀz + b) and log_det = log|1 + ûᵀψ|, ψ = tanh′(wᵀz + b) w."""
    z_new, log_det, _ = flows.planar_forward(z, u_hat, w, b)
    return z_new, log_det


def _z_new_slips(z: Array, u_hat: Array, w: Array, b: float) -> Hints:
    s = z @ w + b
    h = np.tanh(s)
    return [
        (z + h[:, None] * w, "z_new moves along w: a planar step moves every point along û, "
                             "z_new = z + û · tanh(wᵀz + b) (w only decides how far)"),
        (z + s[:, None] * u_hat, "tanh is missing: z_new = z + û · tanh(wᵀz + b)"),
        (z + np.tanh(z @ w)[:, None] * u_hat, "b is missing: the hyperplane is wᵀz + b"),
        (z + np.tanh(z @ w - b)[:, None] * u_hat, "b enters with the wrong sign: s = wᵀz + b"),
        (h[:, None] * u_hat, "z itself is missing: z_new = z + û · tanh(wᵀz + b)"),
    ]


def _log_det_slips(z: Array, u_hat: Array, w: Array, b: float) -> Hints:
    s = z @ w + b
    h = np.tanh(s)
    t = 1 - h**2
    uw = u_hat @ w
    det = 1 + t * uw
    with np.errstate(divide="ignore", invalid="ignore"):
        return [
            (det, "this is the determinant itself, 1 + ûᵀψ: take its log"),
            (-np.log(det), "the log-det has the wrong sign: log|det ∂f/∂z| = +log|1 + ûᵀψ| (a "
                           "step that stretches space has a positive log-det)"),
            (np.log(np.abs(1 + h * uw)), "ψ uses tanh(s) where its derivative belongs: "
                                         "ψ = tanh′(s) · w = (1 − tanh²(s)) · w"),
            (np.log(np.abs(1 + (1 - h) * uw)), "tanh′(s) is 1 − tanh²(s), not 1 − tanh(s)"),
            (np.log(np.abs(1 + t * (u_hat @ u_hat))), "this uses ûᵀû: ψ points along w, so "
                                                     "ûᵀψ = tanh′(s) · ûᵀw"),
            (np.log(np.abs(1 + t * (w @ w))), "this uses wᵀw: ψ = tanh′(s) · w, and the "
                                             "determinant holds ûᵀψ = tanh′(s) · ûᵀw"),
            (np.log(np.abs(1 + t * uw / (w @ w))), "ûᵀψ is divided by ‖w‖²: "
                                                   "ψ = tanh′(s) · w as it is"),
        ]


def check_planar_step(planar_step: Callable, z: Array, u_hat: Array, w: Array, b: float) -> tuple:
    """z_new (batch, d) and log_det (batch,) of one planar step, with the slips named."""
    batch, d = z.shape
    z_ref, ld_ref = planar_reference(z, u_hat, w, b)
    z_hints, ld_hints = _z_new_slips(z, u_hat, w, b), _log_det_slips(z, u_hat, w, b)
    result = call(
        planar_step, z, u_hat, w, b,
        advice=f"z is (batch, d) = {z.shape}, u_hat and w are (d,) = {w.shape}, b is a number: "
        f"z @ w + b is (batch,) = ({batch},), and h[:, None] * u_hat is (batch, d)",
    )
    z_new, log_det = unpack(result, ["z_new", "log_det"], "planar_step(z, u_hat, w, b)")
    check_shape("z_new", z_new, (batch, d))
    check_close("z_new", z_new, z_ref, hints=z_hints, sizes={"batch": batch})
    if np.ndim(log_det) == 0:
        raise ExerciseError(
            f"log_det is a single number: it is one number per point, shape ({batch},) — each "
            "point has its own Jacobian (do not sum or average over the batch; the loss does "
            "that later, after adding log q0)"
        )
    check_shape("log_det", log_det, (batch,))
    arr = np.asarray(log_det, dtype=np.float64)
    uw = float(u_hat @ w)
    h = np.tanh(z @ w + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        no_one = np.log((1 - h**2) * uw)
        no_one_abs = np.log(np.abs((1 - h**2) * uw))
    for candidate in (no_one, no_one_abs):
        same = np.isfinite(candidate) == np.isfinite(arr)
        if same.all() and np.allclose(arr[np.isfinite(arr)], candidate[np.isfinite(candidate)],
                                      rtol=1e-6, atol=1e-9):
            raise ExerciseError(
                "log_det: the 1 + is missing: by the matrix determinant lemma "
                "det(I + û ψᵀ) = 1 + ûᵀψ, so log_det = log|1 + ûᵀψ|"
                + (" (here ûᵀw < 0, so log(ûᵀψ) gives NaN)" if uw < 0 else "")
            )
    check_close("log_det", log_det, ld_ref, hints=ld_hints, sizes={"batch": batch})
    return z_new, log_det


def check_log_det_against_jacobian(planar_step: Callable, z: Array, u_hat: Array, w: Array,
                                   b: float) -> float:
    """The learner's log_det against log|det| of the finite-difference Jacobian of their z_new."""
    batch, d = z.shape
    _, log_det = unpack(call(planar_step, z, u_hat, w, b), ["z_new", "log_det"],
                        "planar_step(z, u_hat, w, b)")
    h = 1e-6
    worst = 0.0
    for i in range(batch):
        jac = np.empty((d, d))
        for j in range(d):
            step = np.zeros_like(z)
            step[i, j] = h
            plus = np.asarray(planar_step(z + step, u_hat, w, b)[0])[i]
            minus = np.asarray(planar_step(z - step, u_hat, w, b)[0])[i]
            jac[:, j] = (plus - minus) / (2 * h)
        _, logabs = np.linalg.slogdet(jac)
        worst = max(worst, abs(logabs - float(np.asarray(log_det)[i])))
    if worst > 1e-6:
        raise ExerciseError(
            f"log_det differs from log|det J| of your own z_new's Jacobian (by finite "
            f"differences) by up to {worst:.3g}: the two must describe the same step"
        )
    return worst


# ----------------------------------------------------------------------------- 2. its backward


def _backward(dz_new, dlog_det, z, u_hat, w, b, *, logdet=True, det_inverse=True, tanh2=1.0,
              passthrough=True, dw_z=True, dw_det=True, du_det=True, ds_tprime=True,
              dh_u=True):
    """The step's gradients (dz, du_hat, dw, db) with global û, w, b — or those of a slip."""
    s = z @ w + b
    h = np.tanh(s)
    t = 1 - h**2
    uw = u_hat @ w
    det = 1 + t * uw
    dh = dz_new @ (u_hat if dh_u else w)
    du_hat = h @ dz_new
    ddet = (dlog_det / det if det_inverse else dlog_det * det) if logdet else np.zeros_like(det)
    dt = ddet * uw
    duw = np.sum(ddet * t)
    if du_det:
        du_hat = du_hat + duw * w
    dw = duw * u_hat if dw_det else np.zeros_like(w)
    dh = dh + tanh2 * dt * (-2 * h)
    ds = dh * t if ds_tprime else dh
    dz = (dz_new if passthrough else 0) + np.outer(ds, w)
    if dw_z:
        dw = dw + ds @ z
    return dz, du_hat, dw, float(np.sum(ds))


def check_planar_step_backward(planar_step_backward: Callable, dz_new: Array, dlog_det: Array,
                               z: Array, u_hat: Array, w: Array, b: float) -> tuple:
    """dz (batch, d), du_hat (d,), dw (d,), db (a number) for L = sum(dz_new * z_new) +
    sum(dlog_det * log_det), checked against minivae.flows and by finite differences."""
    batch, d = z.shape
    _, _, cache = flows.planar_forward(z, u_hat, w, b)
    dz_r, du_r, dw_r, db_r = flows.planar_backward(dz_new, dlog_det, cache)
    refs = {"dz": dz_r, "du_hat": flows.sum_to(du_r, (d,)), "dw": flows.sum_to(dw_r, (d,)),
            "db": float(db_r.sum())}
    args = (dz_new, dlog_det, z, u_hat, w, b)
    slips = {
        "the log-det's gradient is missing: log_det depends on û, w and (through tanh′) on z "
        "and b, so dlog_det must flow back too": dict(logdet=False),
        "d log(det) / d det is 1 / det: this multiplies by det": dict(det_inverse=False),
        "the derivative of tanh′(s) = 1 − h² with respect to h is −2h: this uses +2h":
            dict(tanh2=-1.0),
        "the log-det's path through tanh′(s) is missing: tanh′(s) = 1 − h² depends on h, "
        "d/dh = −2h": dict(tanh2=0.0),
        "dz misses dz_new: z_new = z + û h, so dz_new passes straight through to dz":
            dict(passthrough=False),
        "dw misses the term through s = wᵀz + b (ds summed with z)": dict(dw_z=False),
        "dw misses the term through the log-det, d(ûᵀw)/dw = û": dict(dw_det=False),
        "du_hat misses the term through the log-det, d(ûᵀw)/dû = w": dict(du_det=False),
        "ds misses tanh′(s): h = tanh(s), so ds = dh · (1 − h²)": dict(ds_tprime=False),
        "dh uses w where û belongs: z_new = z + û h, so dh = dz_newᵀû": dict(dh_u=False),
    }
    candidates = {message: _backward(*args, **flags) for message, flags in slips.items()}
    result = call(
        planar_step_backward, *args,
        advice=f"dz_new and z are (batch, d) = {z.shape}; dlog_det is (batch,) = ({batch},); "
        f"u_hat and w are (d,) = {w.shape}. Write the shape next to each line.",
    )
    dz, du_hat, dw, db = unpack(result, ["dz", "du_hat", "dw", "db"],
                                "planar_step_backward(dz_new, dlog_det, z, u_hat, w, b)")
    for name, got in (("du_hat", du_hat), ("dw", dw)):
        if np.shape(got) == (batch, d):
            raise ExerciseError(
                f"{name} has shape {np.shape(got)}, one row per point: û and w are shared by "
                f"every point, so their gradients add up the points' contributions — sum over "
                f"the batch to shape ({d},)"
            )
    if np.shape(db) == (batch,):
        raise ExerciseError(
            f"db has shape ({batch},), one value per point: b is one number shared by every "
            "point, so db is the SUM of the points' contributions"
        )
    check_shape("dz", dz, (batch, d))
    check_shape("du_hat", du_hat, (d,))
    check_shape("dw", dw, (d,))
    check_type("db", db, float)
    order = [("dz", dz, 0), ("du_hat", du_hat, 1), ("dw", dw, 2), ("db", db, 3)]
    for name, got, index in order:
        hints = [(c[index], m) for m, c in candidates.items()]
        if name == "db":
            hints.append((refs["db"] / batch, "db is averaged over the batch: b is shared by "
                                              "every point, so db is the SUM over them"))
        check_close(name, got, refs[name], hints=hints, rtol=1e-7)
    # and they are the gradients of the step (minivae's forward), by central finite differences
    z64, u64, w64, b64 = (np.array(a, dtype=np.float64) for a in (z, u_hat, w, b))

    def loss() -> float:
        z_new, log_det, _ = flows.planar_forward(z64, u64, w64, b64)
        return float(np.sum(dz_new * z_new) + np.sum(dlog_det * log_det))

    for name, got, arr in (("dz", dz, z64), ("du_hat", du_hat, u64), ("dw", dw, w64),
                           ("db", db, b64)):
        check_gradient(name, got, numerical_gradient(loss, arr), tol=1e-6)
    return dz, du_hat, dw, db


# ----------------------------------------------------------------------------- 3. the constraint


def constrain_reference(u: Array, w: Array) -> Array:
    """û = u + (m(wᵀu) − wᵀu) w / ‖w‖²,  m(a) = −1 + softplus(a)."""
    return flows.constrain_u(u, w)[0]


def _constrain_slips(u: Array, w: Array) -> Hints:
    a = float(w @ u)
    sp = float(np.logaddexp(0, a))
    norm2 = float(w @ w)
    m = -1 + sp
    with np.errstate(over="ignore"):
        return [
            (u + (m - a) * w / np.sqrt(norm2), "this divides by ‖w‖ where ‖w‖² belongs: with "
                                              "the square, ûᵀw = m(wᵀu) exactly"),
            (u + (sp - a) * w / norm2, "m(a) is −1 + softplus(a): the −1 is missing (without it "
                                      "ûᵀw > 0, a stronger constraint than invertibility needs)"),
            (u - (m - a) * w / norm2, "the correction has the wrong sign: û = u + (m(a) − a) w / "
                                     "‖w‖²"),
            (u + m * w / norm2, "the − wᵀu is missing: û = u + (m(wᵀu) − wᵀu) w / ‖w‖², so that "
                               "ûᵀw = wᵀu + m − wᵀu = m"),
            (u + (m - a) * w, "the division by ‖w‖² is missing"),
            (u + (-1 + np.logaddexp(0, u @ u) - u @ u) * w / norm2,
             "a is uᵀu: the constraint is on wᵀu"),
            (u + (-1 + np.logaddexp(0, norm2) - norm2) * w / norm2,
             "a is wᵀw: the constraint is on wᵀu"),
            (u + (-1 + np.exp(a) - a) * w / norm2, "m(a) uses exp(a): m(a) = −1 + softplus(a) = "
                                                  "−1 + log(1 + exp(a))"),
        ]


def check_constrain_u(constrain_u: Callable, pairs: list[tuple[Array, Array]]) -> list[Array]:
    """û for each (u, w): equal to minivae's, with ûᵀw = m(wᵀu) > −1, finite for any wᵀu."""
    results = []
    for u, w in pairs:
        a = float(w @ u)
        expected = constrain_reference(u, w)
        hints = _constrain_slips(u, w)
        u_hat = call(constrain_u, u, w,
                     advice=f"u and w are (d,) = {u.shape}: w @ u is a number, and so is w @ w")
        where = f"û for wᵀu = {a:.4g}, ‖w‖² = {float(w @ w):.4g}"
        check_shape(where, u_hat, u.shape)
        arr = np.asarray(u_hat, dtype=np.float64)
        if not np.all(np.isfinite(arr)) and a > 700:
            raise ExerciseError(
                f"{where}: your û is not finite ({arr}). exp({a:.0f}) overflows to inf: write "
                "softplus(a) = log(1 + exp(a)) stably, as np.logaddexp(0, a)"
            )
        check_finite(where, u_hat)
        check_close(where, u_hat, expected, hints=hints, rtol=1e-8, atol=1e-10)
        if float(arr @ w) < -1 - 1e-9:
            raise ExerciseError(f"{where}: ûᵀw = {float(arr @ w):.6g} < −1: not invertible")
        results.append(u_hat)
    return results


# ----------------------------------------------------------------------------- 4. IWAE weights


def iwae_reference(log_w: Array) -> tuple[float, Array]:
    """loss = −mean_b log (1/k) Σ_i w_ib;  dlog_w = −w̃ / batch, w̃ normalised over the k samples."""
    batch = log_w.shape[1]
    loss = float(-log_mean_exp(log_w, axis=0).mean())
    return loss, -normalized_weights(log_w, axis=0) / batch


def _iwae_slips(log_w: Array) -> tuple[Hints, Hints]:
    k, batch = log_w.shape
    loss, dlog_w = iwae_reference(log_w)
    bound = log_mean_exp(log_w, axis=0)
    m = log_w.max(axis=0)
    w = np.exp(log_w - m)
    loss_hints = [
        (loss - np.log(k), "the − log k is missing: the bound is log of the MEAN of the weights, "
                           "log((1/k) Σ_i w_i)"),
        (loss + np.log(k), "log k is subtracted twice (a mean inside the log, and − log k "
                           "after it)"),
        (float(-log_w.mean()), "this is the mean of the log-weights, the (k-sample average) "
                               "ELBO: the IWAE bound is the log of the mean of the weights"),
        (float(-(bound - m).mean()), "the maximum is subtracted but not added back: "
                                     "log mean w = m + log mean exp(log_w − m)"),
        (float(-bound.sum()), f"summed over the batch: the loss is a mean over the {batch} "
                              "examples"),
    ]
    w_tilde = normalized_weights(log_w, axis=0)
    across = ("the weights are normalised over the batch (axis 1): normalise over the k samples "
              "of each example (axis 0), so each example's weights add up to 1")
    with np.errstate(over="ignore", invalid="ignore"):
        d_hints = [
            (np.full_like(log_w, -1.0 / (k * batch)), "every sample gets the same weight 1/k: "
             "that is the gradient of the average ELBO over the k samples, no tighter than the "
             "ELBO; weight each sample by w̃_i = w_i / Σ_j w_j"),
            (-w / batch, "the weights are not normalised: divide exp(log_w − max) by its sum "
                         "over the k samples, so they add up to 1"),
            (-w / w.sum(axis=1, keepdims=True) / batch, across),
            (-normalized_weights(log_w, axis=1) / batch, across),
            (-w_tilde, "the 1/batch is missing: the loss is a mean over the batch"),
            (-w_tilde / (k * batch), "divided by k: the normalised weights already sum to 1 "
                                     "over the k samples"),
        ]
    return loss_hints, d_hints


def check_iwae_loss_and_dlogw(fn: Callable, log_w: Array) -> tuple[float, Array]:
    """loss (a number) and dlog_w (k, batch), with the stability and the weights' slips named."""
    k, batch = log_w.shape
    loss_ref, d_ref = iwae_reference(log_w)
    loss_hints, d_hints = _iwae_slips(log_w)
    result = call(fn, log_w,
                  advice=f"log_w is (k, batch) = {log_w.shape}: reduce over axis 0, the k samples")
    loss, dlog_w = unpack(result, ["loss", "dlog_w"], "iwae_loss_and_dlogw(log_w)")
    check_type("loss", loss, float)
    scale = float(np.abs(log_w).max())
    finite = np.isfinite(np.asarray(loss, dtype=np.float64)) and np.all(
        np.isfinite(np.asarray(dlog_w, dtype=np.float64)))
    if not finite:
        spread = float((log_w.max(axis=0) - log_w.max()).min())
        if scale > 700 or spread < -700:
            where = ("the log-weights are around " f"{float(log_w.mean()):.0f}"
                     if spread > -700 else
                     f"the examples' log-weights differ by up to {-spread:.0f} between examples")
            raise ExerciseError(
                f"loss or dlog_w is not finite: {where}, and exp() of such numbers "
                "underflows to 0 (or overflows). Subtract each example's own maximum over the "
                "k samples, m = log_w.max(axis=0), before exponentiating, and add it back: "
                "log mean w = m + log(Σ exp(log_w − m)) − log k"
            )
    check_close("loss", loss, loss_ref, hints=loss_hints, rtol=1e-9,
                sizes={"batch": batch, "samples": k})
    check_shape("dlog_w", dlog_w, (k, batch))
    check_close("dlog_w", dlog_w, d_ref, hints=d_hints, rtol=1e-8, atol=1e-14,
                sizes={"batch": batch, "samples": k})
    return loss, dlog_w


def check_dlogw_is_the_gradient(fn: Callable, log_w: Array) -> float:
    """dlog_w against central differences of the learner's own loss (float64)."""
    _, dlog_w = unpack(call(fn, log_w), ["loss", "dlog_w"], "iwae_loss_and_dlogw(log_w)")
    arr = np.array(log_w, dtype=np.float64)
    return check_gradient("dlog_w", dlog_w, numerical_gradient(lambda: fn(arr.copy())[0], arr),
                          tol=1e-6)
