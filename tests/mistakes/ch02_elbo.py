"""Planted mistakes for solutions/02_elbo.ipynb: each must make its exercise's graded test fail.

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new) triples;
``old`` is an exact substring of that solution cell and ``new`` the learner's typical slip.
"""

MISTAKES = {
    "kl_standard_normal": [
        ("the KL with a flipped sign", "kl = float(-0.5 * np.sum(", "kl = float(0.5 * np.sum("),
        (
            "the 0.5 in front of the KL forgotten",
            "kl = float(-0.5 * np.sum(",
            "kl = float(-np.sum(",
        ),
        (
            "the KL averaged over latent dimensions instead of summed",
            "np.sum(1 + logvar - mu**2 - var)) / batch",
            "np.mean(1 + logvar - mu**2 - var, axis=1).sum()) / batch",
        ),
        ("exp(logvar) taken as the std", "var = np.exp(logvar)", "var = np.exp(0.5 * logvar)"),
        ("the KL summed over the batch", ")) / batch\n", "))\n"),
        ("dmu with a flipped sign", "dmu = mu / batch", "dmu = -mu / batch"),
        ("dmu without the 1/batch", "dmu = mu / batch", "dmu = mu"),
        (
            "the 0.5 in dlogvar forgotten",
            "dlogvar = 0.5 * (var - 1) / batch",
            "dlogvar = (var - 1) / batch",
        ),
        (
            "dlogvar with a flipped sign",
            "dlogvar = 0.5 * (var - 1) / batch",
            "dlogvar = 0.5 * (1 - var) / batch",
        ),
    ],
    "kl_monte_carlo": [
        ("exp(logvar) used as the std", "std = np.exp(0.5 * logvar)", "std = np.exp(logvar)"),
        (
            "log p - log q instead of log q - log p",
            "np.sum(log_q - log_p, axis=-1)",
            "np.sum(log_p - log_q, axis=-1)",
        ),
        (
            "a mean over latent dimensions instead of a sum",
            "np.sum(log_q - log_p, axis=-1)",
            "np.mean(log_q - log_p, axis=-1)",
        ),
        (
            "the logvar term of log q forgotten",
            "-0.5 * (LOG_2PI + logvar + eps**2)",
            "-0.5 * (LOG_2PI + eps**2)",
        ),
        (
            "the 0.5 of log p forgotten",
            "log_p = -0.5 * (LOG_2PI + z**2)",
            "log_p = -(LOG_2PI + z**2)",
        ),
        (
            "the samples summed instead of averaged",
            "kl = float(np.mean(np.sum(log_q - log_p, axis=-1)))",
            "kl = float(np.sum(np.mean(np.sum(log_q - log_p, axis=-1), axis=1)))",
        ),
    ],
    "gaussian_nll_learned_var": [
        ("the 0.5 forgotten", "np.sum(0.5 * (LOG_2PI", "np.sum((LOG_2PI"),
        (
            "the log(2 pi) constant forgotten",
            "0.5 * (LOG_2PI + logvar + diff**2 * inv_var)",
            "0.5 * (logvar + diff**2 * inv_var)",
        ),
        (
            "divided by the std instead of the variance",
            "inv_var = np.exp(-logvar)",
            "inv_var = np.exp(-0.5 * logvar)",
        ),
        (
            "dmean with a flipped sign",
            "dmean = diff * inv_var / batch",
            "dmean = -diff * inv_var / batch",
        ),
        (
            "dlogvar without the 0.5",
            "dlogvar = 0.5 * (1 - diff**2 * inv_var) / batch",
            "dlogvar = (1 - diff**2 * inv_var) / batch",
        ),
        (
            "dlogvar with the sign of the squared-error term flipped",
            "dlogvar = 0.5 * (1 - diff**2 * inv_var) / batch",
            "dlogvar = 0.5 * (1 + diff**2 * inv_var) / batch",
        ),
        ("the loss averaged over pixels", "inv_var))) / batch", "inv_var))) / batch / x.shape[1]"),
    ],
}
