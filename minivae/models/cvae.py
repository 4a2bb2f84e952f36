"""The conditional VAE (Sohn et al. 2015): a VAE whose encoder and decoder both see a class label.

Generative model, for a label y in 0..K-1 given as a one-hot row c (batch, K):

    z ~ p(z) = N(0, I),     x ~ p(x | z, y)   (the decoder reads [z, c])

and the encoder q(z | x, y) = N(mu(x, c), diag(exp(logvar(x, c)))) reads [x, c]. The objective is
the negative ELBO of log p(x | y), with a weight beta on the KL term as in the VAE,

    loss(x, y) = -E_q[log p(x | z, y)] + beta * KL(q(z | x, y) || N(0, I)),

one reparameterized sample z = mu + exp(0.5 * logvar) * eps, summed over pixels and latent
dimensions, averaged over the batch, in nats.

The label enters each network by **concatenation**: the first layer sees [h, c] of width
``h.shape[1] + K``. Its backward returns the gradient of the first ``h.shape[1]`` columns only:
the one-hot columns are data, not parameters or activations, so no gradient flows into them
(:func:`concat_label_backward`). What the latent z has to carry is then only what the label does
not say: a digit's style (slant, thickness, size), not its class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..backend import Array
from ..kl import kl_standard_normal_elementwise, kl_standard_normal_with_grads
from ..likelihoods import make_likelihood
from ..mlp import MLP
from ..regularizers import beta_kl
from ..reparam import reparameterize, reparameterize_backward
from ..softmax import one_hot
from ..validation import check_finite_scalar, check_positive_int
from .base import Batch, LatentVariableModel, check_class_labels, check_hidden, stack_shapes

__all__ = ["CVAE", "concat_label", "concat_label_backward"]


def concat_label(h: Array, labels_onehot: Array) -> tuple[Array, int]:
    """[h, c]: the label's one-hot row appended to each row of h.

    h: (batch, d), labels_onehot: (batch, K) -> (batch, d + K); the cache is d, the width of h.
    """
    if len(h.shape) != 2 or len(labels_onehot.shape) != 2 or h.shape[0] != labels_onehot.shape[0]:
        raise ValueError(
            f"concat_label needs h (batch, d) and labels_onehot (batch, K) with the same batch, "
            f"got {tuple(h.shape)} and {tuple(labels_onehot.shape)}"
        )
    xp = backend.array_module(h)
    return xp.concatenate([h, labels_onehot.astype(h.dtype, copy=False)], axis=1), int(h.shape[1])


def concat_label_backward(dout: Array, width: int) -> Array:
    """dh = dout[:, :d] for out = [h, c]: the label columns' gradient is dropped (c is data).

    dout: (batch, d + K) -> dh: (batch, d).
    """
    return dout[:, :width]


class CVAE(LatentVariableModel):
    """A conditional VAE with MLP encoder q(z | x, y) and decoder p(x | z, y).

    Args:
        x_dim: pixels per example D.
        z_dim: latent dimensions.
        hidden: hidden widths of the encoder; the decoder mirrors them.
        n_classes: K, the number of labels; labels are integers 0..K-1.
        likelihood, beta, activation, obs_var, seed, dtype, backend: as :class:`~minivae.VAE`.

    Parameters are named ``encoder.W0, ..., decoder.W0, ...``; ``encoder.W0`` is (D + K, H) and
    ``decoder.W0`` is (z_dim + K, H): the last K rows are the weights of the one-hot label.
    Every method that needs the label takes ``labels`` (n,) integers, or a Batch that holds them.
    """

    takes_labels = True
    #: Whether a row may be unlabelled (-1): not in a CVAE, whose every term needs the label.
    allows_unlabelled = False

    def __init__(
        self,
        x_dim: int,
        z_dim: int = 2,
        hidden: Sequence[int] = (256,),
        n_classes: int = 10,
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
        self.n_classes = check_positive_int(n_classes, "n_classes")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2 (a label with one value says nothing), "
                             f"got {n_classes}")
        self.likelihood = make_likelihood(likelihood, var=obs_var) if likelihood == "gaussian" \
            else make_likelihood(likelihood)
        self.obs_var = float(obs_var)
        self.beta = beta  # checked by the property below
        self.activation = activation
        #: How the KL enters the loss: ``regularizer(kl_per_latent, beta) -> (penalty, weight)``.
        self.regularizer: Callable[[Array, float], tuple[float, Array]] = beta_kl
        self._build_networks()
        self._setup(self._shapes(), seed, dtype, backend)

    def _build_networks(self) -> None:
        k = self.n_classes
        self.encoder = MLP([self.x_dim + k, *self.hidden, 2 * self.z_dim], self.activation,
                           "encoder.")
        out_dim = self.likelihood.outputs_per_pixel * self.x_dim
        self.decoder = MLP([self.z_dim + k, *reversed(self.hidden), out_dim], self.activation,
                           "decoder.")

    def _shapes(self) -> dict:
        return stack_shapes(*(network.param_shapes() for network in self.networks()))

    @property
    def beta(self) -> float:
        """The weight of the KL term: a finite float >= 0 (1 gives the ELBO)."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        # checked on every assignment (a schedule sets it mid-training), as in the VAE
        self._beta = check_finite_scalar(value, "beta", minimum=0.0)

    def networks(self) -> list:
        return [self.encoder, self.decoder]

    def config(self) -> dict:
        return {
            "class": "CVAE",
            "x_dim": self.x_dim,
            "z_dim": self.z_dim,
            "hidden": list(self.hidden),
            "n_classes": self.n_classes,
            "likelihood": self.likelihood.name,
            "beta": self.beta,
            "activation": self.activation,
            "obs_var": self.obs_var,
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    # -------------------------------------------------------------------------------------
    # Labels
    # -------------------------------------------------------------------------------------

    def check_labels(self, labels: Any, n: int) -> Array:
        """Every row needs its label: integers 0..K-1, shape (n,)."""
        return check_class_labels(labels, n, self.n_classes, self.xp,
                                  allow_unlabelled=self.allows_unlabelled)

    def _labels_of(self, batch: Batch, what: str) -> Array:
        """The batch's labels, refusing unlabelled rows (-1), which a subclass may allow."""
        labels = batch.labels
        if not self.allows_unlabelled:  # prepare has checked them already
            return labels
        unlabelled = backend.to_numpy(labels) < 0
        if unlabelled.any():
            rows = unlabelled.nonzero()[0].tolist()
            raise ValueError(
                f"{what} needs a label for every row, got -1 (unlabelled) in rows {rows[:5]}"
                + ("..." if len(rows) > 5 else "")
            )
        return labels

    def _onehot(self, labels: Array) -> Array:
        return one_hot(labels, self.n_classes, self.dtype)

    # -------------------------------------------------------------------------------------
    # The pieces
    # -------------------------------------------------------------------------------------

    def posterior(self, x: Any, labels: Any = None) -> tuple[Array, Array]:
        """q(z | x, y): mu, logvar, each (batch, z_dim), for x (batch, x_dim) and labels (batch,)
        (or a Batch that holds both)."""
        batch = self.prepare(x, labels=labels)
        xc, _ = concat_label(batch.x, self._onehot(self._labels_of(batch, "q(z | x, y)")))
        h, _ = self.encoder.forward(self.params, xc)
        return h[:, : self.z_dim], h[:, self.z_dim :]

    def encode(self, x: Any, labels: Any = None) -> tuple[Array, Array]:
        """q(z | x, y): mu, logvar (the same as :meth:`posterior`)."""
        return self.posterior(x, labels)

    def decoder_output(self, z: Any, labels: Any = None) -> Array:
        """The decoder's raw output for z (batch, z_dim) and labels (batch,)."""
        z = self.check_z(z)
        labels = self.check_labels(labels, int(z.shape[0]))
        labels = self._labels_of(Batch(z, None, labels), "p(x | z, y)")
        zc, _ = concat_label(z, self._onehot(labels))
        return self.decoder.forward(self.params, zc)[0]

    def decode(self, z: Any, labels: Any = None) -> Array:
        """The mean of p(x | z, y), (batch, x_dim): pixel probabilities for a Bernoulli decoder."""
        return self.likelihood.mean(self.decoder_output(z, labels))

    def reconstruct(self, x: Any, labels: Any = None) -> Array:
        """x_hat = mean of p(x | z = mu(x, y), y): (batch, x_dim)."""
        batch = self.prepare(x, labels=labels)
        mu, _ = self.posterior(batch)
        return self.decode(mu, batch.labels)

    def sample(self, labels: Any, rng: Any = None) -> Array:
        """One image per label: z ~ N(0, I), x = the mean of p(x | z, y). labels (n,) -> (n, x_dim).

        ``sample(np.repeat(np.arange(10), 8))`` draws 8 images of every digit.
        """
        if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
            raise TypeError(
                f"{type(self).__name__}.sample takes the labels to draw, e.g. np.repeat(np.arange"
                f"({self.n_classes}), {labels}) for {labels} images of each class; got the "
                f"integer {labels}"
            )
        shape = getattr(labels, "shape", None)
        n = int(shape[0]) if shape else len(labels) if hasattr(labels, "__len__") else 1
        labels = self.check_labels(labels, n)
        labels = self._labels_of(Batch(labels, None, labels), "sampling p(x | z, y)")
        rng = self.rng if rng is None else rng
        z = rng.standard_normal((int(labels.shape[0]), self.z_dim))
        return self.decode(backend.to_device(z, self.xp).astype(self.dtype), labels)

    def kl_per_latent(self, x: Any, labels: Any = None) -> Array:
        """The KL of each latent dimension averaged over x: (z_dim,)."""
        mu, logvar = self.posterior(x, labels)
        return kl_standard_normal_elementwise(mu, logvar).mean(axis=0)

    def decoder_output_for(self, z: Array, batch: Batch, repeats: int) -> Array:
        """p(x | z, y) for importance sampling: every sample of a row gets that row's label, so
        ``log_likelihood(x, labels=...)`` estimates log p(x | y)."""
        labels = self._labels_of(batch, "p(x | z, y)")
        xp = self.xp
        repeated = xp.broadcast_to(labels, (repeats, labels.shape[0])).reshape(-1)
        return self.decoder_output(z, repeated)

    # -------------------------------------------------------------------------------------
    # The objective and its gradients
    # -------------------------------------------------------------------------------------

    def objective(self, batch: Batch, eps: Array, need_grads: bool) -> tuple[dict, Any]:
        """loss = recon + beta * KL for q(z | x, y) and p(x | z, y), and every gradient.

        recon = -log p(x | z, y) averaged over the batch (observed entries only with a mask),
        z = mu + exp(0.5 * logvar) * eps. Returns ``({"loss", "recon", "kl"}, grads or None)``.
        """
        xp, params, grads = self.xp, self.params, self.grads
        x, z_dim = batch.x, self.z_dim
        c = self._onehot(self._labels_of(batch, "the CVAE's loss"))

        # forward: [x, c] -> [mu, logvar] -> z -> [z, c] -> decoder output -> -log p(x | z, y), KL
        xc, _ = concat_label(x, c)
        h, enc_cache = self.encoder.forward(params, xc)
        mu, logvar = h[:, :z_dim], h[:, z_dim:]
        z, reparam_cache = reparameterize(mu, logvar, eps)
        zc, z_width = concat_label(z, c)
        out, dec_cache = self.decoder.forward(params, zc)
        if not need_grads:
            recon = float(-self.likelihood.log_prob(out, x, batch.mask).sum()) / len(batch)
            kl_per_latent = kl_standard_normal_elementwise(mu, logvar).mean(axis=0)
            penalty, _ = self.regularizer(kl_per_latent, self.beta)
            return {"loss": recon + penalty, "recon": recon,
                    "kl": float(kl_per_latent.sum())}, None
        recon, dout = self.likelihood.nll(out, x, batch.mask)
        kl_elementwise, dmu_kl, dlogvar_kl = kl_standard_normal_with_grads(mu, logvar)
        kl_per_latent = kl_elementwise.mean(axis=0)
        penalty, weight = self.regularizer(kl_per_latent, self.beta)

        # backward: decoder -> [dz, dc] (dc dropped) -> reparameterization (+ KL) -> encoder
        dzc, _ = self.decoder.backward(dout, dec_cache, grads)
        dz = concat_label_backward(dzc, z_width)
        dmu, dlogvar = reparameterize_backward(dz, reparam_cache)
        dh = xp.concatenate([dmu + weight * dmu_kl, dlogvar + weight * dlogvar_kl], axis=1)
        self.encoder.backward(dh, enc_cache, grads, need_dx=False)  # [x, c] is data
        return {"loss": recon + penalty, "recon": recon, "kl": float(kl_per_latent.sum())}, grads
