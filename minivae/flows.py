"""Planar flows (Rezende & Mohamed 2015): a richer posterior than a diagonal Gaussian, by hand.

A planar step moves every point along one direction û, by an amount that depends on which side
of a hyperplane (w, b) it lies:

    f(z) = z + û · tanh(wᵀz + b)                                     z, û, w: (d,);  b: scalar
    log |det ∂f/∂z| = log |1 + ûᵀψ|,    ψ = tanh′(wᵀz + b) · w       (matrix determinant lemma)

f is invertible when ûᵀw ≥ −1. Any free vector u is mapped to one that satisfies it:

    û = u + (m(wᵀu) − wᵀu) · w / ‖w‖²,     m(a) = −1 + softplus(a)    (note the SQUARED norm)

so that ûᵀw = m(wᵀu) > −1 exactly. Since tanh′ ∈ (0, 1], 1 + ûᵀψ = 1 + tanh′ · m > 0: the
absolute value is never needed, and the log-determinant is finite for any u, w ≠ 0, b.

K steps z_0 → z_1 → ... → z_K give the density of z_K by the change of variables

    log q_K(z_K) = log q_0(z_0) − Σ_k log |det ∂f_k/∂z_{k−1}|.

Shapes. Every function broadcasts: ``z`` is (..., d) (a batch, or (k, batch, d) for k samples),
``u``, ``w`` are (d,) for **global** parameters (one flow for every point, as in the 2-D toy of
lecture 09) or (..., d) for **amortised** ones (a flow per example, produced by an encoder, as in
:class:`minivae.models.FlowVAE`); ``b`` is () or (...,). Backward passes return gradients with
the broadcast shape (one per point); :func:`sum_to` sums them to a parameter's shape.

Every backward is written by hand and checked by finite differences in float64
(tests/library/test_flows.py), including the û reparameterisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend
from .backend import Array, array_module
from .importance import standard_normal_log_density
from .layers import sigmoid, softplus
from .params import Parameters
from .validation import check_finite_scalar, check_positive_int

__all__ = [
    "FlowStep",
    "PlanarFlow",
    "TARGETS",
    "banana_log_density",
    "constrain_u",
    "constrain_u_backward",
    "flow_backward",
    "flow_forward",
    "planar_backward",
    "planar_forward",
    "ring_log_density",
    "sum_to",
]

#: The parameters of one step, (u, w, b): u and w (..., d), b (...,) — or (d,), (d,), () globally.
FlowStep = tuple[Array, Array, Array]


# ---------------------------------------------------------------------------------------------
# The invertibility constraint: u -> û with ûᵀw = m(wᵀu) > -1
# ---------------------------------------------------------------------------------------------


def constrain_u(u: Array, w: Array) -> tuple[Array, tuple]:
    """û = u + (m(wᵀu) − wᵀu) · w / ‖w‖²,  m(a) = −1 + softplus(a), so ûᵀw = m(wᵀu) > −1.

    u, w: (..., d), broadcastable. Returns û (broadcast shape) and the cache for the backward.
    w must not be 0 (the direction of the correction is w / ‖w‖²).
    """
    a = (w * u).sum(axis=-1, keepdims=True)  # wᵀu, (..., 1)
    norm2 = (w * w).sum(axis=-1, keepdims=True)  # ‖w‖², (..., 1)
    c = (softplus(a) - 1.0 - a) / norm2  # (m(a) − a) / ‖w‖²
    u_hat = u + c * w
    return u_hat, (u, w, a, norm2, c)


def constrain_u_backward(du_hat: Array, cache: tuple) -> tuple[Array, Array]:
    """Gradients through û = u + c·w with c = (m(a) − a)/‖w‖², a = wᵀu, m′(a) = sigmoid(a):

        dc  = du_hatᵀw                     da = dc · (sigmoid(a) − 1) / ‖w‖²
        dn2 = −dc · c / ‖w‖²               (n2 = ‖w‖²)
        du  = du_hat + da · w
        dw  = c · du_hat + da · u + 2 · dn2 · w

    du_hat: (..., d). Returns (du, dw), each of the broadcast shape (..., d).
    """
    u, w, a, norm2, c = cache
    dc = (du_hat * w).sum(axis=-1, keepdims=True)
    da = dc * (sigmoid(a) - 1.0) / norm2
    dnorm2 = -dc * c / norm2
    du = du_hat + da * w
    dw = c * du_hat + da * u + 2.0 * dnorm2 * w
    return du, dw


# ---------------------------------------------------------------------------------------------
# One planar step
# ---------------------------------------------------------------------------------------------


def planar_forward(z: Array, u_hat: Array, w: Array, b: Array) -> tuple[Array, Array, tuple]:
    """One planar step with an already constrained û:

        s = wᵀz + b,   h = tanh(s),   z_new = z + û · h
        log_det = log(1 + (1 − h²) · ûᵀw)          (= log |1 + ûᵀψ|, ψ = (1 − h²) · w)

    z: (..., d); u_hat, w: (..., d) or (d,); b: (...,) or (). Returns z_new (..., d), log_det
    (...,) — one per point, never summed over a batch — and the cache for :func:`planar_backward`.
    """
    xp = array_module(z)
    s = (w * z).sum(axis=-1) + b  # (...,)
    h = xp.tanh(s)
    z_new = z + u_hat * h[..., None]
    uw = (u_hat * w).sum(axis=-1)  # ûᵀw, (...,) or ()
    t = 1.0 - h * h  # tanh′(s)
    det = 1.0 + t * uw  # > 0 when ûᵀw > -1
    log_det = xp.log(det)
    return z_new, log_det, (z, u_hat, w, h, t, uw, det)


def planar_backward(dz_new: Array, dlog_det: Array, cache: tuple) -> tuple[Array, ...]:
    """Gradients of one planar step, given dL/dz_new (..., d) and dL/dlog_det (...,) or a scalar:

        through z_new = z + û h:        dz = dz_new,  dû = dz_new · h,  dh = dz_newᵀû
        through log(1 + t · ûᵀw):       dt = g ûᵀw / det,  d(ûᵀw) = g t / det   (g = dlog_det)
                                        dû += d(ûᵀw) w,  dw = d(ûᵀw) û,  dh += −2 h dt
        through h = tanh(s):            ds = dh · t
        through s = wᵀz + b:            dz += ds w,  dw += ds z,  db = ds

    Returns (dz, du_hat, dw, db): (..., d), (..., d), (..., d), (...,), one per point
    (sum them over the points for global parameters: :func:`sum_to`).
    """
    z, u_hat, w, h, t, uw, det = cache
    g = dlog_det
    dh = (dz_new * u_hat).sum(axis=-1)
    ddet = g / det
    dt = ddet * uw
    duw = ddet * t
    dh = dh - 2.0 * h * dt
    ds = dh * t
    du_hat = dz_new * h[..., None] + duw[..., None] * w
    dw = duw[..., None] * u_hat + ds[..., None] * z
    dz = dz_new + ds[..., None] * w
    db = ds
    return dz, du_hat, dw, db


# ---------------------------------------------------------------------------------------------
# K steps
# ---------------------------------------------------------------------------------------------


def flow_forward(z0: Array, steps: Sequence[FlowStep]) -> tuple[Array, Array, list]:
    """z_K and Σ_k log|det ∂f_k/∂z_{k−1}| for K planar steps, each with a free (u, w, b).

    Each step constrains its u (:func:`constrain_u`) and applies :func:`planar_forward`.
    z0: (..., d); steps: K tuples (u, w, b). Returns z_K (..., d), the summed log-determinant
    (...,) and the caches for :func:`flow_backward`. K = 0 is the identity (log_det 0).
    """
    xp = array_module(z0)
    z = z0
    log_det = xp.zeros(z0.shape[:-1], dtype=z0.dtype)
    caches = []
    for u, w, b in steps:
        u_hat, constraint_cache = constrain_u(u, w)
        z, step_log_det, step_cache = planar_forward(z, u_hat, w, b)
        log_det = log_det + step_log_det
        caches.append((constraint_cache, step_cache))
    return z, log_det, caches


def flow_backward(
    dz_K: Array, dlog_det: Array | float, caches: list
) -> tuple[Array, list[tuple[Array, Array, Array]]]:
    """Backward through K planar steps, from the last to the first.

    dz_K: dL/dz_K (..., d); dlog_det: dL/d(Σ log det), (...,) or a scalar (the same for every
    step, since the loss sees only the sum). Returns dz_0 (..., d) and, per step, (du, dw, db)
    for the free u (through the constraint), w (through the step and the constraint) and b,
    each per point.
    """
    dz = dz_K
    grads: list[tuple[Array, Array, Array]] = []
    for constraint_cache, step_cache in reversed(caches):
        dz, du_hat, dw_step, db = planar_backward(dz, dlog_det, step_cache)
        du, dw_constraint = constrain_u_backward(du_hat, constraint_cache)
        grads.append((du, dw_step + dw_constraint, db))
    grads.reverse()
    return dz, grads


def sum_to(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum a per-point gradient over its leading axes down to a parameter's ``shape``."""
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"cannot sum a gradient of shape {grad.shape} to {shape}")
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


