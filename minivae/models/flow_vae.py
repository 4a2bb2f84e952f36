"""A VAE whose posterior is a diagonal Gaussian pushed through K planar flows (Rezende & Mohamed
2015), with every gradient written by hand.

    z_0 = mu(x) + exp(0.5 logvar(x)) * eps,   z_K = f_K(... f_1(z_0)),   f_k planar (minivae.flows)
    log q_K(z_K | x) = log q_0(z_0 | x) - sum_k log |det df_k/dz_{k-1}|

The flow parameters are **amortised**: the encoder outputs, for every example, the (u_k, w_k, b_k)
of each step next to mu and logvar, as in Rezende & Mohamed. Why not global parameters (one
flow shared by every x)? The true posterior p(z|x) has a different shape for every x — bent
along the decoder's curved manifold in one place, two-lobed for an ambiguous digit in another —
and one global flow can only apply the same warp everywhere, which a Gaussian encoder with a
shifted mean already nearly absorbs. The price of amortising: the encoder's last layer grows by
K (2 z_dim + 1) outputs, and the flow's gradient reaches the encoder through those outputs.

The objective (one sample of eps per example, averaged over the batch, in nats):

    loss = E_q0[ -log p(x | z_K) + beta * (log q_0(z_0 | x) - sum_k log|det_k| - log p(z_K)) ]
         = recon + beta * kl,

where ``kl`` estimates KL(q_K(z|x) || p(z)), which has no closed form for a flow — the prior and
the decoder see z_K, never z_0. With beta = 1 it is the negative ELBO. By default the estimate
splits it as KL(q_0 || p) (closed form, as in the VAE) + E_q0[log p(z_0) - log p(z_K) - sum_k
log|det_k|] (one sample): the same expectation, less noise, and K = 0 is exactly the VAE
(``base_kl='sampled'`` estimates all of it with the one sample).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..backend import Array
from ..flows import flow_backward, flow_forward
from ..importance import gaussian_log_density, standard_normal_log_density
from ..kl import kl_standard_normal_with_grads
from ..likelihoods import make_likelihood
from ..mlp import MLP
from ..reparam import reparameterize, reparameterize_backward
from ..validation import check_finite_scalar, check_positive_int
from .base import Batch, LatentVariableModel, check_hidden, stack_shapes

__all__ = ["FlowVAE"]


class FlowVAE(LatentVariableModel):
    """A VAE with a planar-flow posterior q_K(z|x), K amortised planar steps on N(mu, sigma^2).

    Args:
        x_dim: pixels per example D.
        z_dim: latent dimensions d.
        n_flows: K, the number of planar steps (0 gives a Gaussian posterior whose KL is
            estimated by one sample instead of in closed form).
        hidden: hidden layer widths of the encoder; the decoder mirrors them.
        likelihood: 'bernoulli', 'gaussian' (fixed ``obs_var``) or 'gaussian_learned'.
        beta: weight of the KL term (1 gives the ELBO; a schedule may anneal it).
        base_kl: how the KL term is estimated (both have the same expectation and gradient in
            expectation): 'closed_form' (default) writes it as KL(q_0 || p), in closed form as in
            the VAE, plus the one-sample flow correction log p(z_0) - log p(z_K) - sum log|det|,
            so K = 0 is exactly the VAE and the estimate is less noisy; 'sampled' uses one
            sample of log q_0(z_0) - sum log|det| - log p(z_K) throughout.
        activation, obs_var, seed, dtype, backend: as for :class:`~minivae.models.VAE`.

    The encoder's outputs, per example: [mu (d), logvar (d), u_1..u_K (K d), w_1..w_K (K d),
    b_1..b_K (K)]. Parameters are named ``encoder.W0, ..., decoder.W0, ...`` as in the VAE.
    """

    def __init__(
        self,
        x_dim: int,
        z_dim: int = 2,
        n_flows: int = 4,
        hidden: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        activation: str = "relu",
        obs_var: float = 1.0,
        base_kl: str = "closed_form",
        seed: int | None = 0,
        dtype: Any = "float32",
        backend: str | None = None,
    ):
        self.x_dim = check_positive_int(x_dim, "x_dim")
        self.z_dim = check_positive_int(z_dim, "z_dim")
        if isinstance(n_flows, bool) or not isinstance(n_flows, (int, np.integer)) or n_flows < 0:
            raise ValueError(f"n_flows must be an integer >= 0, got {n_flows!r}")
        self.n_flows = int(n_flows)
        self.hidden = check_hidden(hidden)
        self.likelihood = make_likelihood(likelihood, var=obs_var) if likelihood == "gaussian" \
            else make_likelihood(likelihood)
        self.obs_var = float(obs_var)
        self.beta = beta  # checked by the property below
        self.activation = activation
        if base_kl not in ("closed_form", "sampled"):
            raise ValueError(f"base_kl must be 'closed_form' or 'sampled', got {base_kl!r}")
        self.base_kl = base_kl
        d, k = self.z_dim, self.n_flows
        out = 2 * d + k * (2 * d + 1)
        self.encoder = MLP([self.x_dim, *self.hidden, out], activation, "encoder.")
        out_dim = self.likelihood.outputs_per_pixel * self.x_dim
        self.decoder = MLP([d, *reversed(self.hidden), out_dim], activation, "decoder.")
        shapes = stack_shapes(self.encoder.param_shapes(), self.decoder.param_shapes())
        self._setup(shapes, seed, dtype, backend)

    @property
    def beta(self) -> float:
        """The weight of the KL term: a finite float >= 0 (1 gives the ELBO)."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        self._beta = check_finite_scalar(value, "beta", minimum=0.0)

    def networks(self) -> list:
        return [self.encoder, self.decoder]

    def config(self) -> dict:
        return {
            "class": "FlowVAE",
            "x_dim": self.x_dim,
            "z_dim": self.z_dim,
            "n_flows": self.n_flows,
            "hidden": list(self.hidden),
            "likelihood": self.likelihood.name,
            "beta": self.beta,
            "activation": self.activation,
            "obs_var": self.obs_var,
            "base_kl": self.base_kl,
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    # -------------------------------------------------------------------------------------
    # The pieces
    # -------------------------------------------------------------------------------------

    def _split(self, h: Array) -> tuple[Array, Array, list]:
        """Encoder output (batch, 2d + K(2d+1)) -> mu, logvar (batch, d), K steps (u, w, b)."""
        d, k, n = self.z_dim, self.n_flows, h.shape[0]
        mu, logvar = h[:, :d], h[:, d : 2 * d]
        u = h[:, 2 * d : 2 * d + k * d].reshape(n, k, d)
        w = h[:, 2 * d + k * d : 2 * d + 2 * k * d].reshape(n, k, d)
        b = h[:, 2 * d + 2 * k * d :]
        return mu, logvar, [(u[:, i], w[:, i], b[:, i]) for i in range(k)]

    def flow_posterior(self, x: Any) -> tuple[Array, Array, list]:
        """q_0's mu, logvar (batch, d) and the K flow steps (u, w (batch, d), b (batch,)) for x."""
        h, _ = self.encoder.forward(self.params, self.prepare(x).x)
        return self._split(h)

    def posterior(self, x: Any) -> tuple[Array, Array]:
        """q_0(z_0|x): mu, logvar, each (batch, z_dim) — the Gaussian BEFORE the flow."""
        mu, logvar, _ = self.flow_posterior(x)
        return mu, logvar

    def decoder_output(self, z: Any) -> Array:
        """The decoder's raw output for z: logits, a mean, or [mean, logvar] (see likelihoods)."""
        return self.decoder.forward(self.params, self.check_z(z))[0]

    def posterior_sample(self, x: Any, eps: Any) -> tuple[Array, Array, Array]:
        """z_0, z_K and log q_K(z_K|x) for noise eps (batch, d) or (k, batch, d).

        Returns z_0 and z_K shaped like eps and log q_K of shape eps.shape[:-1].
        """
        mu, logvar, steps = self.flow_posterior(x)
        eps = backend.to_device(eps, self.xp).astype(self.dtype, copy=False)
        if eps.shape[-1] != self.z_dim or tuple(eps.shape[-2:-1]) != (mu.shape[0],):
            raise ValueError(
                f"eps must be (batch, z_dim) = ({mu.shape[0]}, {self.z_dim}) or "
                f"(k, batch, z_dim), got {tuple(eps.shape)}"
            )
        z0 = mu + self.xp.exp(0.5 * logvar) * eps
        z_k, log_det, _ = flow_forward(z0, steps)
        return z0, z_k, gaussian_log_density(eps, logvar) - log_det

    def posterior_mean(self, x: Any, k: int = 64, rng: Any = None) -> Array:
        """E_q[z_K | x] by k samples (the flow moves the mean away from mu): (batch, z_dim).

        For active units (:func:`minivae.metrics.active_units`), which need posterior means.
        """
        k = check_positive_int(k, "k")
        batch = self.prepare(x)
        rng = self.rng if rng is None else rng
        eps = rng.standard_normal((k, len(batch), self.z_dim))
        _, z_k, _ = self.posterior_sample(batch, eps)
        return z_k.mean(axis=0)

    def reconstruct(self, x: Any) -> Array:
        """The mean of p(x | z_K) at eps = 0: z_0 = mu, pushed through the flow. (batch, x_dim)."""
        mu, _, steps = self.flow_posterior(x)
        z_k, _, _ = flow_forward(mu, steps)
        return self.decode(z_k)

    def kl_per_latent(self, x: Any) -> Array:
        """Refused: a flow posterior does not factorise over latents, so there is no KL per latent.

        Use :meth:`posterior_mean` with :func:`minivae.metrics.active_units` instead.
        """
        raise TypeError(
            "FlowVAE.kl_per_latent: a planar-flow posterior mixes the latents, so its KL does "
            "not split into one term per latent; use active_units(model.posterior_mean(x))"
        )

    # -------------------------------------------------------------------------------------
    # The objective and its gradients
    # -------------------------------------------------------------------------------------

    def objective(self, batch: Batch, eps: Array, need_grads: bool) -> tuple[dict, Any]:
        """loss = recon + beta * kl with z_K from the flow, and every gradient.

        recon = mean_b -log p(x_b | z_K,b);   kl = mean_b [KL(q_0,b || p) + log p(z_0,b)
        - log p(z_K,b) - sum_k log|det_k,b|] ('closed_form'; 'sampled': log q_0(z_0,b) in place of
        the first two), each term per example (a log-determinant belongs to its own example).
        Returns ``({"loss", "recon", "kl", "log_det"}, grads)``; grads is None unless
        ``need_grads``. ``log_det`` is the batch mean of sum_k log|det_k|.
        """
        xp, params, grads = self.xp, self.params, self.grads
        x, n, beta = batch.x, len(batch), self.beta

        # forward: x -> [mu, logvar, flow] -> z_0 -> z_K -> decoder -> -log p(x|z_K); log q, log p
        h, enc_cache = self.encoder.forward(params, x)
        mu, logvar, steps = self._split(h)
        z0, reparam_cache = reparameterize(mu, logvar, eps)
        z_k, log_det, flow_caches = flow_forward(z0, steps)
        out, dec_cache = self.decoder.forward(params, z_k)
        log_pz = standard_normal_log_density(z_k)  # the prior sees z_K
        if self.base_kl == "closed_form":
            # KL(q_0 || p) in closed form + the one-sample flow correction (same expectation)
            kl_base, dmu_kl, dlogvar_kl = kl_standard_normal_with_grads(mu, logvar)
            kl_b = kl_base.sum(axis=1) + standard_normal_log_density(z0) - log_pz - log_det
        else:
            kl_b = gaussian_log_density(eps, logvar) - log_det - log_pz  # (batch,)
        kl = float(kl_b.sum()) / n
        terms = {"log_det": float(log_det.sum()) / n}
        if not need_grads:
            recon = float(-self.likelihood.log_prob(out, x, batch.mask).sum()) / n
            return {"loss": recon + beta * kl, "recon": recon, "kl": kl, **terms}, None
        recon, dout = self.likelihood.nll(out, x, batch.mask)

        # backward: decoder -> dz_K (+ the prior's gradient) -> flow -> dz_0 -> mu, logvar
        dz_k, _ = self.decoder.backward(dout, dec_cache, grads)
        dz_k = dz_k + (beta / n) * z_k  # d/dz_K of beta * mean(-log p(z_K)) = beta * z_K / n
        # d loss / d log_det_b = -beta / n for every example b (the sum over steps shares it)
        dz0, step_grads = flow_backward(dz_k, -beta / n, flow_caches)
        if self.base_kl == "closed_form":
            # + log p(z_0) = -z_0^2 / 2 in the correction: d/dz_0 = -z_0
            dmu, dlogvar = reparameterize_backward(dz0 - (beta / n) * z0, reparam_cache)
            dmu = dmu + beta * dmu_kl  # the closed form's gradients (already divided by n)
            dlogvar = dlogvar + beta * dlogvar_kl
        else:
            dmu, dlogvar = reparameterize_backward(dz0, reparam_cache)
            # log q_0 = -1/2 sum(eps^2 + log 2 pi + logvar): its own gradient, -1/2 per latent
            dlogvar = dlogvar - 0.5 * beta / n
        parts = [dmu, dlogvar]
        if steps:
            parts.append(xp.stack([g[0] for g in step_grads], axis=1).reshape(n, -1))
            parts.append(xp.stack([g[1] for g in step_grads], axis=1).reshape(n, -1))
            parts.append(xp.stack([g[2] for g in step_grads], axis=1))
        self.encoder.backward(xp.concatenate(parts, axis=1), enc_cache, grads, need_dx=False)
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl, **terms}, grads

    # -------------------------------------------------------------------------------------
    # Importance sampling with the flow posterior as the proposal
    # -------------------------------------------------------------------------------------

    def posterior_sampler(self, batch: Batch) -> Callable[[Array], tuple[Array, Array]]:
        """q_K(z|x) as a sampler for importance sampling: eps (m, batch, z_dim) ->
        (z_K, log q_K(z_K|x)) with log q_K = log q_0(z_0|x) - sum_k log|det_k|, so
        :meth:`log_likelihood` (the IWAE bound) holds for the flow posterior."""
        mu, logvar, steps = self.flow_posterior(batch)
        std = self.xp.exp(0.5 * logvar)

        def draw(eps: Array) -> tuple[Array, Array]:
            z_k, log_det, _ = flow_forward(mu + std * eps, steps)
            return z_k, gaussian_log_density(eps, logvar) - log_det

        return draw
