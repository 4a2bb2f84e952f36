"""Softmax, log-softmax, cross-entropy and entropy: a classifier's pieces, forward and backward.

A classifier's network outputs one logit per class, ``logits`` (batch, K); the softmax turns them
into class probabilities,

    pi_k = softmax(a)_k = exp(a_k) / sum_j exp(a_j),        a = logits, pi: (batch, K).

Stability: exp(a) overflows for a > 88 in float32 (709 in float64), and log(pi) of a probability
that rounded to 0 is -inf. Both are avoided by subtracting each row's largest logit m first,

    log pi_k = (a_k - m) - log sum_j exp(a_j - m),

which changes nothing mathematically (the factor exp(-m) cancels) and keeps every exp() in
(0, 1]. The log-probabilities are computed this way, never as log(softmax(a)).

The backward of the softmax, for an upstream gradient ``dpi`` = dLoss/dpi (batch, K), is

    dLoss/da_k = pi_k * (dpi_k - sum_j pi_j dpi_j)

(the Jacobian dpi_j/da_k = pi_j (delta_jk - pi_k) applied row by row). A constant added to every
``dpi_k`` of a row drops out of it, because the probabilities sum to one.

As everywhere in the library, a loss is averaged over the batch, in nats.
"""

from __future__ import annotations

from typing import Any

from .backend import Array, array_module

__all__ = [
    "cross_entropy",
    "entropy",
    "log_softmax",
    "one_hot",
    "softmax",
    "softmax_backward",
]


def log_softmax(logits: Array) -> Array:
    """log softmax(a) along the last axis, computed so that it cannot overflow.

    log pi_k = (a_k - m) - log sum_j exp(a_j - m),   m = max_j a_j.   logits: (..., K) -> (..., K).
    Finite for any finite logits (1e4 and -1e4 included).
    """
    xp = array_module(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: Array) -> Array:
    """pi = softmax(a) along the last axis: exp(a_k - m) / sum_j exp(a_j - m).  (..., K)."""
    xp = array_module(logits)
    e = xp.exp(logits - logits.max(axis=-1, keepdims=True))  # in (0, 1]: never overflows
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dprobs: Array, probs: Array) -> Array:
    """dLoss/dlogits from dLoss/dpi through pi = softmax(logits).

    dlogits_k = pi_k * (dpi_k - sum_j pi_j dpi_j).     dprobs, probs: (..., K) -> (..., K).
    """
    return probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))


def one_hot(labels: Array, n_classes: int, dtype: Any = None) -> Array:
    """The one-hot rows of integer labels: y (n,) in 0..K-1 -> (n, K), y_onehot[i, y_i] = 1.

    On the labels' own backend (the row of an identity matrix, a gather that works on NumPy, CuPy
    and the stand-in). ``dtype``: float64 by default. Labels are not checked here: the models check
    them once (:func:`minivae.models.base.check_class_labels`).
    """
    xp = array_module(labels)
    return xp.eye(n_classes, dtype="float64" if dtype is None else dtype)[labels]


def cross_entropy(logits: Array, labels_onehot: Array) -> tuple[float, Array]:
    """The batch mean of -log pi_y and its gradient for the logits.

    loss    = -(1/batch) * sum_b sum_k y_bk * log softmax(a_b)_k
    dlogits = (softmax(a) - y) / batch                 logits, labels_onehot: (batch, K)
    """
    batch = logits.shape[0]
    log_probs = log_softmax(logits)
    loss = float(-(labels_onehot * log_probs).sum()) / batch
    xp = array_module(logits)
    return loss, (xp.exp(log_probs) - labels_onehot) / batch


def entropy(logits: Array) -> Array:
    """H(pi) = -sum_k pi_k log pi_k of each row, in nats: (..., K) -> (...,).

    From the stable log-probabilities; a class whose probability is exactly 0 adds 0.
    """
    xp = array_module(logits)
    log_probs = log_softmax(logits)
    return -(xp.exp(log_probs) * log_probs).sum(axis=-1)
