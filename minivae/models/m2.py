"""The semi-supervised model M2 (Kingma, Rezende, Mohamed & Welling 2014), gradients by hand.

Generative model: y ~ p(y) = uniform over K classes, z ~ N(0, I), x ~ p(x | y, z) (the CVAE's
decoder). Inference: a classifier q(y | x) = softmax(logits(x)) =: pi (batch, K), and the CVAE's
encoder q(z | x, y). For a labelled example the bound on log p(x, y) is the CVAE's, plus log p(y):

    L(x, y) = -E_q(z|x,y)[log p(x | y, z) + log p(y) + log p(z) - log q(z | x, y)]
            = recon(x, y) + beta * KL(q(z | x, y) || N(0, I)) + log K        (beta = 1: the bound)

For an unlabelled example the label is a latent variable too; summing over its K values,

    U(x) = sum_y pi_y L(x, y) - H(pi),       H(pi) = -sum_y pi_y log pi_y,

so U(x) = sum_y pi_y (L(x, y) + log pi_y). The objective (Kingma et al.'s J^alpha) adds a
classification term on the labelled examples, without which q(y | x) would learn from U alone:

    loss = (1/n) * [ sum_labelled L(x, y) + sum_unlabelled U(x) + alpha * sum_labelled -log pi_y ].

A minibatch may mix both kinds of rows: a label -1 (:data:`~minivae.models.base.UNLABELLED`)
marks an unlabelled row, so one ``fit(model, x, labels=y)`` trains on both.

How it is computed: every row is run through the encoder and decoder once per label (the batch is
enumerated to n * K rows), and each (row, label) pair gets a weight W: a labelled row's weights
are its one-hot label (so only its own label counts), an unlabelled row's are pi. Then

    labelled + unlabelled = (1/n) * sum W * L + (1/n) * sum_unlabelled sum_y pi_y log pi_y,

and the gradient of the encoder and decoder is theirs for L, each row scaled by W / n. The
gradient for the classifier's logits on an unlabelled row (L does not depend on them) is

    dU/dpi_y = L(x, y) + log pi_y + 1,   then through the softmax (:func:`~minivae.softmax.
    softmax_backward`): dU/da = pi * (L + log pi - U)       (the +1 drops out: sum_y pi_y = 1)

and on a labelled row alpha * (pi - y_onehot), the cross-entropy's. Enumerating a labelled row's
K labels costs K times its one pass; it keeps one code path for both kinds of rows.

Weight of the labelled rows: with 100 labels among thousands of images, a labelled row is a rare
guest in a minibatch. ``alpha`` scales the classification term per labelled row;
:func:`semi_supervised_set` repeats the labelled rows so that they make up a chosen share of
every epoch (oversampling, which also weights their L).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..backend import Array
from ..kl import kl_standard_normal_elementwise, kl_standard_normal_with_grads
from ..mlp import MLP
from ..reparam import reparameterize, reparameterize_backward
from ..softmax import log_softmax, one_hot, softmax_backward
from ..validation import check_finite_scalar, check_positive_int
from .base import UNLABELLED, Batch, check_class_labels, check_hidden
from .cvae import CVAE, concat_label, concat_label_backward

__all__ = ["M2", "semi_supervised_set"]


class M2(CVAE):
    """Kingma et al.'s M2: classifier q(y | x), encoder q(z | x, y), decoder p(x | y, z).

    Args:
        x_dim, z_dim, hidden, n_classes, likelihood, beta, activation, obs_var, seed, dtype,
            backend: as :class:`~minivae.models.cvae.CVAE` (the encoder and decoder are a CVAE's).
        classifier_hidden: hidden widths of the classifier q(y | x) (``()``: a softmax regression).
        alpha: weight of the classification term -log q(y | x), per labelled row (>= 0; 0 drops
            it, and q(y | x) then learns from the unlabelled bound only).

    Labels: (n,) integers 0..K-1, or -1 for an unlabelled row; ``labels=None`` means every row is
    unlabelled. Parameters: ``classifier.W0, ...`` besides the CVAE's ``encoder.*``, ``decoder.*``.
    Noise: eps (batch, n_classes, z_dim), one draw per row and label (:meth:`eps_shape`).
    """

    allows_unlabelled = True
    eps_axis_name = "n_classes, z_dim"

    def __init__(
        self,
        x_dim: int,
        z_dim: int = 2,
        hidden: Sequence[int] = (256,),
        n_classes: int = 10,
        classifier_hidden: Sequence[int] = (256,),
        alpha: float = 1.0,
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        activation: str = "relu",
        obs_var: float = 1.0,
        seed: int | None = 0,
        dtype: Any = "float32",
        backend: str | None = None,
    ):
        self.classifier_hidden = check_hidden(classifier_hidden)
        self.alpha = alpha  # checked by the property below
        super().__init__(x_dim, z_dim, hidden, n_classes, likelihood, beta, activation, obs_var,
                         seed, dtype, backend)
        # M2's KL enters as beta * KL of each (row, label) pair, weighted; the VAE's
        # per-latent regularizers (free bits, capacity) have no weighted form here
        del self.regularizer

    def _build_networks(self) -> None:
        super()._build_networks()
        self.classifier = MLP([self.x_dim, *self.classifier_hidden, self.n_classes],
                              self.activation, "classifier.")

    @property
    def alpha(self) -> float:
        """The weight of the classification term per labelled row: a finite float >= 0."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._alpha = check_finite_scalar(value, "alpha", minimum=0.0)

    def networks(self) -> list:
        return [self.classifier, self.encoder, self.decoder]

    def config(self) -> dict:
        config = super().config()
        config.update({
            "class": "M2",
            "classifier_hidden": list(self.classifier_hidden),
            "alpha": self.alpha,
        })
        return config

    def check_labels(self, labels: Any, n: int) -> Array:
        """Labels 0..K-1 or -1 (unlabelled), shape (n,); None: every row unlabelled."""
        if labels is None:
            return self.xp.full((n,), UNLABELLED, dtype=np.int64)
        return check_class_labels(labels, n, self.n_classes, self.xp, allow_unlabelled=True)

    def eps_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.n_classes, self.z_dim)

    # -------------------------------------------------------------------------------------
    # The classifier q(y | x)
    # -------------------------------------------------------------------------------------

    def classifier_logits(self, x: Any) -> Array:
        """The classifier's logits for x (batch, x_dim) or a Batch: (batch, n_classes)."""
        return self.classifier.forward(self.params, self.prepare(x).x)[0]

    def classify(self, x: Any) -> Array:
        """q(y | x) = softmax(logits): (batch, n_classes), each row sums to 1."""
        return self.xp.exp(log_softmax(self.classifier_logits(x)))

    def predict(self, x: Any) -> Array:
        """The most probable class under q(y | x): (batch,) integers."""
        return self.classifier_logits(x).argmax(axis=1)

    # -------------------------------------------------------------------------------------
    # The objective and its gradients
    # -------------------------------------------------------------------------------------

    def objective(self, batch: Batch, eps: Array, need_grads: bool) -> tuple[dict, Any]:
        """loss = (sum_labelled L + sum_unlabelled U + alpha * sum_labelled -log pi_y) / n.

        Returns the terms ``loss``, ``labelled``, ``unlabelled``, ``classification`` (each a sum
        over its rows divided by the batch size n, so loss = labelled + unlabelled +
        alpha * classification), ``recon`` and ``kl`` (the W-weighted parts of L, / n), and the
        gradients of ``loss`` (or None unless ``need_grads``).
        """
        xp, params, grads = self.xp, self.params, self.grads
        x, labels, n, k, z_dim = batch.x, batch.labels, len(batch), self.n_classes, self.z_dim
        dtype = self.dtype
        is_labelled = (labels >= 0).astype(dtype)  # (n,)
        y_onehot = one_hot(xp.maximum(labels, 0), k, dtype) * is_labelled[:, None]  # (n, K)

        # q(y | x): stable log-probabilities, never log(softmax)
        logits, cls_cache = self.classifier.forward(params, x)
        log_pi = log_softmax(logits)
        pi = xp.exp(log_pi)

        # every row with every label: row r * K + y of the enumerated batch is (x_r, y)
        x_rep = xp.repeat(x, k, axis=0)  # (n K, D)
        c_rep = xp.tile(xp.eye(k, dtype=dtype), (n, 1))  # (n K, K)
        mask_rep = None if batch.mask is None else xp.repeat(batch.mask, k, axis=0)
        xc, _ = concat_label(x_rep, c_rep)
        h, enc_cache = self.encoder.forward(params, xc)
        mu, logvar = h[:, :z_dim], h[:, z_dim:]
        z, reparam_cache = reparameterize(mu, logvar, eps.reshape(n * k, z_dim))
        zc, z_width = concat_label(z, c_rep)
        out, dec_cache = self.decoder.forward(params, zc)
        if need_grads:  # -log p(x|z) per row and the gradient of their mean over nK, together
            recon_rows, dout_mean = self.likelihood.nll_rows(out, x_rep, mask_rep)  # (n K,)
        else:
            recon_rows = -self.likelihood.log_prob(out, x_rep, mask_rep)  # (n K,)
        kl_rows = kl_standard_normal_elementwise(mu, logvar).sum(axis=1)  # (n K,)
        bound = (recon_rows + self.beta * kl_rows).reshape(n, k) + math.log(k)  # L(x, y): (n, K)

        unlabelled = (1 - is_labelled)[:, None]  # (n, 1)
        weight = y_onehot + unlabelled * pi  # W: (n, K)
        labelled_sum = float((y_onehot * bound).sum())
        unlabelled_sum = float((unlabelled * pi * (bound + log_pi)).sum())
        classification_sum = float(-(y_onehot * log_pi).sum())
        terms = {
            "loss": (labelled_sum + unlabelled_sum + self.alpha * classification_sum) / n,
            "labelled": labelled_sum / n,
            "unlabelled": unlabelled_sum / n,
            "classification": classification_sum / n,
            "recon": float((weight * recon_rows.reshape(n, k)).sum()) / n,
            "kl": float((weight * kl_rows.reshape(n, k)).sum()) / n,
        }
        if not need_grads:
            return terms, None

        # encoder and decoder: L's gradient for every (row, label), scaled by W / n
        row_weight = (weight / n).reshape(n * k, 1)
        dout = dout_mean * (n * k * row_weight)
        dzc, _ = self.decoder.backward(dout, dec_cache, grads)
        dz = concat_label_backward(dzc, z_width)  # the label columns are data
        dmu, dlogvar = reparameterize_backward(dz, reparam_cache)
        _, dmu_kl, dlogvar_kl = kl_standard_normal_with_grads(mu, logvar)  # of the mean over nK
        kl_scale = (n * k * self.beta) * row_weight
        dh = xp.concatenate([dmu + kl_scale * dmu_kl, dlogvar + kl_scale * dlogvar_kl], axis=1)
        self.encoder.backward(dh, enc_cache, grads, need_dx=False)

        # classifier: dU/dpi = L + log pi + 1 through the softmax (unlabelled rows), and the
        # cross-entropy's alpha * (pi - y) (labelled rows)
        dlogits_unlabelled = softmax_backward(bound + log_pi + 1, pi)
        dlogits = (unlabelled * dlogits_unlabelled
                   + self.alpha * (is_labelled[:, None] * pi - y_onehot)) / n
        self.classifier.backward(dlogits, cls_cache, grads, need_dx=False)
        return terms, grads


