"""The graded checks of problem set 05 (imputation and anomalies), with the reference maths they
compare with and the usual slips they recognise::

    from minivae.course import ch05_imputation as ch05
    ch05.check_roc_auc(roc_auc, scores, labels)

The references are the library's: ``Bernoulli().nll(logits, x, mask)``,
``minivae.imputation.pseudo_gibbs_step`` and ``importance_weighted_imputation``, and
``minivae.anomaly.roc_auc``. The mask convention is the library's: True = observed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..anomaly import roc_auc
from ..gradcheck import numerical_gradient
from ..imputation import importance_weighted_imputation, pseudo_gibbs_step
from ..layers import sigmoid, softplus
from ..likelihoods import Bernoulli
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
LOG_2PI = float(np.log(2 * np.pi))


# ----------------------------------------------------------------------------- 1. masked NLL


def check_masked_bernoulli_nll(fn: Callable, logits: Array, x: Array, mask: Array) -> float:
    """loss = (1/B) sum mask * [softplus(l) - x l], dlogits = mask * (sigmoid(l) - x) / B."""
    batch, pixels = x.shape
    ref_loss, ref_dlogits = Bernoulli().nll(logits, x, mask)
    per_entry = softplus(logits) - x * logits
    all_seen = np.ones_like(mask)
    result = call(fn, logits, x, mask)
    loss, dlogits = unpack(result, ["loss", "dlogits"], "masked_bernoulli_nll(logits, x, mask)")
    check_type("loss", loss, float)
    check_close(
        "loss",
        loss,
        ref_loss,
        rtol=1e-10,
        sizes={"batch": batch, "pixels": pixels},
        hints=[
            (
                Bernoulli().nll(logits, x, all_seen)[0],
                "your loss counts the missing entries too: multiply each entry's loss by the mask",
            ),
            (
                Bernoulli().nll(logits, x, ~mask)[0],
                "the mask is inverted: True means observed, and only the observed entries count",
            ),
            (
                ref_loss * batch / mask.sum(),
                "you divided by the number of observed entries; "
                "divide by the batch size (the loss is averaged over "
                "the batch)",
            ),
            (
                float(((per_entry * mask).sum(axis=1) / mask.sum(axis=1).clip(1)).mean()),
                "you averaged each example's loss over its observed entries; SUM over them and "
                "average over the batch",
            ),
            (
                float((softplus(logits) - x * mask * logits).sum()) / batch,
                "you zero-filled x, but the missing entries still add softplus(l): multiply the "
                "per-entry loss by the mask",
            ),
        ],
    )
    check_shape("dlogits", dlogits, logits.shape)
    dl = np.asarray(dlogits, dtype=np.float64)
    if np.allclose(dl, (sigmoid(logits) - x) * ~mask / batch, rtol=1e-8):
        raise ExerciseError(
            "dlogits is not 0 at the observed entries and 0 at the missing ones: the mask is "
            "inverted (True = observed; multiply by mask, not by ~mask)"
        )
    if np.any(dl[~mask] != 0):
        raise ExerciseError(
            "dlogits is not 0 at missing entries: a missing entry does not enter the loss, so "
            "its gradient must be exactly 0 (multiply the gradient by the mask)"
        )
    check_close(
        "dlogits",
        dlogits,
        ref_dlogits,
        rtol=1e-10,
        sizes={"batch": batch, "pixels": pixels},
        hints=[
            (
                ref_dlogits * batch / mask.sum(),
                "dlogits is divided by the number of observed entries; divide by the batch size",
            ),
        ],
    )
    logits64 = np.array(logits, dtype=np.float64)
    numeric = numerical_gradient(lambda: fn(logits64, x, mask)[0], logits64)
    check_gradient("dlogits (against finite differences)", dlogits, numeric, tol=1e-7)
    extreme = np.array([[-1e4, 1e4, 30.0]])
    loss_extreme, _ = unpack(
        call(fn, extreme, np.array([[1.0, 0.0, 1.0]]), np.ones((1, 3), bool)),
        ["loss", "dlogits"],
        "masked_bernoulli_nll(logits, x, mask)",
    )
    if not np.isfinite(loss_extreme):
        raise ExerciseError(
            "the loss is not finite for logits of ±1e4: log(sigmoid(l)) is -inf there. Use "
            "softplus(l) - x * l, which is exact and stable"
        )
    return loss


# ----------------------------------------------------------------------------- 2. pseudo-Gibbs


def check_pseudo_gibbs_step(
    fn: Callable, model: Any, x_tilde: Array, mask: Array, eps: Array
) -> Array:
    """One step: z = mu + std * eps from q(z | x_tilde), missing entries <- decode(z)."""
    expected = pseudo_gibbs_step(model, x_tilde, mask, eps=eps)
    mu, logvar = model.encode(x_tilde)
    got = call(fn, model, x_tilde, mask, eps)
    check_type("the new x_tilde", got, np.ndarray)
    check_shape("the new x_tilde", got, x_tilde.shape)
    got_arr = np.asarray(got, dtype=np.float64)
    if not np.array_equal(got_arr[mask], x_tilde[mask]):
        if np.array_equal(got_arr[~mask], x_tilde[~mask]):
            raise ExerciseError(
                "the observed entries changed and the missing ones did not: the mask is read "
                "the wrong way round (True = observed): np.where(mask, x_tilde, x_mean)"
            )
        raise ExerciseError(
            "an observed entry changed: only the missing entries (mask False) are replaced; "
            "use np.where(mask, x_tilde, x_mean)"
        )
    again = call(fn, model, x_tilde, mask, eps)
    if not np.allclose(np.asarray(again, dtype=np.float64), got_arr, rtol=0, atol=0):
        raise ExerciseError(
            "two calls with the same eps gave different results: draw z with the eps you are "
            "given, z = mu + exp(0.5 * logvar) * eps"
        )

    filled = got_arr[~mask]
    if np.all(np.isin(filled, (0.0, 1.0))) and not np.all(np.isin(expected[~mask], (0.0, 1.0))):
        raise ExerciseError(
            "the missing entries hold only 0s and 1s: draws of p(x|z). This step fills them with "
            "the mean E[x|z] = model.decode(z)"
        )

    def fill(z: Array, mean: Callable = model.decode, x_in: Array = x_tilde) -> Array:
        return np.where(mask, x_in, mean(z))

    check_close(
        "the new x_tilde",
        got,
        expected,
        rtol=1e-10,
        common_hints=False,
        probabilities=True,
        hints=[
            (
                fill(mu + np.exp(logvar) * eps),
                "this looks like exp(logvar) as the std — the std is exp(0.5 * logvar)",
            ),
            (fill(mu), "you decoded mu: draw z = mu + std * eps with the given eps"),
            (
                pseudo_gibbs_step(model, np.where(mask, x_tilde, 0.0), mask, eps=eps),
                "you encoded the zero-filled data: pseudo-Gibbs encodes the current completion "
                "x_tilde, guesses included",
            ),
            (
                fill(mu + np.exp(0.5 * logvar) * eps, model.decoder_output),
                "the missing entries hold the decoder's logits: fill them with E[x|z] = "
                "model.decode(z), the probabilities",
            ),
            (
                fill(mu + np.exp(-0.5 * logvar) * eps),
                "this divides eps by the std: z = mu + std * eps",
            ),
        ],
    )
    return got


# ----------------------------------------------------------------------------- 3. MIWAE


def iw_parts(model: Any, x: Array, mask: Array, eps: Array, std_power: float = 0.5) -> dict:
    """The pieces of importance-weighted imputation, each (K, batch) or (K, batch, D)."""
    x_filled = np.where(mask, x, 0.0)
    mu, logvar = model.encode(x_filled)
    z = mu + np.exp(std_power * logvar) * eps
    k, batch, z_dim = eps.shape
    out = model.decoder_output(z.reshape(k * batch, z_dim))
    x_rep, mask_rep = np.tile(x_filled, (k, 1)), np.tile(mask, (k, 1))
    return {
        "px": np.asarray(model.likelihood.log_prob(out, x_rep, mask_rep)).reshape(k, batch),
        "px_all": np.asarray(model.likelihood.log_prob(out, x_rep)).reshape(k, batch),
        "pz": -0.5 * np.sum(z**2 + LOG_2PI, axis=-1),
        "qz": -0.5 * np.sum(eps**2 + LOG_2PI + logvar, axis=-1),
        "means": np.asarray(model.likelihood.mean(out)).reshape(k, batch, -1),
    }


def iw_impute(
    parts: dict,
    x: Array,
    mask: Array,
    log_w: Array,
    *,
    normalise: bool = True,
    reduce: str = "sum",
) -> Array:
    """Combine log-weights (K, batch) and means into an imputation (the switches: slips)."""
    w = np.exp(log_w - log_w.max(axis=0))
    if normalise:
        w = w / w.sum(axis=0)
    weighted = w[:, :, None] * parts["means"]
    x_hat = weighted.sum(axis=0) if reduce == "sum" else weighted.mean(axis=0)
    return np.where(mask, x, x_hat)


def check_importance_weighted_imputation(
    fn: Callable, model: Any, x: Array, mask: Array, eps: Array, *, bernoulli: bool = True
) -> Array:
    """MIWAE's single imputation from the given eps; x's missing entries hold NaN for the call,
    so reading them shows."""
    expected = importance_weighted_imputation(model, x, mask, eps=eps)
    x_in = np.where(mask, x, np.nan)  # missing entries hold NaN: they must never be read
    try:
        got = call(fn, model, x_in, mask, eps)
    except ExerciseError as err:
        if "raised ValueError" in str(err) and "NaN" in str(err):
            raise ExerciseError(
                f"{err}".splitlines()[0] + "\nThe model was given x with its holes (they hold NaN "
                "here, as missing data often does): zero-fill first, x_filled = "
                "np.where(mask, x, 0.0), and encode x_filled"
            ) from None
        raise
    check_type("the imputation", got, np.ndarray)
    check_shape("the imputation", got, x.shape)
    got_arr = np.asarray(got, dtype=np.float64)
    if np.isnan(got_arr).any():
        clean = np.asarray(call(fn, model, np.where(mask, x, 0.0), mask, eps), dtype=np.float64)
        if np.isnan(clean).any():
            raise ExerciseError(
                "the imputation contains NaN even for an x without any NaN: the log-weights here "
                f"are around {iw_parts(model, x, mask, eps)['px'].mean():.0f}, and exp() of such "
                "numbers underflows to 0, so the normalisation divides 0 by 0. Subtract each "
                "example's largest log-weight before exponentiating (the weights do not change)"
            )
        raise ExerciseError(
            "the imputation contains NaN where x's missing entries held NaN: a missing entry of "
            "x was read. Zero-fill first, x_filled = np.where(mask, x, 0.0), and give that to "
            "the encoder and to the likelihood"
        )
    if not np.array_equal(got_arr[mask], x[mask]):
        raise ExerciseError("an observed entry changed: return np.where(mask, x, x_hat)")
    parts = iw_parts(model, x, mask, eps)
    log_w = parts["px"] + parts["pz"] - parts["qz"]
    var = iw_parts(model, x, mask, eps, std_power=1.0)
    slips = [
        (
            iw_impute(parts, x, mask, 0 * log_w),
            "every draw got the same weight: weight each z_k "
            "by p(x_obs|z_k) p(z_k) / q(z_k|x), then "
            "normalise",
        ),
        (
            iw_impute(parts, x, mask, parts["px"] + parts["pz"] + parts["qz"]),
            "log q(z_k|x) must be subtracted from the log-weight, not added",
        ),
        (
            iw_impute(parts, x, mask, parts["px"] + parts["pz"]),
            "log q(z_k|x) is missing from the log-weight: w_k = p(x_obs|z_k) p(z_k) / q(z_k|x)",
        ),
        (
            iw_impute(parts, x, mask, parts["px"] - parts["qz"]),
            "log p(z_k) is missing from the log-weight: w_k = p(x_obs|z_k) p(z_k) / q(z_k|x)",
        ),
        (
            iw_impute(parts, x, mask, parts["px"]),
            "log p(z_k) - log q(z_k|x) is missing from the log-weight",
        ),
        (
            iw_impute(parts, x, mask, parts["px_all"] + parts["pz"] - parts["qz"]),
            "log p(x|z_k) counts the missing (zero-filled) entries too: pass the mask to the "
            "likelihood, model.likelihood.log_prob(out, x_filled, mask)",
        ),
        (
            iw_impute(parts, x, mask, log_w, reduce="mean"),
            f"the weighted means are averaged over the K = {eps.shape[0]} draws: the weights "
            "already sum to 1, so SUM w_k E[x|z_k] over the draws",
        ),
        (
            iw_impute(parts, x, mask, log_w, normalise=False),
            "the weights are not normalised: divide them by their sum over the K draws",
        ),
        (
            iw_impute(var, x, mask, var["px"] + var["pz"] - var["qz"]),
            "this looks like exp(logvar) as the std: z_k = mu + exp(0.5 * logvar) * eps_k",
        ),
    ]
    check_close(
        "the imputation",
        got,
        expected,
        rtol=1e-8,
        atol=1e-10,
        common_hints=False,
        hints=slips,
        probabilities=(
            "it is not a weighted average of the E[x|z_k] (which lie in [0, 1]): for each row the "
            "K weights must sum to 1 — normalise over the draws k (axis 0), not over the batch"
        )
        if bernoulli
        else False,
    )
    return got


# ----------------------------------------------------------------------------- 4. ROC AUC


def _rank_auc(scores: Array, labels: Array, kind: str | None) -> float:
    """The Mann-Whitney AUC with ties broken by a sort's order (a usual slip)."""
    order = np.argsort(scores, kind=kind)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    n1 = int((labels == 1).sum())
    n0 = len(labels) - n1
    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _pair_auc(pos: Array, neg: Array, tie: float) -> float:
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + tie * ties)