# ---------------------------------------------------------------------------------------------
# Unnormalised 2-D target densities (lecture 09's toy, after Rezende & Mohamed's Figure 3)
# ---------------------------------------------------------------------------------------------


def ring_log_density(z: Array) -> tuple[Array, Array]:
    """Rezende & Mohamed's U₁, a ring of radius 2 with two lobes; log p̃ = −U₁ (unnormalised):

        U₁(z) = ½ ((‖z‖ − 2)/0.4)² − log(exp(−½((z₁ − 2)/0.6)²) + exp(−½((z₁ + 2)/0.6)²))

    z: (..., 2). Returns (log p̃ (...,), ∂ log p̃/∂z (..., 2)).
    """
    xp = array_module(z)
    _check_2d(z)
    z1 = z[..., 0]
    r = xp.sqrt((z * z).sum(axis=-1))
    safe_r = xp.where(r > 0, r, 1.0)
    ring = 0.5 * ((r - 2.0) / 0.4) ** 2
    a = -0.5 * ((z1 - 2.0) / 0.6) ** 2
    c = -0.5 * ((z1 + 2.0) / 0.6) ** 2
    top = xp.maximum(a, c)
    lobes = top + xp.log(xp.exp(a - top) + xp.exp(c - top))
    log_p = -ring + lobes
    # d ring / dz = (r - 2) / 0.16 * z / r ; d lobes / dz1 = softmax-weighted da/dz1, dc/dz1
    dring = ((r - 2.0) / 0.16 / safe_r)[..., None] * z
    p_a = 1.0 / (1.0 + xp.exp(c - a))
    dlobes_1 = p_a * (-(z1 - 2.0) / 0.36) + (1.0 - p_a) * (-(z1 + 2.0) / 0.36)
    grad = -dring
    grad = grad + xp.stack([dlobes_1, xp.zeros_like(dlobes_1)], axis=-1)
    return log_p, grad


