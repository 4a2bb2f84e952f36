"""Planted mistakes for solutions/05_imputation.ipynb: each must fail its own exercise's graded
test with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

LOSS = "loss = float((per_entry * mask).sum()) / batch"
DLOGITS = "dlogits = (sigmoid(logits) - x) * mask / batch"
RETURN_GIBBS = "return np.where(mask, x_tilde, x_mean)"
LOG_W = "log_w[k] = log_px + log_pz - log_qz"
NORMALISE = "w = w / w.sum(axis=0)"
GREATER = "greater = (pos[:, None] > neg[None, :]).mean()"
AUC = "return float(greater + 0.5 * ties)"

MISTAKES = {
    "masked_bernoulli_nll": [
        (
            "the mask forgotten in the gradient",
            DLOGITS,
            "dlogits = (sigmoid(logits) - x) / batch",
            "dlogits is not 0 at missing entries",
        ),
        (
            "the mask forgotten in the loss",
            LOSS,
            "loss = float(per_entry.sum()) / batch",
            "your loss counts the missing entries too",
        ),
        (
            "the mask inverted",
            LOSS + "\n    " + DLOGITS,
            LOSS.replace("mask", "~mask") + "\n    " + DLOGITS.replace("mask", "~mask"),
            "the mask is inverted",
        ),
        (
            "divided by the observed count instead of the batch",
            LOSS,
            "loss = float((per_entry * mask).sum()) / mask.sum()",
            "you divided by the number of observed entries",
        ),
        (
            "the gradient divided by the observed count",
            DLOGITS,
            "dlogits = (sigmoid(logits) - x) * mask / mask.sum()",
            "dlogits is divided by the number of observed entries",
        ),
        (
            "a flipped sign in the gradient",
            DLOGITS,
            "dlogits = (x - sigmoid(logits)) * mask / batch",
            "dlogits: the sign is flipped",
        ),
        (
            "the unstable log(sigmoid) form",
            "per_entry = softplus(logits) - x * logits",
            "per_entry = -(x * np.log(sigmoid(logits)) + (1 - x) * np.log(1 - sigmoid(logits)))",
            "the loss is not finite for logits of ±1e4",
        ),
        (
            "the loss summed over the batch",
            LOSS,
            "loss = float((per_entry * mask).sum())",
            "5 times too large — 5 is the batch size",
        ),
        (
            "the loss averaged over the pixels",
            LOSS,
            "loss = float((per_entry * mask).mean())",
            "7 times too small — 7 is the number of pixels",
        ),
        (
            "each example averaged over its observed entries",
            LOSS,
            "loss = float(((per_entry * mask).sum(axis=1) / mask.sum(axis=1)).mean())",
            "you averaged each example's loss over its observed entries",
        ),
        (
            "x zero-filled instead of masking the loss",
            "per_entry = softplus(logits) - x * logits\n    " + LOSS,
            "per_entry = softplus(logits) - x * mask * logits\n"
            "    loss = float(per_entry.sum()) / batch",
            "you zero-filled x, but the missing entries still add softplus(l)",
        ),
        (
            "the loss left as an array per example",
            LOSS,
            "loss = (per_entry * mask).sum(axis=1) / batch",
            "loss: expected a single number (float), got an array of shape (5,)",
        ),
        (
            "the gradient without the 1/batch",
            DLOGITS,
            "dlogits = (sigmoid(logits) - x) * mask",
            "5 times too large — 5 is the batch size",
        ),
        (
            "missing entries of x zeroed in place",
            "    batch = x.shape[0]\n",
            "    batch = x.shape[0]\n    x[~mask] = 0.0\n",
            "your function changed its argument `x` in place",
        ),
        (
            "logits masked in place",
            "    batch = x.shape[0]\n",
            "    batch = x.shape[0]\n    logits *= mask\n",
            "your function changed its argument `logits` in place",
        ),
    ],
    "pseudo_gibbs_step": [
        (
            "exp(logvar) as the std",
            "z = mu + np.exp(0.5 * logvar) * eps",
            "z = mu + np.exp(logvar) * eps",
            "this looks like exp(logvar) as the std",
        ),
        (
            "observed entries overwritten",
            RETURN_GIBBS,
            "return x_mean",
            "an observed entry changed",
        ),
        (
            "the mask read the wrong way round",
            RETURN_GIBBS,
            "return np.where(mask, x_mean, x_tilde)",
            "the mask is read the wrong way round",
        ),
        ("z = mu, no sampling", "z = mu + np.exp(0.5 * logvar) * eps", "z = mu", "you decoded mu"),
        (
            "the encoder given zero-filled data",
            "mu, logvar = model.encode(x_tilde)",
            "mu, logvar = model.encode(np.where(mask, x_tilde, 0.0))",
            "you encoded the zero-filled data",
        ),
        (
            "the logits as the fill",
            "x_mean = model.decode(z)",
            "x_mean = model.decoder_output(z)",
            "the missing entries hold the decoder's logits",
        ),
        (
            "eps divided by the std",
            "z = mu + np.exp(0.5 * logvar) * eps",
            "z = mu + np.exp(-0.5 * logvar) * eps",
            "this divides eps by the std",
        ),
        (
            "fresh noise instead of eps",
            "z = mu + np.exp(0.5 * logvar) * eps",
            "z = mu + np.exp(0.5 * logvar) * np.random.standard_normal(mu.shape)",
            "two calls with the same eps gave different results",
        ),
        (
            "x_tilde filled in place",
            RETURN_GIBBS,
            "x_tilde[~mask] = x_mean[~mask]\n    return x_tilde",
            "your function changed its argument `x_tilde` in place",
        ),
        (
            "the fill drawn from p(x|z)",
            "x_mean = model.decode(z)",
            "x_mean = model.likelihood.sample(model.decoder_output(z), np.random.default_rng(0))",
            "the missing entries hold only 0s and 1s",
        ),
    ],
    "importance_weighted_imputation": [
        (
            "log q added instead of subtracted",
            LOG_W,
            "log_w[k] = log_px + log_pz + log_qz",
            "log q(z_k|x) must be subtracted",
        ),
        (
            "log q forgotten",
            LOG_W,
            "log_w[k] = log_px + log_pz",
            "log q(z_k|x) is missing from the log-weight",
        ),
        (
            "log p(z) forgotten",
            LOG_W,
            "log_w[k] = log_px - log_qz",
            "log p(z_k) is missing from the log-weight",
        ),
        (
            "only log p(x|z) as the weight",
            LOG_W,
            "log_w[k] = log_px",
            "log p(z_k) - log q(z_k|x) is missing",
        ),
        (
            "uniform weights (a plain average)",
            NORMALISE,
            "w = np.ones_like(w) / n_draws",
            "every draw got the same weight",
        ),
        (
            "normalised over the batch instead of the draws",
            NORMALISE,
            "w = w / w.sum(axis=1, keepdims=True)",
            "normalise over the draws k (axis 0), not over the batch",
        ),
        ("the weights not normalised", NORMALISE + "\n", "\n", "the weights are not normalised"),
        (
            "a mean over the draws where the sum belongs",
            "x_hat = np.sum(w[:, :, None] * means, axis=0)",
            "x_hat = np.mean(w[:, :, None] * means, axis=0)",
            "the weighted means are averaged over the K = 50 draws",
        ),
        (
            "observed entries overwritten",
            "return np.where(mask, x, x_hat)",
            "return x_hat",
            "an observed entry changed",
        ),
        (
            "the encoder given x with its holes (NaN)",
            "mu, logvar = model.encode(x_filled)",
            "mu, logvar = model.encode(x)",
            "The model was given x with its holes",
        ),
        (
            "the likelihood given x with its holes",
            "log_px = model.likelihood.log_prob(out, x_filled, mask)",
            "log_px = model.likelihood.log_prob(out, x, mask)",
            "a missing entry of x was read",
        ),
        (
            "the mask not given to the likelihood",
            "log_px = model.likelihood.log_prob(out, x_filled, mask)",
            "log_px = model.likelihood.log_prob(out, x_filled)",
            "counts the missing (zero-filled) entries too",
        ),
        (
            "the maximum not subtracted",
            "w = np.exp(log_w - log_w.max(axis=0))",
            "w = np.exp(log_w)",
            "the imputation contains NaN even for an x without any NaN",
        ),
        (
            "exp(logvar) as the std",
            "std = np.exp(0.5 * logvar)",
            "std = np.exp(logvar)",
            "this looks like exp(logvar) as the std",
        ),
        (
            "the missing entries of x zero-filled in place",
            "x_filled = np.where(mask, x, 0.0)",
            "x[~mask] = 0.0\n    x_filled = x",
            "your function changed its argument `x` in place",
        ),
    ],
    "roc_auc": [
        ("ties not counted", AUC, "return float(greater)", "ties are not counted"),
        ("ties counted fully", AUC, "return float(greater + ties)", "ties count one half, not one"),
        (
            "ties counted 1.5 times with >=",
            GREATER,
            "greater = (pos[:, None] >= neg[None, :]).mean()",
            "ties are counted 1.5 times",
        ),
        (
            "the classes swapped (normal above anomaly)",
            GREATER,
            "greater = (neg[:, None] > pos[None, :]).mean()",
            "this is 1 - AUC",
        ),
        (
            "one class compared with itself",
            "pos = scores[labels == 1]",
            "pos = scores[labels == 0]",
            "both sides hold the same class",
        ),
        (
            "the labels used as indices",
            "pos = scores[labels == 1]",
            "pos = scores[labels]",
            "scores[labels] uses the labels as indices",
        ),
        (
            "an element-wise comparison that needs equal class sizes",
            GREATER + "\n    ties = (pos[:, None] == neg[None, :]).mean()",
            "greater = (pos > neg).mean()\n    ties = (pos == neg).mean()",
            "broadcast pos[:, None] against neg[None, :]",
        ),
        (
            "np.trapz of a ROC curve",
            AUC,
            "order = np.argsort(-scores)\n"
            "    tpr = np.r_[0, np.cumsum(labels[order] == 1)] / len(pos)\n"
            "    fpr = np.r_[0, np.cumsum(labels[order] == 0)] / len(neg)\n"
            "    return float(np.trapz(tpr, fpr))",
            "np.trapz, which NumPy",
        ),
        (
            "ranks without tie handling",
            AUC,
            "ranks = np.empty(len(scores))\n"
            "    ranks[np.argsort(scores, kind='stable')] = np.arange(1, len(scores) + 1)\n"
            "    n1, n0 = len(pos), len(neg)\n"
            "    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))",
            "tied scores are ranked by their order, not as ties",
        ),
        (
            "the scores sorted in place",
            "    pos = scores[labels == 1]\n",
            "    scores.sort()\n    pos = scores[labels == 1]\n",
            "your function changed its argument `scores` in place",
        ),
    ],
}
