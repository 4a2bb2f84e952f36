"""The graded checks of problem set 07 (conditional and semi-supervised VAEs), with the reference
maths they compare with and the usual slips they recognise::

    from minivae.course import ch07_conditional as ch07
    ch07.check_unlabelled_bound(unlabelled_bound, bounds, logits)

The references here have the exercises' signatures. The check of the M2 objective gives the
learner's ``m2_loss`` the course's ``unlabelled_bound`` (``feedback.call(..., using=...)``), and
the check of ``unlabelled_bound_backward`` compares with finite differences of the course's U, so
a blank or wrong earlier exercise never costs a later one its points. Each slip is written out as
the number it would give, so a hint fires only when the learner's numbers are exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..gradcheck import numerical_gradient
from ..softmax import log_softmax
from .feedback import (
    ExerciseError,
    call,
    check_close,
    check_gradient,
    check_shape,
    check_type,
    unpack,
)

Array = np.ndarray
Hints = list[tuple[object, str]]


# ------------------------------------------------------------------------- 1. the label's inputs


def label_inputs(x: Array, z: Array, labels: Array, n_classes: int) -> tuple[Array, Array]:
    """[x, c] for the encoder q(z | x, y) and [z, c] for the decoder p(x | z, y); c one-hot."""
    c = np.eye(n_classes)[labels]
    return np.concatenate([x, c], axis=1), np.concatenate([z, c], axis=1)


def _one_hot_slips(labels: Array, n_classes: int) -> list[tuple[Array, str]]:
    """One-hot rows the usual slips build instead of np.eye(n_classes)[labels]."""
    eye = np.eye(n_classes)
    slips = [
        (labels[:, None].astype(float), "the label is appended as one column holding the integer "
         "y; the networks need its one-hot row c (n_classes columns, a 1 at position y)"),
        (eye[(labels + 1) % n_classes], "the 1 of each one-hot row sits one column too far right "
         "(labels + 1?): c[i, y_i] = 1, with columns counted from 0"),
        (eye[(labels - 1) % n_classes], "the 1 of each one-hot row sits one column too far left "
         "(labels - 1?): c[i, y_i] = 1, with columns counted from 0"),
        (1.0 - eye[labels], "the one-hot rows are inverted: c has a 1 at the label and 0 "
         "elsewhere"),
    ]
    return slips


def check_label_inputs(
    fn: Callable, x: Array, z: Array, labels: Array, n_classes: int
) -> tuple[Array, Array]:
    """The CVAE's encoder input [x, c] and decoder input [z, c]."""
    enc_ref, dec_ref = label_inputs(x, z, labels, n_classes)
    batch, d, z_dim = x.shape[0], x.shape[1], z.shape[1]
    result = call(fn, x, z, labels, n_classes)
    enc, dec = unpack(result, ["encoder_input", "decoder_input"],
                      "label_inputs(x, z, labels, n_classes)")
    for name, got, h, ref, width in [("encoder_input", enc, x, enc_ref, d),
                                     ("decoder_input", dec, z, dec_ref, z_dim)]:
        network = "encoder q(z | x, y)" if name == "encoder_input" else "decoder p(x | z, y)"
        check_type(name, got, np.ndarray)
        shape = tuple(np.shape(got))
        if shape == h.shape and np.allclose(got, h):
            raise ExerciseError(
                f"{name} is {'x' if h is x else 'z'} alone: the label is missing from the "
                f"{network}'s input. Append the one-hot label: [{'x' if h is x else 'z'}, c]"
            )
        if shape == (batch + n_classes, width) or shape == (2 * batch, width):
            raise ExerciseError(
                f"{name} has shape {shape}: the one-hot rows were stacked below as extra rows "
                f"(axis=0); they belong beside each row, as {n_classes} extra columns (axis=1), "
                f"giving ({batch}, {width + n_classes})"
            )
        if shape == (batch, width + n_classes - 1):
            raise ExerciseError(
                f"{name} has shape {shape}: the one-hot rows have {n_classes - 1} columns, one "
                f"too few; np.eye(n_classes) has one column per class ({n_classes})"
            )
        if shape == (batch, width + 1):
            raise ExerciseError(
                f"{name} has shape {shape}: one extra column, the integer label itself? The "
                f"label enters as its one-hot row c: {n_classes} columns, a 1 at position y"
            )
        check_shape(name, got, ref.shape)
        c_ref = ref[:, width:]
        hints: Hints = [
            (np.concatenate([ref[:, width:], h], axis=1),
             f"the one-hot label comes first: the exercise (and minivae) puts it last, "
             f"[{'x' if h is x else 'z'}, c]"),
        ]
        for c_slip, message in _one_hot_slips(labels, n_classes):
            if c_slip.shape == c_ref.shape:
                hints.append((np.concatenate([h, c_slip], axis=1), message))
        check_close(name, got, ref, hints=hints, common_hints=False)
    return enc, dec


