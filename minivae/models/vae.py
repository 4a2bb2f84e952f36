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

from collections.abc import Callable, Sequence
from typing import Any

from ..backend import Array
from ..kl import kl_standard_normal_elementwise, kl_standard_normal_with_grads
from ..likelihoods import make_likelihood
from ..mlp import MLP
from ..regularizers import beta_kl
from ..reparam import reparameterize, reparameterize_backward
from ..validation import check_finite_scalar, check_positive_int, check_real
from .base import Batch, LatentVariableModel, check_hidden, stack_shapes


class VAE(LatentVariableModel):
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
        self.hidden = check_hidden(hidden)
        self.obs_var = check_real(obs_var, "obs_var (the fixed variance)", minimum=0.0,
                                  strict_minimum=True)
        if not isinstance(likelihood, str) and not hasattr(likelihood, "outputs_per_pixel"):
            raise TypeError(
                "likelihood must be 'bernoulli', 'gaussian' or 'gaussian_learned' (or a "
                f"likelihood object), got {likelihood!r:.60}"
            )
        self.likelihood = make_likelihood(likelihood, var=self.obs_var) \
            if likelihood == "gaussian" else make_likelihood(likelihood)
        self.beta = beta  # checked by the property below
        self.activation = activation
        #: How the KL enters the loss: ``regularizer(kl_per_latent, beta) -> (penalty, weight)``.
        self.regularizer: Callable[[Array, float], tuple[float, Array]] = beta_kl
        self.encoder = MLP([self.x_dim, *self.hidden, 2 * self.z_dim], activation, "encoder.")
        out_dim = self.likelihood.outputs_per_pixel * self.x_dim
        self.decoder = MLP([self.z_dim, *reversed(self.hidden), out_dim], activation, "decoder.")
        shapes = stack_shapes(self.encoder.param_shapes(), self.decoder.param_shapes())
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

    def networks(self) -> list:
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

    def posterior(self, x: Any) -> tuple[Array, Array]:
        """q(z|x): mu, logvar, each (batch, z_dim), for x (batch, x_dim) or a Batch."""
        h, _ = self.encoder.forward(self.params, self.prepare(x).x)
        return h[:, : self.z_dim], h[:, self.z_dim :]

    def decoder_output(self, z: Any) -> Array:
        """The decoder's raw output for z: logits, a mean, or [mean, logvar] (see likelihoods)."""
        return self.decoder.forward(self.params, self.check_z(z))[0]

    # -------------------------------------------------------------------------------------
    # The objective and its gradients
    # -------------------------------------------------------------------------------------

    def objective(self, batch: Batch, eps: Array, need_grads: bool) -> tuple[dict, Any]:
        """loss = recon + beta * KL (the regularizer's penalty), and every gradient.

        recon = -log p(x_obs | z) averaged over the batch (observed entries only with a mask;
        the encoder sees the zero-filled rows), z = mu + exp(0.5 * logvar) * eps.
        Returns ``({"loss", "recon", "kl"}, grads)``; grads is None unless ``need_grads``.
        """
        if not need_grads:
            return self._evaluate(batch, eps), None
        xp, params, grads = self.xp, self.params, self.grads
        x, z_dim = batch.x, self.z_dim

        # forward: x -> [mu, logvar] -> z -> decoder output -> -log p(x|z), KL
        h, enc_cache = self.encoder.forward(params, x)
        mu, logvar = h[:, :z_dim], h[:, z_dim:]
        z, reparam_cache = reparameterize(mu, logvar, eps)
        out, dec_cache = self.decoder.forward(params, z)
        recon, dout = self.likelihood.nll(out, x, batch.mask)
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

    def _evaluate(self, batch: Batch, eps: Array) -> dict:
        """The loss terms without the caches of a backward pass (evaluation)."""
        mu, logvar = self.posterior(batch)
        z, _ = reparameterize(mu, logvar, eps)
        out, _ = self.decoder.forward(self.params, z)
        recon = float(-self.likelihood.log_prob(out, batch.x, batch.mask).sum()) / len(batch)
        kl_per_latent = kl_standard_normal_elementwise(mu, logvar).mean(axis=0)
        penalty, _ = self.regularizer(kl_per_latent, self.beta)
        return {"loss": recon + penalty, "recon": recon, "kl": float(kl_per_latent.sum())}