def semi_supervised_set(
    x_labelled: Any, y_labelled: Any, x_unlabelled: Any, repeat_labelled: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """One training set for :class:`M2`: the unlabelled rows (label -1) and the labelled rows.

    The labelled rows are repeated ``repeat_labelled`` times (oversampling), so that a shuffled
    epoch shows each of them that often: with 100 labels among 4,000 images, ``repeat_labelled=
    10`` makes them a fifth of every epoch instead of one row in forty.

    x_labelled (n_l, D), y_labelled (n_l,) integers, x_unlabelled (n_u, D), on the host.
    Returns (x, labels): (n_u + repeat_labelled * n_l, D) and the labels, -1 for unlabelled rows.
    """
    repeat_labelled = check_positive_int(repeat_labelled, "repeat_labelled")
    x_labelled, x_unlabelled = backend.to_numpy(x_labelled), backend.to_numpy(x_unlabelled)
    y_labelled = backend.to_numpy(y_labelled)
    if x_labelled.ndim != 2 or x_unlabelled.ndim != 2 or \
            x_labelled.shape[1] != x_unlabelled.shape[1]:
        raise ValueError(
            f"x_labelled and x_unlabelled must be (n, D) with the same D, got "
            f"{x_labelled.shape} and {x_unlabelled.shape}"
        )
    if y_labelled.shape != (x_labelled.shape[0],):
        raise ValueError(
            f"y_labelled must have shape ({x_labelled.shape[0]},), one per row of x_labelled, "
            f"got {y_labelled.shape}"
        )
    if y_labelled.dtype.kind not in "iu" or (y_labelled.size and y_labelled.min() < 0):
        raise ValueError(
            f"y_labelled must hold class indices 0, 1, ... (integers >= 0), got dtype "
            f"{y_labelled.dtype}" + (f" with minimum {y_labelled.min()}" if y_labelled.size else "")
        )
    x = np.concatenate([x_unlabelled, np.tile(x_labelled, (repeat_labelled, 1))])
    labels = np.concatenate([np.full(len(x_unlabelled), UNLABELLED, dtype=np.int64),
                             np.tile(y_labelled.astype(np.int64), repeat_labelled)])
    return x, labels