def check_roc_auc(fn: Callable, scores: Array, labels: Array) -> float:
    """P(anomaly scores higher than normal) + 1/2 P(tie), for classes of unequal size."""
    expected = roc_auc(scores, labels)
    pos, neg = scores[labels == 1], scores[labels == 0]
    n1, n0 = len(pos), len(neg)
    advice = (
        f"There are {n1} anomalies and {n0} normal examples: to compare every anomaly with every "
        "normal example, broadcast pos[:, None] against neg[None, :], a "
        f"({n1}, {n0}) table (pos > neg entry by entry needs equal lengths)"
    )
    got = call(fn, scores, labels, advice=advice)
    check_type("AUC", got, float)
    by_index = scores[np.asarray(labels, dtype=int)]  # labels used as indices: entries 0 and 1
    by_index_message = (
        "scores[labels] uses the labels as indices (it picks entries 0 and 1): select with "
        "scores[labels == 1] and scores[labels == 0]"
    )
    hints = [
        (
            1 - expected,
            "this is 1 - AUC: the anomalies (label 1) should score higher; did you "
            "swap the two classes?",
        ),
        (
            _pair_auc(pos, neg, 0.0),
            "ties are not counted: a tie between an anomaly and a normal example counts one half",
        ),
        (_pair_auc(pos, neg, 1.0), "ties count one half, not one (use >, and add 0.5 * the ties)"),
        (
            _pair_auc(pos, neg, 1.5),
            "ties are counted 1.5 times: >= already counts each tie "
            "once; use > and add 0.5 * the ties",
        ),
        (
            _rank_auc(scores, labels, "stable"),
            "tied scores are ranked by their order, not as "
            "ties: a tie counts one half (average ranks, or "
            "compare every pair)",
        ),
        (
            _rank_auc(scores, labels, None),
            "tied scores are ranked by their order, not as ties: "
            "a tie counts one half (average ranks, or compare "
            "every pair)",
        ),
        (
            0.5,  # one class against itself: every pair has its mirror image
            "both sides hold the same class: compare the anomalies (label 1) with the normal "
            "examples (label 0)",
        ),
        (_pair_auc(by_index, neg, 0.5), by_index_message),
        (_pair_auc(by_index, scores[np.asarray(1 - labels, dtype=int)], 0.5), by_index_message),
    ]
    check_close("AUC", got, expected, rtol=1e-12, common_hints=False, hints=hints)
    return got
