"""Planted mistakes for solutions/02_elbo.ipynb: each must fail its own exercise's graded test
with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

KL = "kl = float(-0.5 * np.sum(1 + logvar - mu**2 - var)) / batch"
MC = "kl = float(np.mean(np.sum(log_q - log_p, axis=-1)))"
NLL = "loss = float(np.sum(0.5 * (LOG_2PI + logvar + diff**2 * inv_var))) / batch"

MISTAKES = {
    "kl_standard_normal": [
        (
            "the KL with a flipped sign",
            "kl = float(-0.5 *",
            "kl = float(0.5 *",
            "your KL has the wrong sign",
        ),
        (
            "the 0.5 in front of the KL forgotten",
            "kl = float(-0.5 * np.sum(",
            "kl = float(-np.sum(",
            "the factor 1/2 in front is missing",
        ),
        (
            "the KL averaged over latent dimensions instead of summed",
            KL,
            "kl = float(np.mean(-0.5 * (1 + logvar - mu**2 - var), axis=1).sum()) / batch",
            "your KL is averaged over the latent dimensions",
        ),
        (
            "exp(0.5 logvar), the std, where the variance belongs",
            "var = np.exp(logvar)",
            "var = np.exp(0.5 * logvar)",
            "exp(0.5 * logvar), the standard deviation, where the variance",
        ),
        (
            "logvar treated as a log standard deviation",
            KL,
            "kl = float(-0.5 * np.sum(1 + 2 * logvar - mu**2 - var**2)) / batch",
            "logvar treated as a log standard deviation",
        ),
        (
            "the KL summed over the batch",
            ")) / batch\n",
            "))\n",
            "your KL is summed over the batch",
        ),
        ("mu where mu**2 belongs", "- mu**2 -", "- mu -", "this uses mu where mu**2 belongs"),
        (
            "the logvar term forgotten",
            "1 + logvar - mu**2",
            "1 - mu**2",
            "the logvar term is missing",
        ),
        (
            "the constant 1 forgotten",
            "np.sum(1 + logvar",
            "np.sum(logvar",
            "the constant 1 inside the sum",
        ),
        (
            "the KL reported in bits",
            KL,
            KL + " / np.log(2)",
            "bits instead of nats",
        ),
        (
            "logvar exponentiated in place",
            "var = np.exp(logvar)",
            "var = np.exp(logvar, out=logvar)",
            "your function changed its argument `logvar` in place",
        ),
        (
            "mu squared in place",
            "var = np.exp(logvar)",
            "var = np.exp(logvar)\n    mu **= 2\n    mu **= 0.5",
            "your function changed its argument `mu` in place",
        ),
        (
            "dmu with a flipped sign",
            "dmu = mu / batch",
            "dmu = -mu / batch",
            "dmu has the wrong sign",
        ),
        ("dmu without the 1/batch", "dmu = mu / batch", "dmu = mu", "dmu is missing the 1/batch"),
        (
            "dmu twice too large",
            "dmu = mu / batch",
            "dmu = 2 * mu / batch",
            "dmu is twice the expected value",
        ),
        (
            "the 0.5 in dlogvar forgotten",
            "dlogvar = 0.5 * (var - 1) / batch",
            "dlogvar = (var - 1) / batch",
            "dlogvar is twice the expected value: the factor 1/2 is missing",
        ),
        (
            "dlogvar with a flipped sign",
            "dlogvar = 0.5 * (var - 1) / batch",
            "dlogvar = 0.5 * (1 - var) / batch",
            "dlogvar has the wrong sign",
        ),
        (
            "dlogvar without the 1/batch",
            "dlogvar = 0.5 * (var - 1) / batch",
            "dlogvar = 0.5 * (var - 1)",
            "dlogvar is missing the 1/batch",
        ),
        (
            "dlogvar with the std's derivative",
            "dlogvar = 0.5 * (var - 1) / batch",
            "dlogvar = 0.5 * (0.5 * np.exp(0.5 * logvar) - 1) / batch",
            "this looks like the derivative of exp(0.5 * logvar)",
        ),
        (
            "dlogvar without the logvar term's -1/2",
            "dlogvar = 0.5 * (var - 1) / batch",
            "dlogvar = 0.5 * var / batch",
            "the derivative of the logvar term (-1/2 per entry) is missing",
        ),
    ],
    "kl_monte_carlo": [
        (
            "exp(logvar) used as the std",
            "std = np.exp(0.5 * logvar)",
            "std = np.exp(logvar)",
            "z = mu + exp(logvar) * eps: the standard deviation is",
        ),
        (
            "logvar treated as a log std throughout",
            "std = np.exp(0.5 * logvar)\n    z = mu + std * eps  # (n_samples, batch, latent)\n"
            "    log_q = -0.5 * (LOG_2PI + logvar + eps**2)",
            "std = np.exp(logvar)\n    z = mu + std * eps\n"
            "    log_q = -0.5 * (LOG_2PI + 2 * logvar + eps**2)",
            "logvar treated as a log standard deviation (std = exp(logvar))",
        ),
        (
            "log p - log q instead of log q - log p",
            "np.sum(log_q - log_p, axis=-1)",
            "np.sum(log_p - log_q, axis=-1)",
            "the estimate has the wrong sign",
        ),
        (
            "a mean over latent dimensions instead of a sum",
            "np.sum(log_q - log_p, axis=-1)",
            "np.mean(log_q - log_p, axis=-1)",
            "4 times too small — 4 is the number of latent dimensions",
        ),
        (
            "the logvar term of log q forgotten",
            "-0.5 * (LOG_2PI + logvar + eps**2)",
            "-0.5 * (LOG_2PI + eps**2)",
            "the log-variance term of log q(z) is missing",
        ),
        (
            "the 0.5 of log p forgotten",
            "log_p = -0.5 * (LOG_2PI + z**2)",
            "log_p = -(LOG_2PI + z**2)",
            "with the 1/2 in both",
        ),
        (
            "the samples summed instead of averaged",
            MC,
            "kl = float(np.sum(np.mean(np.sum(log_q - log_p, axis=-1), axis=1)))",
            "50 times too large — 50 is the number of samples: summed over the samples",
        ),
        (
            "summed over the batch instead of averaged",
            MC,
            "kl = float(np.mean(np.sum(log_q - log_p, axis=(1, 2))))",
            "3 times too large — 3 is the batch size",
        ),
        (
            "log p evaluated at eps instead of z",
            "log_p = -0.5 * (LOG_2PI + z**2)",
            "log_p = -0.5 * (LOG_2PI + eps**2)",
            "log p is evaluated at eps",
        ),
        (
            "log q evaluated with z**2",
            "-0.5 * (LOG_2PI + logvar + eps**2)",
            "-0.5 * (LOG_2PI + logvar + z**2)",
            "log q uses z**2",
        ),
        (
            "z - mu divided by the variance in log q",
            "-0.5 * (LOG_2PI + logvar + eps**2)",
            "-0.5 * (LOG_2PI + logvar + ((z - mu) / np.exp(logvar)) ** 2)",
            "log q divides z - mu by the variance",
        ),
        (
            "only the first sample used",
            MC,
            "kl = float(np.mean(np.sum(log_q[0] - log_p[0], axis=-1)))",
            "this uses only the first sample",
        ),
        (
            "eps scaled in place",
            "z = mu + std * eps  # (n_samples, batch, latent)",
            "eps *= std\n    z = mu + eps",
            "your function changed its argument `eps` in place",
        ),
        (
            "the estimate reported in bits",
            MC,
            "kl = float(np.mean(np.sum(log_q - log_p, axis=-1))) / np.log(2)",
            "bits instead of nats",
        ),
    ],
    "gaussian_nll_learned_var": [
        (
            "the 0.5 forgotten",
            "np.sum(0.5 * (LOG_2PI",
            "np.sum((LOG_2PI",
            "the factor 1/2 is missing",
        ),
        (
            "the log(2 pi) constant forgotten",
            "0.5 * (LOG_2PI + logvar + diff**2 * inv_var)",
            "0.5 * (logvar + diff**2 * inv_var)",
            "the constant log(2 pi) is missing",
        ),
        (
            "divided by the std instead of the variance",
            "inv_var = np.exp(-logvar)",
            "inv_var = np.exp(-0.5 * logvar)",
            "this divides the squared error by exp(0.5 * logvar)",
        ),
        (
            "multiplied by the variance",
            "inv_var = np.exp(-logvar)",
            "inv_var = np.exp(logvar)",
            "this multiplies the squared error by exp(logvar)",
        ),
        (
            "logvar treated as a log standard deviation",
            NLL,
            "loss = float(np.sum(0.5 * (LOG_2PI + 2 * logvar + diff**2 * np.exp(-2 * logvar))))"
            " / batch",
            "logvar treated as a log standard deviation (variance exp(2 * logvar))",
        ),
        (
            "the constant as log2(2 pi)",
            NLL,
            NLL.replace("LOG_2PI", "np.log2(2 * np.pi)"),
            "the constant is log2(2 pi)",
        ),
        (
            "the logvar term forgotten",
            "0.5 * (LOG_2PI + logvar + diff**2 * inv_var)",
            "0.5 * (LOG_2PI + diff**2 * inv_var)",
            "the logvar term is missing",
        ),
        (
            "divided by logvar itself",
            "inv_var = np.exp(-logvar)",
            "inv_var = 1 / logvar",
            "this divides by logvar itself",
        ),
        (
            "the loss with the wrong sign",
            "loss = float(np.sum(0.5 *",
            "loss = float(np.sum(-0.5 *",
            "the loss has the wrong sign",
        ),
        (
            "the loss averaged over pixels",
            "inv_var))) / batch",
            "inv_var))) / batch / x.shape[1]",
            "the loss is averaged over the pixels|6 times too small — 6 is the number of pixels",
        ),
        (
            "the loss summed over the batch",
            "inv_var))) / batch",
            "inv_var)))",
            "4 times too large — 4 is the batch size",
        ),
        (
            "dmean with a flipped sign",
            "dmean = diff * inv_var / batch",
            "dmean = -diff * inv_var / batch",
            "dmean has the wrong sign",
        ),
        (
            "dmean twice too large",
            "dmean = diff * inv_var / batch",
            "dmean = 2 * diff * inv_var / batch",
            "dmean is twice the expected value",
        ),
        (
            "dmean without the 1/batch",
            "dmean = diff * inv_var / batch",
            "dmean = diff * inv_var",
            "dmean is missing the 1/batch",
        ),
        (
            "dmean divided by the std",
            "dmean = diff * inv_var / batch",
            "dmean = diff * np.exp(-0.5 * logvar) / batch",
            "dmean divides by the standard deviation",
        ),
        (
            "dlogvar without the 0.5",
            "dlogvar = 0.5 * (1 - diff**2 * inv_var) / batch",
            "dlogvar = (1 - diff**2 * inv_var) / batch",
            "dlogvar is twice the expected value",
        ),
        (
            "dlogvar with the sign of the squared-error term flipped",
            "dlogvar = 0.5 * (1 - diff**2 * inv_var) / batch",
            "dlogvar = 0.5 * (1 + diff**2 * inv_var) / batch",
            "the sign of the squared-error part of dlogvar is flipped",
        ),
        (
            "dlogvar without the logvar term's 1/2",
            "dlogvar = 0.5 * (1 - diff**2 * inv_var) / batch",
            "dlogvar = -0.5 * diff**2 * inv_var / batch",
            "the derivative of the logvar term itself",
        ),
        (
            "mean changed in place",
            "diff = mean - x",
            "diff = mean\n    diff -= x",
            "your function changed its argument `mean` in place",
        ),
    ],
}
