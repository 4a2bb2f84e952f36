"""A softmax classifier q(y | x) on the model protocol, and M1's features (Kingma et al. 2014).

``Classifier(x_dim, n_classes, hidden=())`` is multinomial logistic regression (one linear layer
and a softmax); with hidden widths it is an MLP classifier. It trains with ``minivae.fit`` like any
model (labels required), with the loss

    loss = -(1/batch) * sum_b log softmax(a_b)_{y_b} + (weight_decay / 2) * sum_i ||W_i||^2,

the cross-entropy averaged over the batch plus an L2 penalty on the weights (not the biases),
and reports ``accuracy`` (the fraction of the batch classified right) beside it.

The M1 route to semi-supervised learning: train a VAE on all images, labelled or not; use the
posterior means mu(x) of q(z | x) as features (:func:`posterior_mean_features`), standardized
with the statistics of the training images; train a classifier on the few labelled ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..backend import Array
from ..mlp import MLP
from ..softmax import cross_entropy, log_softmax, one_hot
from ..validation import check_finite_scalar, check_positive_int
from .base import Batch, Model, check_class_labels, check_hidden

__all__ = ["Classifier", "posterior_mean_features"]


class Classifier(Model):
    """q(y | x) = softmax(MLP(x)): logistic regression with ``hidden=()``, else an MLP.

    Args:
        x_dim: features per example (pixels, or a VAE's latent means).
        n_classes: K; labels are integers 0..K-1.
        hidden: hidden layer widths (``()``: one linear layer, multinomial logistic regression).
        activation: hidden activation (a name from :data:`minivae.layers.ACTIVATIONS`).
        weight_decay: the L2 penalty's lambda on every weight matrix (>= 0).
        seed, dtype, backend: as :class:`~minivae.VAE`.

    Parameters: ``classifier.W0, classifier.b0, ...``; W is (n_in, n_out).
    """

    takes_labels = True

    def __init__(
        self,
        x_dim: int,
        n_classes: int = 10,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        weight_decay: float = 0.0,
        seed: int | None = 0,
        dtype: Any = "float32",
        backend: str | None = None,
    ):
        self.x_dim = check_positive_int(x_dim, "x_dim")
        self.n_classes = check_positive_int(n_classes, "n_classes")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.hidden = check_hidden(hidden)
        self.activation = activation
        self.weight_decay = check_finite_scalar(weight_decay, "weight_decay", minimum=0.0)
        self.network = MLP([self.x_dim, *self.hidden, self.n_classes], activation, "classifier.")
        self._setup(self.network.param_shapes(), seed, dtype, backend)

    def networks(self) -> list:
        return [self.network]

    def config(self) -> dict:
        return {
            "class": "Classifier",
            "x_dim": self.x_dim,
            "n_classes": self.n_classes,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    def check_labels(self, labels: Any, n: int) -> Array | None:
        """Labels 0..K-1 of shape (n,); None is accepted for prediction (no loss without them)."""
        if labels is None:
            return None
        return check_class_labels(labels, n, self.n_classes, self.xp)

    # ---------------------------------------------------------------------------------------
    # Prediction
    # ---------------------------------------------------------------------------------------

    def logits(self, x: Any) -> Array:
        """The logits a (batch, n_classes) for x (batch, x_dim) or a Batch."""
        return self.network.forward(self.params, self.prepare(x).x)[0]

    def predict_proba(self, x: Any) -> Array:
        """q(y | x) = softmax(a): (batch, n_classes), rows sum to 1."""
        return self.xp.exp(log_softmax(self.logits(x)))

    def predict(self, x: Any) -> Array:
        """The most probable class: (batch,) integers."""
        return self.logits(x).argmax(axis=1)

    def accuracy(self, x: Any, labels: Any) -> float:
        """The fraction of rows of x whose predicted class is their label."""
        batch = self.prepare(x, labels=labels)
        if batch.labels is None:
            raise TypeError("accuracy needs the labels: accuracy(x, labels)")
        return float((self.predict(batch) == batch.labels).mean())

    # ---------------------------------------------------------------------------------------
    # The objective
    # ---------------------------------------------------------------------------------------

    def objective(self, batch: Batch, eps: Array | None, need_grads: bool) -> tuple[dict, Any]:
        """Cross-entropy (batch mean) + weight_decay / 2 * sum ||W||^2, and every gradient.

        Returns ``({"loss", "cross_entropy", "accuracy"}, grads or None)``.
        """
        if batch.labels is None:
            raise TypeError(
                "a Classifier's loss needs labels: fit(model, x, labels=y) or loss(x, labels=y)"
            )
        logits, cache = self.network.forward(self.params, batch.x)
        y = one_hot(batch.labels, self.n_classes, self.dtype)
        ce, dlogits = cross_entropy(logits, y)
        weights = [self.params[self.network.names(i)[0]] for i in range(self.network.n_layers)]
        penalty = 0.5 * self.weight_decay * sum(float((w * w).sum()) for w in weights)
        accuracy = float((logits.argmax(axis=1) == batch.labels).mean())
        terms = {"loss": ce + penalty, "cross_entropy": ce, "accuracy": accuracy}
        if not need_grads:
            return terms, None
        self.network.backward(dlogits, cache, self.grads, need_dx=False)
        if self.weight_decay:
            for i in range(self.network.n_layers):
                name = self.network.names(i)[0]
                self.grads[name] += self.weight_decay * self.params[name]
        return terms, self.grads


def posterior_mean_features(model: Any, x: Any, batch_size: int = 1024) -> np.ndarray:
    """M1's features: the posterior means mu(x) of a trained VAE's q(z | x), on the host.

    The mean, not a sample z (noise that says nothing about x) and not logvar (how unsure the
    encoder is, not where x lies). x: (n, x_dim) -> (n, z_dim) float64, in chunks of
    ``batch_size`` rows so that memory stays bounded.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    data = model.prepare(x)
    chunks = []
    for start in range(0, len(data), batch_size):
        mu, _ = model.posterior(data.rows(slice(start, start + batch_size)))
        chunks.append(backend.to_numpy(mu).astype(np.float64))
    return np.concatenate(chunks)
