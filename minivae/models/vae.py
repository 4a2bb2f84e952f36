"""The Variational Autoencoder (Kingma & Welling 2014), with every gradient written by hand.

Encoder q(z|x) = N(mu(x), diag(exp(logvar(x)))): an MLP whose 2 * latent outputs are [mu, logvar].
Decoder p(x|z): an MLP whose outputs parameterise the likelihood (see :mod:`minivae.likelihoods`).
Prior p(z) = N(0, I).

The objective, per example, is the negative ELBO with a weight beta on the KL term,

    loss(x) = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)),

estimated with one reparameterized sample z = mu + exp(0.5 * logvar) * eps. As everywhere in the
library: summed over pixels and latent dimensions, averaged over the batch, in nats. With beta = 1,
``loss = recon + kl`` is the negative ELBO, an upper bound on -log p(x).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..kl import kl_standard_normal_elementwise, kl_standard_normal_with_grads
from ..likelihoods import make_likelihood
from ..mlp import MLP
from ..params import Parameters
from ..regularizers import beta_kl
from ..reparam import reparameterize, reparameterize_backward
from ..validation import check_finite_scalar, check_positive_int
from .base import Model

Array = Any
LOG_2PI = math.log(2 * math.pi)


class VAE(Model):
    """A VAE with MLP encoder and decoder.

    Args:
        x_dim: pixels per example D.
        z_dim: latent dimensions.
        hidden: hidden layer widths of the encoder; the decoder mirrors them.
        likelihood: 'bernoulli' (logits), 'gaussian' (fixed variance ``obs_var``) or
            'gaussian_learned' (a mean and a log-variance per pixel).
        beta: weight of the KL term (1 gives the ELBO).
        activation: hidden activation, a name from :data:`minivae.layers.ACTIVATIONS`.
        obs_var: the fixed variance of the 'gaussian' likelihood.
        seed: seeds the initial weights and the model's generator for eps.
        dtype: 'float32' (default, fast) or 'float64' (gradient checks).
        backend: 'numpy' or 'cupy'; None takes :func:`minivae.backend.use`'s default.

    Parameters are named ``encoder.W0, encoder.b0, ..., decoder.W0, ...``; W is (n_in, n_out).
    """

    def __init__(
        self,
        x_dim: int,
        z_dim: int = 2,
        hidden: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        activation: str = "relu",
        obs_var: float = 1.0,
        seed: int | None = 0,
        dtype: Any = "float32",
        backend: str | None = None,
    ):
        self.x_dim = check_positive_int(x_dim, "x_dim")
        self.z_dim = check_positive_int(z_dim, "z_dim")
        self.hidden = tuple(check_positive_int(h, "hidden width") for h in hidden)
        self.likelihood = make_likelihood(likelihood, var=obs_var) if likelihood == "gaussian" \
            else make_likelihood(likelihood)
        self.obs_var = float(obs_var)
        self.beta = beta  # checked by the property below
        self.activation = activation
        #: How the KL enters the loss: ``regularizer(kl_per_latent, beta) -> (penalty, weight)``.
        self.regularizer: Callable[[Array, float], tuple[float, Array]] = beta_kl
        self.encoder = MLP([self.x_dim, *self.hidden, 2 * self.z_dim], activation, "encoder.")
        out_dim = self.likelihood.outputs_per_pixel * self.x_dim
        self.decoder = MLP([self.z_dim, *reversed(self.hidden), out_dim], activation, "decoder.")
        shapes = {**self.encoder.param_shapes(), **self.decoder.param_shapes()}
        self._setup(shapes, seed, dtype, backend)

    @property
    def beta(self) -> float:
        """The weight of the KL term: a finite float >= 0 (1 gives the ELBO)."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        # Checked on every assignment, not only in __init__: a schedule or a notebook sets
        # model.beta mid-training, and a NaN or negative beta there would otherwise surface as a
        # NaN loss (or a KL that grows without bound) many steps later.
        self._beta = check_finite_scalar(value, "beta", minimum=0.0)

    def _mlps(self) -> list:
        return [self.encoder, self.decoder]

    def config(self) -> dict:
        return {
            "class": "VAE",
            "x_dim": self.x_dim,
            "z_dim": self.z_dim,
            "hidden": list(self.hidden),
            "likelihood": self.likelihood.name,
            "beta": self.beta,
            "activation": self.activation,
            "obs_var": self.obs_var,
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    # -------------------------------------------------------------------------------------
    # The pieces
    # -------------------------------------------------------------------------------------

    def encode(self, x: Array) -> tuple[Array, Array]:
        """q(z|x): mu, logvar, each (batch, z_dim), for x (batch, x_dim)."""
        x = self._check_x(x)
        h, _ = self.encoder.forward(self.params, x)
        return h[:, : self.z_dim], h[:, self.z_dim :]

    def decode(self, z: Array) -> Array:
        """The mean of p(x|z), (batch, x_dim), for z (batch, z_dim): probabilities or means."""
        z = self._check_z(z)
        out, _ = self.decoder.forward(self.params, z)
        return self.likelihood.mean(out)

    def decoder_output(self, z: Array) -> Array:
        """The decoder's raw output for z: logits, a mean, or [mean, logvar] (see likelihoods)."""
        z = self._check_z(z)
        return self.decoder.forward(self.params, z)[0]

    def reconstruct(self, x: Array) -> Array:
        """x_hat = mean of p(x | z = mu(x)), the posterior-mean reconstruction: (batch, x_dim)."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def sample(self, n: int, rng: Any = None) -> Array:
        """n images decoded from the prior: z ~ N(0, I), returns the mean of p(x|z), (n, x_dim)."""
        n = check_positive_int(n, "n")
        rng = self.rng if rng is None else rng
        z = rng.standard_normal((n, self.z_dim))
        return self.decode(backend.to_device(z, self.xp).astype(self.dtype))

    def draw_eps(self, batch: int, rng: Any = None) -> Array:
        """eps ~ N(0, I) of shape (batch, z_dim), from ``rng`` or the model's own generator."""
        rng = self.rng if rng is None else rng
        # to_device: a NumPy generator may drive a CuPy model (the draws are then copied over)
        eps = backend.to_device(rng.standard_normal((batch, self.z_dim)), self.xp)
        return eps.astype(self.dtype, copy=False)

    def _check_z(self, z: Array) -> Array:
        from ..validation import check_data

        z = backend.to_device(check_data(z, "z", dim=self.z_dim), self.xp)
        return z.astype(self.dtype, copy=False)

    # -------------------------------------------------------------------------------------
    # The objective and its gradients
    # -------------------------------------------------------------------------------------

    def loss_and_grads(self, x: Array, eps: Array | None = None) -> tuple[dict, Parameters]:
        """The minibatch loss, its parts, and the gradient of the loss for every parameter.

        x: (batch, x_dim). eps: (batch, z_dim) noise for the reparameterization; drawn from the
        model's generator when None. Returns ``({"loss", "recon", "kl"}, grads)`` where
        loss = recon + beta * kl (the negative ELBO at beta = 1) and ``grads`` is ``self.grads``.
        """
        x = self._check_x(x)
        self.likelihood.check_data(x)
        if eps is not None:
            eps = self._check_eps(eps, x.shape[0])
        return self._loss_and_grads(x, eps)

    def _check_eps(self, eps: Array, batch: int) -> Array:
        from ..validation import check_data

        eps = check_data(eps, "eps", dim=self.z_dim)
        if eps.shape[0] != batch:
            raise ValueError(
                f"eps must be (batch, z_dim) = ({batch}, {self.z_dim}), got {tuple(eps.shape)}"
            )
        return backend.to_device(eps, self.xp).astype(self.dtype, copy=False)

    def _loss_and_grads(
        self, x: Array, eps: Array | None, nll: Callable | None = None
    ) -> tuple[dict, Parameters]:
        """loss_and_grads without the input checks (the training loop checks the data once).

        ``nll(out, x) -> (recon, dout)`` replaces ``self.likelihood.nll``; training with missing
        data passes the masked likelihood here (:mod:`minivae.missing`).
        """
        nll = self.likelihood.nll if nll is None else nll
        xp, params, grads = self.xp, self.params, self.grads
        batch, z_dim = x.shape[0], self.z_dim
        if eps is None:
            eps = self.draw_eps(batch)

        # forward: x -> [mu, logvar] -> z -> decoder output -> -log p(x|z), KL
        h, enc_cache = self.encoder.forward(params, x)
        mu, logvar = h[:, :z_dim], h[:, z_dim:]
        z, reparam_cache = reparameterize(mu, logvar, eps)
        out, dec_cache = self.decoder.forward(params, z)
        recon, dout = nll(out, x)
        # the KL and its gradients in one pass (one kernel on a GPU), the gradients kept for later
        kl_elementwise, dmu_kl, dlogvar_kl = kl_standard_normal_with_grads(mu, logvar)
        kl_per_latent = kl_elementwise.mean(axis=0)
        penalty, weight = self.regularizer(kl_per_latent, self.beta)

        # backward: decoder -> reparameterization -> (+ KL gradient) -> encoder
        dz, _ = self.decoder.backward(dout, dec_cache, grads)
        dmu, dlogvar = reparameterize_backward(dz, reparam_cache)
        dh = xp.concatenate([dmu + weight * dmu_kl, dlogvar + weight * dlogvar_kl], axis=1)
        self.encoder.backward(dh, enc_cache, grads, need_dx=False)  # x needs no gradient

        kl = float(kl_per_latent.sum())
        return {"loss": recon + penalty, "recon": recon, "kl": kl}, grads

    def loss(self, x: Array, eps: Array | None = None) -> dict:
        """The loss and its parts for x (batch, x_dim), with one sampled z per example.

        This is a stochastic estimate, like the training loss: the ELBO needs a sample of z,
        and using z = mu instead would not be the ELBO.
        """
        x = self._check_x(x)
        self.likelihood.check_data(x)
        return self._loss(x, eps)

    def _loss(self, x: Array, eps: Array | None, log_prob: Callable | None = None) -> dict:
        """loss without the data checks; ``log_prob(out, x) -> (batch,)`` replaces the
        likelihood's (the masked one, for missing data)."""
        log_prob = self.likelihood.log_prob if log_prob is None else log_prob
        if eps is None:
            eps = self.draw_eps(x.shape[0])
        else:
            eps = self._check_eps(eps, x.shape[0])
        mu, logvar = self._encode_unchecked(x)
        z, _ = reparameterize(mu, logvar, eps)
        out, _ = self.decoder.forward(self.params, z)
        recon = float(-log_prob(out, x).sum()) / x.shape[0]
        kl_per_latent = kl_standard_normal_elementwise(mu, logvar).mean(axis=0)
        penalty, _ = self.regularizer(kl_per_latent, self.beta)
        return {"loss": recon + penalty, "recon": recon, "kl": float(kl_per_latent.sum())}

    def kl_per_latent(self, x: Array) -> Array:
        """The KL of each latent dimension averaged over x: (z_dim,). Near 0: an inactive unit."""
        mu, logvar = self.encode(x)
        return kl_standard_normal_elementwise(mu, logvar).mean(axis=0)

    def _encode_unchecked(self, x: Array) -> tuple[Array, Array]:
        h, _ = self.encoder.forward(self.params, x)
        return h[:, : self.z_dim], h[:, self.z_dim :]

    # -------------------------------------------------------------------------------------
    # log p(x) by importance sampling
    # -------------------------------------------------------------------------------------

    def log_likelihood(
        self, x: Array, k: int = 100, rng: Any = None, max_chunk: int = 2**22
    ) -> Array:
        """Importance-sampled estimate of log p(x) with k samples (IWAE bound, Burda et al. 2016).

            log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

        computed as logsumexp_i(log w_i) - log k with the maximum subtracted first, so no weight
        overflows. k = 1 is the ELBO (in expectation); the bound tightens as k grows.
        x: (batch, x_dim) -> (batch,) in nats, float64.
        """
        x = self._check_x(x)
        self.likelihood.check_data(x)
        k = check_positive_int(k, "k")
        rng = self.rng if rng is None else rng
        xp = self.xp
        batch = x.shape[0]
        mu, logvar = self._encode_unchecked(x)
        std = xp.exp(0.5 * logvar)
        log_w = xp.empty((k, batch), dtype=np.float64)
        out_width = self.decoder.sizes[-1]
        chunk = max(1, min(k, max_chunk // max(1, batch * out_width)))  # bounds memory
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            eps = rng.standard_normal((n, batch, self.z_dim))
            eps = backend.to_device(eps, self.xp).astype(self.dtype, copy=False)
            z = mu + std * eps  # (n, batch, z_dim)
            out, _ = self.decoder.forward(self.params, z.reshape(n * batch, self.z_dim))
            x_rep = xp.broadcast_to(x, (n, batch, self.x_dim)).reshape(n * batch, self.x_dim)
            log_px_z = self.likelihood.log_prob(out, x_rep).reshape(n, batch)
            log_pz = -0.5 * (z * z + LOG_2PI).sum(axis=2)
            log_qz = -0.5 * (eps * eps + LOG_2PI + logvar).sum(axis=2)
            log_w[start : start + n] = log_px_z.astype(np.float64) + log_pz - log_qz
        return logsumexp(log_w, axis=0) - math.log(k)


def logsumexp(a: Array, axis: int = 0) -> Array:
    """log sum_i exp(a_i) along ``axis``, as m + log sum_i exp(a_i - m) with m = max_i a_i."""
    xp = backend.array_module(a)
    m = a.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    return (m + xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)
