"""KL divergences of diagonal Gaussians, in closed form, with gradients.

Following the library's convention, the returned KL is summed over latent dimensions and
averaged over the batch; the gradients are the gradients of that number.

Everywhere: ``mu``, ``logvar`` are (batch, latent); the standard deviation is
``std = exp(0.5 * logvar)`` and the variance ``exp(logvar)``.
"""

from __future__ import annotations

from typing import Any

from .accel import kernels
from .backend import Array, array_module


def kl_standard_normal_elementwise(mu: Array, logvar: Array) -> Array:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for every entry: (batch, latent) -> (batch, latent).

    kl = -1/2 * (1 + logvar - mu^2 - exp(logvar))
    """
    xp = array_module(mu)
    fused = kernels.get("kl_elementwise", xp)
    if fused is not None:  # on a GPU, the line below as one kernel (see minivae.accel.kernels)
        return fused(mu, logvar)
    return -0.5 * (1 + logvar - mu * mu - xp.exp(logvar))


def kl_standard_normal(mu: Array, logvar: Array) -> tuple[float, Array, Array]:
    """KL(q(z|x) || N(0, I)) = -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)), batch mean.

    dmu     = mu / batch
    dlogvar = 1/2 * (exp(logvar) - 1) / batch                     mu, logvar: (batch, latent)
    """
    kl_elementwise, dmu, dlogvar = kl_standard_normal_with_grads(mu, logvar)
    return float(kl_elementwise.sum()) / mu.shape[0], dmu, dlogvar


def kl_standard_normal_with_grads(mu: Array, logvar: Array) -> tuple[Array, Array, Array]:
    """The KL of every entry and the gradients of the batch-mean KL (one kernel on a GPU).

    kl      = -1/2 * (1 + logvar - mu^2 - exp(logvar))            (batch, latent), as
                                                                  kl_standard_normal_elementwise
    dmu     = mu / batch,   dlogvar = 1/2 * (exp(logvar) - 1) / batch         (batch, latent)

    Nothing is read back to the host: the VAE uses it inside a training step, where reading a
    GPU number (``float(...)``) would make the CPU wait for the GPU before it can queue the
    backward pass.
    """
    xp = array_module(mu)
    batch = mu.shape[0]
    fused = kernels.get("kl_with_grads", xp)
    if fused is not None:  # on a GPU, the lines below as one kernel (see minivae.accel.kernels)
        return fused(mu, logvar, float(batch))
    dlogvar = 0.5 * (xp.exp(logvar) - 1) / batch
    return kl_standard_normal_elementwise(mu, logvar), mu / batch, dlogvar


def kl_diag_gaussians(
    mu_q: Array, logvar_q: Array, mu_p: Array, logvar_p: Array
) -> tuple[float, Array, Array, Array, Array]:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) for diagonal Gaussians, summed over latent, batch mean.

    KL = 1/2 * sum_j [logvar_p - logvar_q + (var_q + (mu_q - mu_p)^2) / var_p - 1]

    Gradients (each divided by batch):
        dmu_q     = (mu_q - mu_p) / var_p
        dlogvar_q = 1/2 * (var_q / var_p - 1)
        dmu_p     = -(mu_q - mu_p) / var_p
        dlogvar_p = 1/2 * (1 - (var_q + (mu_q - mu_p)^2) / var_p)
    All arguments (batch, latent); the prior's may also broadcast, e.g. (latent,) or (1, latent),
    in which case its gradients are summed back to its shape.
    """
    xp = array_module(mu_q)
    batch = mu_q.shape[0]
    var_q = xp.exp(logvar_q)
    inv_var_p = xp.exp(-logvar_p)
    diff = mu_q - mu_p
    ratio = (var_q + diff * diff) * inv_var_p
    kl = float((0.5 * (logvar_p - logvar_q + ratio - 1)).sum()) / batch
    dmu_q = diff * inv_var_p / batch
    dlogvar_q = 0.5 * (var_q * inv_var_p - 1) / batch
    dmu_p = _sum_to_shape(-dmu_q, xp.shape(mu_p), xp)
    dlogvar_p = _sum_to_shape(0.5 * (1 - ratio) / batch, xp.shape(logvar_p), xp)
    return kl, dmu_q, dlogvar_q, dmu_p, dlogvar_p


def _sum_to_shape(grad: Array, shape: tuple, xp: Any) -> Array:
    """Undo broadcasting: sum ``grad`` over the axes along which an input of ``shape`` spread."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
