"""The importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2016): the VAE's networks,
trained on the k-sample bound instead of the ELBO, with its gradient written by hand.

For each example, k draws z_i = mu + std * eps_i from the Gaussian encoder q(z|x), and

    log w_i = log p(x | z_i) + beta * (log p(z_i) - log q(z_i | x))          (beta = 1: the bound)
    L_k(x)  = log (1/k) sum_i w_i   <=   log p(x),       L_1 = the ELBO,  L_k grows with k
    loss    = - mean over the batch of L_k(x)                                (nats per example)

Its gradient is a weighted sum of the per-sample gradients, with the self-normalised importance
weights (the softmax of the log-weights over the k samples):

    d L_k = sum_i w~_i d log w_i,      w~_i = w_i / sum_j w_j

so a sample that explains x well gets almost all the gradient; with equal weights 1/k it would
be the gradient of the k-sample average ELBO instead, which is no tighter than the ELBO.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..backend import Array
from ..importance import (
    gaussian_log_density,
    log_mean_exp,
    normalized_weights,
    standard_normal_log_density,
)
from ..regularizers import beta_kl
from ..validation import check_data, check_positive_int
from .base import Batch
from .vae import VAE

__all__ = ["IWAE"]


class IWAE(VAE):
    """A VAE trained on the k-sample importance-weighted bound L_k (k = 1 is the VAE's ELBO).

    Args: those of :class:`~minivae.models.VAE`, plus ``k``, the number of importance samples
    per example in the training loss (noise of shape (k, batch, z_dim)). The networks, the
    posterior, sampling and ``log_likelihood`` are the VAE's; only the objective differs.

    With k = 1 the loss is the VAE's negative ELBO with the KL estimated by the same sample,
    log q(z|x) - log p(z), instead of in closed form: equal to the VAE's loss in expectation,
    with the same decoder gradients exactly (tests/library/test_iwae.py).
    """

    eps_axis_name = "z_dim"

    def __init__(self, x_dim: int, z_dim: int = 2, k: int = 5, **kwargs: Any):
        self.k = check_positive_int(k, "k")
        super().__init__(x_dim, z_dim, **kwargs)

    def config(self) -> dict:
        return {**super().config(), "class": "IWAE", "k": self.k}

    def eps_shape(self, batch: int) -> tuple[int, ...]:
        return (self.k, batch, self.z_dim)

    def check_eps(self, eps: Any, batch: int) -> Array:
        """Noise for ``batch`` rows: (k, batch, z_dim), k importance samples per example."""
        shape = self.eps_shape(batch)
        eps = check_data(eps, "eps", dim=self.z_dim, ndim=3)
        if tuple(eps.shape) != shape:
            raise ValueError(
                f"eps must be (k, batch, z_dim) = {shape} for an IWAE with k = {self.k}, "
                f"got {tuple(eps.shape)}"
            )
        return backend.to_device(eps, self.xp).astype(self.dtype, copy=False)

    def objective(self, batch: Batch, eps: Array, need_grads: bool) -> tuple[dict, Any]:
        """loss = -mean_b L_k(x_b) and, with need_grads, every gradient.

        Returns ``({"loss", "recon", "kl"}, grads)``: ``recon`` and ``kl`` are the means over
        the k samples and the batch of -log p(x|z_i) and of log q(z_i|x) - log p(z_i), so
        ``recon + beta * kl`` is the k-sample average negative ELBO and ``loss`` is at most it.
        """
        if self.regularizer is not beta_kl:
            raise TypeError(
                "IWAE weights log p(z) - log q(z|x) by beta inside each importance weight; a "
                f"KL regularizer ({type(self.regularizer).__name__}) has no meaning there"
            )
        xp, params, grads = self.xp, self.params, self.grads
        x, n, k, d, beta = batch.x, len(batch), self.k, self.z_dim, self.beta

        # forward: x -> mu, logvar -> k samples z_i -> decoder (k * batch rows) -> log w_i
        h, enc_cache = self.encoder.forward(params, x)
        mu, logvar = h[:, :d], h[:, d:]
        std = xp.exp(0.5 * logvar)
        z = mu + std * eps  # (k, batch, d)
        out, dec_cache = self.decoder.forward(params, z.reshape(k * n, d))
        x_rep = _tile_rows(x, k)
        mask_rep = None if batch.mask is None else _tile_rows(batch.mask, k)
        if need_grads:  # -log p(x|z_i) per row and the gradient of their mean, together
            nll_rows, dout_mean = self.likelihood.nll_rows(out, x_rep, mask_rep)
            log_px_z = -nll_rows.reshape(k, n)
        else:
            log_px_z = self.likelihood.log_prob(out, x_rep, mask_rep).reshape(k, n)
        log_pz = standard_normal_log_density(z)  # (k, batch)
        log_qz = gaussian_log_density(eps, logvar)  # (k, batch)
        log_w = log_px_z + beta * (log_pz - log_qz)
        bound = log_mean_exp(log_w, axis=0)  # L_k per example, (batch,)
        terms = {
            "loss": -float(bound.sum()) / n,
            "recon": -float(log_px_z.sum()) / (k * n),
            "kl": float((log_qz - log_pz).sum()) / (k * n),
        }
        if not need_grads:
            return terms, None

        # backward: d loss / d log w_i = -w~_i / n, each sample's gradient weighted by w~_i
        w_tilde = normalized_weights(log_w, axis=0)  # (k, batch), sums to 1 over the k samples
        # A weight below 2**-64 changes no gradient visibly (relative < 1e-19, under float64's
        # rounding), but times a small dlogit it makes subnormal float32 entries of dout, which
        # OpenBLAS multiplies about 100x slower than normal ones (benchmarks/README.md): 0 instead.
        w_tilde[w_tilde < 2.0**-64] = 0
        # dout_mean is the gradient of the mean over the k * n rows: times k * n gives one row's
        # d(-log p(x|z_i)); times w~_i / n weights it
        dout = dout_mean * (k * w_tilde.reshape(k * n, 1))
        dz, _ = self.decoder.backward(dout, dec_cache, grads)
        # + the prior's part of -log w_i: d/dz (beta * z^2 / 2) = beta * z, weighted by w~_i / n
        dz = dz.reshape(k, n, d) + (beta / n) * w_tilde[..., None] * z
        dmu = dz.sum(axis=0)
        # z = mu + std * eps (dz/dlogvar = 0.5 * std * eps); and log q = -1/2 sum(eps^2 + ... +
        # logvar) at fixed eps gives -log w_i a term -beta/2 per latent: sum_i w~_i = 1
        dlogvar = (dz * eps).sum(axis=0) * (0.5 * std) - 0.5 * beta / n
        self.encoder.backward(xp.concatenate([dmu, dlogvar], axis=1), enc_cache, grads,
                              need_dx=False)
        return terms, grads


def _tile_rows(a: Array, k: int) -> Array:
    """(batch, D) -> (k * batch, D): k copies of the batch, sample-major (as z.reshape gives)."""
    xp = backend.array_module(a)
    return xp.broadcast_to(a, (k, *a.shape)).reshape(k * a.shape[0], *a.shape[1:])