# ----------------------------------------------------------------------------- 2. its backward


def decoder_input_backward(d_decoder_input: Array, z_dim: int) -> Array:
    """dz = the first z_dim columns of dLoss/d[z, c]; the label columns are data (no gradient)."""
    return d_decoder_input[:, :z_dim]


def check_decoder_input_backward(
    fn: Callable, z: Array, labels: Array, n_classes: int, W: Array, upstream: Array
) -> Array:
    """dz for loss = sum(upstream * ([z, c] @ W)), against finite differences in z."""
    batch, z_dim = z.shape
    c = np.eye(n_classes)[labels]
    d_input = upstream @ W.T  # (batch, z_dim + K): the gradient of the loss for [z, c]
    dz_ref = decoder_input_backward(d_input, z_dim)
    dz = call(fn, d_input, z_dim)
    check_type("dz", dz, np.ndarray)
    shape = tuple(np.shape(dz))
    if shape == d_input.shape:
        raise ExerciseError(
            f"dz has shape {shape}, the shape of [z, c]: the label columns' gradient is still in "
            f"it. z has {z_dim} columns; keep the first {z_dim} and drop the {n_classes} label "
            "columns: the one-hot label is data and gets no gradient"
        )
    if shape == (batch, n_classes) and n_classes != z_dim:
        raise ExerciseError(
            f"dz has shape {shape}: these are the label columns' gradients. dz is the first "
            f"{z_dim} columns of d[z, c] (z comes first); the label columns are dropped"
        )
    if shape in {(batch, z_dim - 1), (batch, z_dim + 1)}:
        raise ExerciseError(
            f"dz has shape {shape}: one column too {'few' if shape[1] < z_dim else 'many'}. "
            f"z has {z_dim} columns: dz = d_decoder_input[:, :z_dim] (a slice stops before "
            "its end index)"
        )
    check_shape("dz", dz, z.shape)
    check_close("dz", dz, dz_ref, hints=[
        (d_input[:, -z_dim:], f"these are the last {z_dim} columns of d[z, c]: z comes first, "
                              f"so dz = d[z, c][:, :{z_dim}]"),
        (-dz_ref, "the sign is flipped: slicing a gradient keeps its sign"),
    ])
    z64 = np.array(z, dtype=np.float64)
    numeric = numerical_gradient(
        lambda: float(np.sum(upstream * (np.concatenate([z64, c], axis=1) @ W))), z64)
    check_gradient("dz", dz, numeric)
    return dz


# ----------------------------------------------------------------------------- 3. U(x)


def unlabelled_bound(bounds: Array, logits: Array) -> Array:
    """U(x) = sum_y pi_y L(x, y) - H(pi) = sum_y pi_y (L(x, y) + log pi_y), per row: (batch,)."""
    log_pi = log_softmax(logits)
    return np.sum(np.exp(log_pi) * (bounds + log_pi), axis=1)


def unlabelled_bound_slips(bounds: Array, logits: Array) -> Hints:
    """U(x) as each usual slip computes it, with what to say."""
    k = logits.shape[1]
    log_pi = log_softmax(logits)
    pi = np.exp(log_pi)
    expected_bound = np.sum(pi * bounds, axis=1)
    entropy = -np.sum(pi * log_pi, axis=1)
    shifted0 = logits - logits.max(axis=0)  # the softmax over the batch (axis 0)
    log_pi_axis0 = shifted0 - np.log(np.exp(shifted0).sum(axis=0))
    pi_axis0 = np.exp(log_pi_axis0)
    return [
        (expected_bound + entropy,
         "the entropy enters with the wrong sign: U(x) = sum_y pi_y L(x, y) - H(pi), and "
         "-H(pi) = +sum_y pi_y log pi_y"),
        (expected_bound, "the entropy term is missing: U(x) = sum_y pi_y L(x, y) - H(pi) "
                         "(the -log q(y|x) inside the bound)"),
        (np.mean(bounds, axis=1) - entropy,
         "L(x, y) is averaged over the labels with equal weights: weight it by the classifier's "
         "pi_y = q(y | x), sum_y pi_y L(x, y)"),
        (np.sum(bounds, axis=1) - entropy,
         "L(x, y) is summed over the labels without weights: weight it by the classifier's "
         "pi_y = q(y | x), sum_y pi_y L(x, y)"),
        (np.min(bounds, axis=1), "this is the smallest L(x, y) over the labels: U sums over "
                                 "every label, weighted by pi_y, minus the entropy"),
        (np.mean(bounds, axis=1) - np.log(k),
         "this is U for the uniform pi = 1/K: use the classifier's probabilities "
         "pi = softmax(logits)"),
        (np.sum(pi_axis0 * (bounds + log_pi_axis0), axis=1),
         "the softmax runs over the batch (axis 0): each row's probabilities over the K labels "
         "must sum to 1 (softmax along axis=1)"),
        (np.sum(pi * bounds, axis=1) - entropy / np.log(2),
         "the entropy is in bits (np.log2): use the natural log, like L(x, y)"),
    ]