def banana_log_density(z: Array) -> tuple[Array, Array]:
    """A banana: z₁ ~ N(0, 1.5²) and z₂ | z₁ ~ N(z₁²/2 − 1.5, 0.5²), unnormalised:

        log p̃(z) = −½ (z₁ / 1.5)² − ½ ((z₂ − z₁²/2 + 1.5) / 0.5)²

    z: (..., 2). Returns (log p̃ (...,), ∂ log p̃/∂z (..., 2)).
    """
    xp = array_module(z)
    _check_2d(z)
    z1, z2 = z[..., 0], z[..., 1]
    v = (z2 - 0.5 * z1 * z1 + 1.5) / 0.5
    log_p = -0.5 * (z1 / 1.5) ** 2 - 0.5 * v * v
    d1 = -z1 / 2.25 + (v / 0.5) * z1  # −z₁/1.5² − v · ∂v/∂z₁, ∂v/∂z₁ = −z₁/0.5
    d2 = -v / 0.5
    return log_p, xp.stack([d1, d2], axis=-1)


#: The toy targets by name: name -> function z (..., 2) -> (log p̃, ∂ log p̃/∂z).
TARGETS = {"ring": ring_log_density, "banana": banana_log_density}


def _check_2d(z: Array) -> None:
    if z.shape[-1] != 2:
        raise ValueError(f"z must be (..., 2) for a 2-D target density, got shape {z.shape}")


# ---------------------------------------------------------------------------------------------
# A flow with global parameters, fitted to an unnormalised density (lecture 09's toy)
# ---------------------------------------------------------------------------------------------


