"""The reparameterization trick: sample z ~ N(mu, exp(logvar)) so that gradients reach mu, logvar.

Sampling z directly is not differentiable in mu and logvar. Writing the sample as a deterministic
function of the parameters and independent noise,

    z = mu + std * eps,   std = exp(0.5 * logvar),   eps ~ N(0, I),

moves the randomness into ``eps`` and gives dz/dmu = 1, dz/dlogvar = 0.5 * std * eps.
"""

from __future__ import annotations

from .accel import kernels
from .backend import Array, array_module


def reparameterize(mu: Array, logvar: Array, eps: Array) -> tuple[Array, tuple]:
    """z = mu + exp(0.5 * logvar) * eps.   mu, logvar, eps: (batch, latent) -> z: (batch, latent).

    ``eps`` is passed in, never drawn here, so that any step can be reproduced by hand or by
    another framework; draw it with ``rng.standard_normal(mu.shape)``.
    """
    if eps.shape != mu.shape:
        raise ValueError(f"eps must have the shape of mu {tuple(mu.shape)}, got {tuple(eps.shape)}")
    xp = array_module(logvar)
    fused = kernels.get("reparameterize", xp)
    if fused is not None:  # on a GPU, the two lines below as one kernel (see minivae.accel.kernels)
        z, std = fused(mu, logvar, eps)
        return z, (std, eps)
    std = xp.exp(0.5 * logvar)
    z = mu + std * eps
    return z, (std, eps)


def reparameterize_backward(dz: Array, cache: tuple) -> tuple[Array, Array]:
    """dmu = dz;   dlogvar = dz * eps * 0.5 * std   (chain rule through z = mu + std * eps).

    dz, and both results: (batch, latent).
    """
    std, eps = cache
    dmu = dz
    fused = kernels.get("reparam_backward", array_module(dz))
    if fused is not None:  # on a GPU, the line below as one kernel (see minivae.accel.kernels)
        return dmu, fused(dz, eps, std)
    dlogvar = dz * eps * (0.5 * std)
    return dmu, dlogvar