def check_unlabelled_bound(fn: Callable, bounds: Array, logits: Array) -> Array:
    """U(x) per row, against the reference; logits far from 0 must not overflow."""
    batch, k = bounds.shape
    expected = unlabelled_bound(bounds, logits)
    u = call(fn, bounds, logits)
    if u is not None and np.ndim(u) == 0:
        raise ExerciseError(
            f"U is a single number: return one value per row, shape ({batch},) — sum over the "
            "labels (axis=1), not over the batch"
        )
    check_type("U", u, np.ndarray)
    check_shape("U", u, (batch,))
    arr = np.asarray(u, dtype=np.float64)
    if not np.all(np.isfinite(arr)) and np.abs(logits).max() > 80:
        raise ExerciseError(
            f"U has {int((~np.isfinite(arr)).sum())} NaN or infinite values for logits up to "
            f"{np.abs(logits).max():.0f}: np.exp of large logits overflows, and log of a "
            "probability that rounded to 0 is -inf. Subtract each row's largest logit before "
            "exponentiating, and take log pi from the log-softmax, "
            "log pi = a - max(a) - log(sum(exp(a - max(a))))"
        )
    check_close("U", u, expected, rtol=1e-7, hints=unlabelled_bound_slips(bounds, logits),
                sizes={"labels": k})
    return u


# ----------------------------------------------------------------------------- 4. dU / dlogits


def unlabelled_bound_backward(bounds: Array, logits: Array) -> Array:
    """dU/da per row: pi * (g - sum_y pi_y g_y), g = dU/dpi = L + log pi + 1: (batch, K)."""
    log_pi = log_softmax(logits)
    pi = np.exp(log_pi)
    g = bounds + log_pi + 1
    return pi * (g - np.sum(pi * g, axis=1, keepdims=True))


def check_unlabelled_bound_backward(fn: Callable, bounds: Array, logits: Array) -> Array:
    """dU/dlogits, against the reference and finite differences of the course's U."""
    batch, k = bounds.shape
    expected = unlabelled_bound_backward(bounds, logits)
    log_pi = log_softmax(logits)
    pi = np.exp(log_pi)
    g = bounds + log_pi + 1
    u = unlabelled_bound(bounds, logits)[:, None]
    dlogits = call(fn, bounds, logits)
    check_type("dlogits", dlogits, np.ndarray)
    check_shape("dlogits", dlogits, (batch, k))
    arr = np.asarray(dlogits, dtype=np.float64)
    if not np.all(np.isfinite(arr)) and np.abs(logits).max() > 80:
        raise ExerciseError(
            "dlogits has NaN or infinite values for large logits: compute pi and log pi from the "
            "log-softmax (subtract each row's largest logit first), never log(softmax(...))"
        )
    check_close("dlogits", dlogits, expected, rtol=1e-7, sizes={"batch": batch}, hints=[
        (g, "this is dU/dpi = L + log pi + 1, the gradient for the probabilities: carry it "
            "through the softmax, dU/da = pi * (g - sum_y pi_y g_y)"),
        (pi * g, "the softmax backward is missing its second term: dU/da_k = pi_k * (g_k - "
                 "sum_y pi_y g_y), not pi_k * g_k (the probabilities sum to one, so every a_j "
                 "moves every pi)"),
        (pi * (1 - pi) * g, "only the diagonal of the softmax Jacobian is used: dpi_j/da_k = "
                            "pi_j (delta_jk - pi_k), so dU/da_k = pi_k (g_k - sum_y pi_y g_y)"),
        (pi * (bounds - np.sum(pi * bounds, axis=1, keepdims=True)),
         "the entropy's part is missing: dU/dpi_y = L(x, y) + log pi_y + 1 (the -H(pi) term "
         "contributes log pi_y + 1)"),
        (pi * (bounds - log_pi - 1 - np.sum(pi * (bounds - log_pi - 1), axis=1, keepdims=True)),
         "the entropy's part has the wrong sign: U = sum_y pi_y (L + log pi_y), so "
         "dU/dpi_y = L + log pi_y + 1"),
        (bounds + log_pi - u, "the factor pi is missing: dU/da = pi * (L + log pi - U)"),
        (pi * (g - np.sum(pi * g, axis=0, keepdims=True)),
         "the sum in the softmax backward runs over the batch (axis 0): it is over each row's "
         "labels, sum_y pi_y g_y (axis=1, keepdims=True)"),
    ])
    logits64 = np.array(logits, dtype=np.float64)
    numeric = numerical_gradient(lambda: float(unlabelled_bound(bounds, logits64).sum()), logits64)
    check_gradient("dlogits", dlogits, numeric)
    return dlogits