class PlanarFlow:
    """K planar steps with global parameters u_k, w_k (d,), b_k, on q_0 = N(0, I).

    Fitted to an unnormalised target p̃ by minimising (Rezende & Mohamed 2015, section 6.1)

        loss = E_{z_0 ~ q_0}[ log q_0(z_0) − Σ_k log|det ∂f_k/∂z_{k−1}| − β log p̃(z_K) ]

    which is KL(q_K ‖ p) − log Z for β = 1 (Z the unknown normaliser); β < 1 anneals. Parameters
    are named ``flow.u{k}``, ``flow.w{k}``, ``flow.b{k}`` in one :class:`Parameters`, so
    :class:`minivae.optim.Adam` trains them.

    Args:
        dim: the dimension d of z.  n_steps: K (0 is q_0 itself).
        init_scale: the standard deviation of the initial u and w (b starts at 0).
        seed: seeds the initial parameters and the generator for eps.
        dtype, backend: as for the models.
    """

    def __init__(
        self,
        dim: int = 2,
        n_steps: int = 8,
        init_scale: float = 0.5,
        seed: int | None = 0,
        dtype: Any = "float64",
        backend_name: str | None = None,
    ):
        self.dim = check_positive_int(dim, "dim")
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
            raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
        self.n_steps = int(n_steps)
        init_scale = check_finite_scalar(init_scale, "init_scale", minimum=0.0)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self.dtype = dtype
        self.xp = backend.get(backend_name)
        shapes: dict[str, tuple[int, ...]] = {}
        for k in range(self.n_steps):
            shapes[f"flow.u{k}"] = (self.dim,)
            shapes[f"flow.w{k}"] = (self.dim,)
            shapes[f"flow.b{k}"] = ()
        self.params = Parameters.zeros(shapes, dtype, self.xp)
        self.grads = self.params.zeros_like()
        host = np.random.default_rng(seed)
        for k in range(self.n_steps):
            self.params[f"flow.u{k}"] = init_scale * host.standard_normal(self.dim)
            self.params[f"flow.w{k}"] = init_scale * host.standard_normal(self.dim)
        self.rng = backend.default_rng(None if seed is None else seed + 1, self.xp)

    def steps(self) -> list[FlowStep]:
        """The K (u, w, b) of the flow, in order."""
        p = self.params
        return [(p[f"flow.u{k}"], p[f"flow.w{k}"], p[f"flow.b{k}"]) for k in range(self.n_steps)]

    def forward(self, z0: Any) -> tuple[Array, Array]:
        """z_K and Σ log|det| for z_0 (..., d)."""
        z0 = backend.to_device(z0, self.xp).astype(self.dtype, copy=False)
        z, log_det, _ = flow_forward(z0, self.steps())
        return z, log_det

    def sample(self, n: int, rng: Any = None) -> tuple[Array, Array, Array]:
        """n draws: (z_0, z_K, log q_K(z_K)), each (n, d), (n, d), (n,)."""
        n = check_positive_int(n, "n")
        rng = self.rng if rng is None else rng
        eps = backend.to_device(rng.standard_normal((n, self.dim)), self.xp).astype(self.dtype)
        z, log_det = self.forward(eps)
        return eps, z, standard_normal_log_density(eps) - log_det

    def objective(
        self, eps: Any, log_target: Any, beta: float = 1.0, need_grads: bool = True
    ) -> tuple[dict, Parameters | None]:
        """The loss above for z_0 = eps (n, d) and its gradient for every parameter.

        ``log_target``: a name of :data:`TARGETS` or a function z -> (log p̃, ∂ log p̃/∂z).
        Returns ({"loss", "log_q", "log_det", "log_target"} as batch means, grads or None).
        """
        fn = TARGETS[log_target] if isinstance(log_target, str) else log_target
        beta = check_finite_scalar(beta, "beta", minimum=0.0)
        z0 = backend.to_device(eps, self.xp).astype(self.dtype, copy=False)
        if z0.ndim != 2 or z0.shape[1] != self.dim:
            raise ValueError(f"eps must be (n, {self.dim}), got shape {tuple(z0.shape)}")
        n = z0.shape[0]
        z, log_det, caches = flow_forward(z0, self.steps())
        log_p, dlog_p = fn(z)
        log_q0 = standard_normal_log_density(z0)
        terms = {
            "loss": float((log_q0 - log_det - beta * log_p).mean()),
            "log_q": float((log_q0 - log_det).mean()),
            "log_det": float(log_det.mean()),
            "log_target": float(log_p.mean()),
        }
        if not need_grads:
            return terms, None
        # loss = mean(log q0 − Σ log det − β log p̃(z_K)): q0 does not depend on the parameters
        _, step_grads = flow_backward(-beta * dlog_p / n, -1.0 / n, caches)
        for k, (du, dw, db) in enumerate(step_grads):
            self.grads[f"flow.u{k}"] = sum_to(du, (self.dim,))
            self.grads[f"flow.w{k}"] = sum_to(dw, (self.dim,))
            self.grads[f"flow.b{k}"] = sum_to(db, ())
        return terms, self.grads