# ----------------------------------------------------------------------------- 5. the M2 objective


def m2_loss(bounds: Array, logits: Array, labels: Array, alpha: float) -> float:
    """(sum_labelled L(x, y) + sum_unlabelled U(x) + alpha * sum_labelled -log pi_y) / batch."""
    batch = len(labels)
    labelled = labels >= 0
    rows = np.flatnonzero(labelled)
    log_pi = log_softmax(logits)
    total = np.sum(bounds[rows, labels[rows]]) + np.sum(unlabelled_bound(
        bounds[~labelled], logits[~labelled])) - alpha * np.sum(log_pi[rows, labels[rows]])
    return float(total) / batch


def m2_loss_slips(bounds: Array, logits: Array, labels: Array, alpha: float) -> Hints:
    batch = len(labels)
    lab = labels >= 0
    rows = np.flatnonzero(lab)
    log_pi = log_softmax(logits)
    pi = np.exp(log_pi)
    l_sum = float(np.sum(bounds[rows, labels[rows]]))
    u_all = unlabelled_bound(bounds, logits)
    u_sum = float(np.sum(u_all[~lab]))
    ce_sum = float(-np.sum(log_pi[rows, labels[rows]]))
    # the -1 of an unlabelled row used as an index: column K-1
    l_minus_one = float(np.sum(bounds[np.arange(batch), labels]))
    ce_minus_one = float(-np.sum(log_pi[np.arange(batch), labels]))
    n_lab = max(len(rows), 1)
    return [
        ((l_sum + alpha * u_sum + alpha * ce_sum) / batch,
         "alpha multiplies the unlabelled term: alpha weights only the classification term "
         "-log q(y | x) of the labelled rows"),
        ((alpha * l_sum + u_sum + alpha * ce_sum) / batch,
         "alpha multiplies the labelled bound L(x, y) too: it weights only the classification "
         "term -log q(y | x)"),
        ((l_sum + u_sum) / batch,
         "the classification term alpha * sum_labelled -log q(y | x) is missing"),
        ((l_sum + u_sum - alpha * ce_sum) / batch,
         "the classification term has the wrong sign: it is -log q(y | x), a cross-entropy, "
         "which is never negative"),
        ((l_sum + u_sum + alpha * float(-np.sum(pi[rows, labels[rows]]))) / batch,
         "the classification term uses pi_y instead of log pi_y: it is -log q(y | x)"),
        ((float(np.sum(u_all)) + alpha * ce_sum) / batch,
         "the labelled rows get U(x) too: a labelled row's bound is L(x, y) at its own label"),
        ((l_sum + u_sum + alpha * ce_sum + float(np.sum(u_all[lab]))) / batch,
         "the labelled rows get U(x) as well as L(x, y): each row has one bound, L(x, y) if "
         "labelled, U(x) if not"),
        ((l_minus_one + alpha * ce_minus_one) / batch,
         "the unlabelled rows are treated as labelled with the label -1, which indexes the LAST "
         "column: rows with label -1 need U(x), select the labelled ones with labels >= 0"),
        ((l_minus_one + u_sum + alpha * ce_minus_one) / batch,
         "the rows with label -1 also enter the labelled terms (indexing with -1 picks the last "
         "column): select the labelled rows with labels >= 0"),
        (l_sum / n_lab + u_sum / max(batch - len(rows), 1) + alpha * ce_sum / n_lab,
         "each term is averaged over its own rows: the objective is one sum over the whole "
         "batch divided by the batch size"),
    ]


def check_m2_loss(fn: Callable, bounds: Array, logits: Array, labels: Array, alpha: float) -> float:
    """The M2 objective of a mixed batch, with the course's unlabelled_bound given to ``fn``."""
    expected = m2_loss(bounds, logits, labels, alpha)
    loss = call(fn, bounds, logits, labels, alpha, using={"unlabelled_bound": unlabelled_bound})
    check_type("loss", loss, float)
    if not np.isfinite(float(loss)) and np.abs(logits).max() > 80:
        raise ExerciseError(
            f"loss is {float(loss)} for logits up to {np.abs(logits).max():.0f}: np.exp of large "
            "logits overflows. Compute log q(y | x) with the log-softmax, subtracting each row's "
            "largest logit first"
        )
    check_close("loss", loss, expected, rtol=1e-9,
                hints=m2_loss_slips(bounds, logits, labels, alpha),
                sizes={"batch": len(labels)})
    return float(loss)


# ----------------------------------------------------------------------------- 6. M1's features


class ChunkedEncoder:
    """A VAE seen through ``encode`` only, which refuses batches larger than ``batch_size``
    (so a test can tell that features are computed in chunks) and counts the rows it encoded."""

    def __init__(self, vae: Any, batch_size: int):
        self._vae, self.batch_size = vae, batch_size
        self.z_dim, self.x_dim = vae.z_dim, vae.x_dim
        self.rows_encoded = 0

    def encode(self, x: Any) -> tuple[Array, Array]:
        n = int(np.shape(x)[0])
        if n > self.batch_size:
            raise ExerciseError(
                f"vae.encode was given {n} rows at once, more than batch_size = "
                f"{self.batch_size}: encode the data in chunks x[start:start + batch_size]"
            )
        self.rows_encoded += n
        mu, logvar = self._vae.encode(x)
        return backend.to_numpy(mu), backend.to_numpy(logvar)

    def __getattr__(self, name: str) -> Any:
        if name in ("decode", "reconstruct", "decoder_output", "sample"):
            raise ExerciseError(
                f"m1_features called vae.{name}: M1's features come from the encoder alone, "
                "the posterior means mu(x) of q(z | x)"
            )
        raise AttributeError(name)


def m1_features(vae: Any, x: Array, batch_size: int) -> Array:
    """M1's features: mu(x) of q(z | x), encoded in chunks of batch_size rows: (n, z_dim)."""
    chunks = [vae.encode(x[start:start + batch_size])[0] for start in range(0, len(x), batch_size)]
    return np.concatenate(chunks).astype(np.float64)


def check_m1_features(fn: Callable, vae: Any, x: Array, batch_size: int) -> Array:
    """The posterior means of every row of x, computed in chunks of at most batch_size rows."""
    n, z_dim = len(x), vae.z_dim
    mu, logvar = (backend.to_numpy(a) for a in vae.encode(x))
    encoder = ChunkedEncoder(vae, batch_size)
    features = call(fn, encoder, x, batch_size)
    check_type("features", features, np.ndarray)
    shape = tuple(np.shape(features))
    if shape == (n, 2 * z_dim):
        raise ExerciseError(
            f"features has shape {shape}: both mu and logvar? M1's features are the posterior "
            f"means mu(x) alone, ({n}, {z_dim})"
        )
    if shape[1:] == (z_dim,) and shape[0] == batch_size < n:
        raise ExerciseError(
            f"features has {shape[0]} rows for {n} images: only the first chunk's means? Collect "
            "the means of every chunk in a list and concatenate them after the loop"
        )
    if shape[1:] == (z_dim,) and shape[0] == n - n % batch_size < n:
        raise ExerciseError(
            f"features has {shape[0]} rows for {n} images: the last, shorter chunk is missing — "
            f"loop start = 0, {batch_size}, ... while start < {n}: range(0, len(x), batch_size)"
        )
    if encoder.rows_encoded > n:
        raise ExerciseError(
            f"vae.encode saw {encoder.rows_encoded} rows for {n} images: the chunks overlap; "
            f"step by batch_size (start = 0, {batch_size}, {2 * batch_size}, ...)"
        )
    check_shape("features", features, (n, z_dim))
    again = call(fn, ChunkedEncoder(vae, batch_size), x, batch_size)
    if np.shape(again) == shape and not np.allclose(again, features):
        raise ExerciseError(
            "two calls gave different features: a sampled z = mu + std * eps is noise that says "
            "nothing about x. M1 uses the posterior mean mu(x) itself"
        )
    std = np.exp(0.5 * logvar)
    check_close("features", features, mu, rtol=1e-6, hints=[
        (logvar, "these are the log-variances: M1's features are the means mu(x) (the first "
                 "output of vae.encode)"),
        (std, "these are the standard deviations: M1's features are the means mu(x)"),
        (np.exp(logvar), "these are the variances: M1's features are the means mu(x)"),
        (mu.T, "transposed: one row per image, (n, z_dim)"),
    ])
    return features

