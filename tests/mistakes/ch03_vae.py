"""Planted mistakes for solutions/03_vae.ipynb: each must fail its own exercise's graded test
with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

LSE = "log_px = m + np.log(np.sum(np.exp(log_w - m), axis=0)) - np.log(k)"
DLOGITS = "(0.5 * (1 + np.tanh(0.5 * logits)) - x) / batch"
KL_GRADS = (
    "    dmu = dmu + mu / batch\n    dlogvar = dlogvar + 0.5 * (np.exp(logvar) - 1) / batch\n"
)
LOG_PROB = "log_px_z = model.likelihood.log_prob(out, x_rep).reshape(k, batch)"

MISTAKES = {
    "reparameterize": [
        (
            "exp(logvar) used as the std",
            "std = np.exp(0.5 * logvar)",
            "std = np.exp(logvar)",
            "exp(logvar) is the variance",
        ),
        (
            "logvar used as the std",
            "std = np.exp(0.5 * logvar)",
            "std = logvar",
            "this multiplies eps by logvar itself",
        ),
        (
            "the square root of logvar as the std",
            "std = np.exp(0.5 * logvar)",
            "std = np.sqrt(logvar)",
            "NaN exactly where logvar < 0",
        ),
        ("mu forgotten", "z = mu + std * eps", "z = std * eps", "mu is missing"),
        ("eps forgotten", "z = mu + std * eps", "z = mu + std", "eps is missing"),
        (
            "eps divided by the std",
            "std = np.exp(0.5 * logvar)",
            "std = np.exp(-0.5 * logvar)",
            "this divides eps by the standard deviation",
        ),
        (
            "mu and eps swapped",
            "z = mu + std * eps",
            "z = eps + std * mu",
            "mu and eps are swapped",
        ),
        (
            "a matrix product where * belongs",
            "z = mu + std * eps",
            "z = mu + std @ eps.T",
            "`*` multiplies entry by entry, `@` is the matrix product",
        ),
        (
            "eps scaled in place",
            "z = mu + std * eps",
            "eps *= std\n    z = mu + eps",
            "your function changed its argument `eps` in place",
        ),
        (
            "mu shifted in place",
            "z = mu + std * eps",
            "mu += std * eps\n    z = mu",
            "your function changed its argument `mu` in place",
        ),
    ],
    "reparameterize_backward": [
        (
            "the 0.5 of the chain rule forgotten",
            "dlogvar = dz * eps * 0.5 * std",
            "dlogvar = dz * eps * std",
            "the 0.5 from the chain rule is missing",
        ),
        (
            "the variance where the std belongs",
            "std = np.exp(0.5 * logvar)",
            "std = np.exp(logvar)",
            "this uses exp(logvar), the variance",
        ),
        ("dmu multiplied by the std", "dmu = dz\n", "dmu = dz * std\n", "dmu is dz times the std"),
        ("dmu multiplied by eps", "dmu = dz\n", "dmu = dz * eps\n", "dmu is dz times eps"),
        (
            "dmu as the local derivative alone",
            "dmu = dz\n",
            "dmu = np.ones_like(dz)\n",
            "dmu is all ones",
        ),
        (
            "eps forgotten in dlogvar",
            "dlogvar = dz * eps * 0.5 * std",
            "dlogvar = dz * 0.5 * std",
            "eps is missing",
        ),
        (
            "dz forgotten in dlogvar",
            "dlogvar = dz * eps * 0.5 * std",
            "dlogvar = eps * 0.5 * std",
            "dz is missing",
        ),
        (
            "dlogvar divided by the std",
            "dlogvar = dz * eps * 0.5 * std",
            "dlogvar = dz * eps * 0.5 / std",
            "this divides by the std",
        ),
        (
            "dlogvar with a flipped sign",
            "dlogvar = dz * eps * 0.5 * std",
            "dlogvar = -dz * eps * 0.5 * std",
            "dlogvar: the sign is flipped",
        ),
        (
            "dmu and dlogvar returned swapped",
            "return dmu, dlogvar",
            "return dlogvar, dmu",
            "dmu and dlogvar are swapped",
        ),
        (
            "dz scaled in place",
            "dlogvar = dz * eps * 0.5 * std",
            "dz *= eps * 0.5 * std\n    dlogvar = dz",
            "your function changed its argument `dz` in place",
        ),
    ],
    "negative_elbo_and_grads": [
        (
            "the KL gradient forgotten in dmu",
            "dmu = dmu + mu / batch",
            "dmu = dmu",
            "the KL's gradient is missing from dmu",
        ),
        (
            "the KL gradient forgotten in dlogvar",
            "dlogvar = dlogvar + 0.5 * (np.exp(logvar) - 1) / batch",
            "dlogvar = dlogvar",
            "the KL's gradient is missing from dlogvar",
        ),
        (
            "both KL gradients forgotten",
            KL_GRADS,
            "",
            "the KL's gradients are missing",
        ),
        (
            "the KL gradients with the wrong sign",
            KL_GRADS,
            KL_GRADS.replace(" + ", " - "),
            "the KL's gradients enter with the wrong sign",
        ),
        (
            "only the KL's gradients reach the encoder",
            "dmu, dlogvar = reparameterize_backward(dz, logvar, eps)",
            "dmu, dlogvar = np.zeros_like(mu), np.zeros_like(logvar)",
            "only the KL's gradients reach the encoder",
        ),
        (
            "tanh' written as 1 - tanh in the decoder",
            "* (1 - h2**2)",
            "* (1 - h2)",
            "tanh' is written as 1 - h in the decoder",
        ),
        (
            "tanh' written as 1 - tanh in the encoder",
            "* (1 - h1**2)",
            "* (1 - h1)",
            "tanh' is written as 1 - h in the encoder",
        ),
        (
            "the KL with a flipped sign",
            "kl = float(-0.5 * np.sum(",
            "kl = float(0.5 * np.sum(",
            "your KL has the wrong sign",
        ),
        (
            "mu and logvar swapped",
            "mu, logvar = h[:, :z_dim], h[:, z_dim:]",
            "logvar, mu = h[:, :z_dim], h[:, z_dim:]",
            "mu and logvar are swapped",
        ),
        (
            "recon summed over the batch",
            "recon = float(np.sum(np.logaddexp(0, logits) - x * logits)) / batch",
            "recon = float(np.sum(np.logaddexp(0, logits) - x * logits))",
            "your reconstruction term is summed over the batch",
        ),
        (
            "the KL averaged over the latent dimensions",
            "kl = float(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar))) / batch",
            "kl = float(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar))) / batch / z_dim",
            "3 times too small — 3 is the number of latent dimensions",
        ),
        (
            "the loss as recon - kl",
            'return {"loss": recon + kl',
            'return {"loss": recon - kl',
            "the negative ELBO is recon + kl",
        ),
        (
            "dlogits with a flipped sign",
            DLOGITS,
            "(x - 0.5 * (1 + np.tanh(0.5 * logits))) / batch",
            'grads["decoder.b1"]: the sign is flipped',
        ),
        (
            "dlogits summed over the batch",
            DLOGITS,
            "0.5 * (1 + np.tanh(0.5 * logits)) - x",
            "summed over the batch where the loss takes a mean",
        ),
        (
            "transposed weight gradient",
            'grads["encoder.W1"] = h1.T @ dh',
            'grads["encoder.W1"] = dh.T @ h1',
            'grads["encoder.W1"]: expected shape (5, 6), got (6, 5) — looks transposed',
        ),
        (
            "the encoder bias gradient as a mean",
            'grads["encoder.b0"] = da1.sum(axis=0)',
            'grads["encoder.b0"] = da1.mean(axis=0)',
            'grads["encoder.b0"]: averaged over the batch',
        ),
        (
            "dmu and dlogvar concatenated in the wrong order",
            "dh = np.concatenate([dmu, dlogvar], axis=1)",
            "dh = np.concatenate([dlogvar, dmu], axis=1)",
            "concatenated in the wrong order",
        ),
        (
            "the decoder's weight gradient from z",
            'grads["decoder.W1"] = h2.T @ dlogits',
            'grads["decoder.W1"] = z.T @ dlogits',
            'grads["decoder.W1"]: expected shape (5, 12), got (3, 12)',
        ),
        ("the terms dict without recon", '"recon": recon, ', "", "terms has no 'recon'"),
    ],
    "sample_prior": [
        (
            "uniform draws instead of Gaussian",
            "z = rng.standard_normal((n, model.z_dim))",
            "z = rng.random((n, model.z_dim))",
            "these are uniform draws",
        ),
        (
            "logits returned instead of the mean",
            "x = model.decode(z)",
            "x = model.decoder_output(z)",
            "these are the decoder's logits",
        ),
        (
            "a fixed-seed generator inside",
            "z = rng.standard_normal((n, model.z_dim))",
            "z = np.random.default_rng(3).standard_normal((n, model.z_dim))",
            "two calls with the same generator gave the same z",
        ),
        (
            "z drawn as (z_dim, n) and transposed",
            "z = rng.standard_normal((n, model.z_dim))",
            "z = rng.standard_normal((model.z_dim, n)).T",
            "z was drawn as (z_dim, n) and transposed",
        ),
        (
            "the sigmoid applied twice",
            "x = model.decode(z)",
            "x = 1 / (1 + np.exp(-model.decode(z)))",
            "the sigmoid is applied twice",
        ),
        (
            "binary samples instead of the mean",
            "x = model.decode(z)",
            "x = model.likelihood.sample(model.decoder_output(z), rng)",
            "holds only 0s and 1s",
        ),
        ("z and x returned swapped", "return z, x", "return x, z", "z and x are swapped"),
        (
            "n ignored",
            "z = rng.standard_normal((n, model.z_dim))",
            "z = rng.standard_normal((5, model.z_dim))",
            "z for n = 3: expected shape (3, 4), got (5, 4)",
        ),
    ],
    "iwae_log_likelihood": [
        (
            "log of the mean of exp without the max subtracted",
            LSE,
            "log_px = np.log(np.mean(np.exp(log_w), axis=0))",
            "underflows to 0 and log(0) = -inf",
        ),
        (
            "one maximum for the whole batch",
            "m = log_w.max(axis=0)",
            "m = log_w.max()",
            "Subtract each example's own maximum",
        ),
        (
            "the - log k forgotten",
            LSE,
            "log_px = m + np.log(np.sum(np.exp(log_w - m), axis=0))",
            "the - log k is missing",
        ),
        (
            "the maximum not added back",
            LSE,
            "log_px = np.log(np.sum(np.exp(log_w - m), axis=0)) - np.log(k)",
            "subtracted inside the exp but not added back",
        ),
        (
            "the mean of the log-weights (the ELBO) instead of the IWAE bound",
            LSE,
            "log_px = log_w.mean(axis=0)",
            "which is the ELBO estimate",
        ),
        (
            "the largest log-weight alone",
            LSE,
            "log_px = m - np.log(k)",
            "this is the largest log-weight minus log k",
        ),
        (
            "exp(logvar) used as the std",
            "std = np.exp(0.5 * logvar)",
            "std = np.exp(logvar)",
            "z = mu + exp(logvar) * eps",
        ),
        (
            "log q with a flipped sign",
            "log_w = log_px_z + log_pz - log_qz",
            "log_w = log_px_z + log_pz + log_qz",
            "log q(z|x) enters with the wrong sign",
        ),
        (
            "log q forgotten",
            "log_w = log_px_z + log_pz - log_qz",
            "log_w = log_px_z + log_pz",
            "log q(z|x) is missing from the log-weight",
        ),
        (
            "the logvar term of log q forgotten",
            "np.sum(eps**2 + LOG_2PI + logvar, axis=-1)",
            "np.sum(eps**2 + LOG_2PI, axis=-1)",
            "the logvar term of log q(z|x) is missing",
        ),
        (
            "log p(z) evaluated at eps",
            "log_pz = -0.5 * np.sum(z**2 + LOG_2PI, axis=-1)",
            "log_pz = -0.5 * np.sum(eps**2 + LOG_2PI, axis=-1)",
            "log p(z) is evaluated at eps",
        ),
        (
            "x repeated row by row",
            "x_rep = np.broadcast_to(x, (k, batch, x.shape[1])).reshape(k * batch, -1)",
            "x_rep = np.repeat(x, k, axis=0)",
            "x and z are paired wrongly",
        ),
        (
            "probabilities given to log_prob",
            LOG_PROB,
            LOG_PROB.replace("log_prob(out,", "log_prob(model.likelihood.mean(out),"),
            "log_prob is given model.decode(z), the probabilities",
        ),
        (
            "combined over the batch axis",
            "m = log_w.max(axis=0)\n",
            "m = log_w.max(axis=1, keepdims=True)\n",
            "expected shape (6,), got (50, 6) — an extra leading axis: did an operation broadcast",
        ),
        (
            "eps scaled in place",
            "z = mu + std * eps  # (k, batch, latent)",
            "eps *= 1.0 + 0 * std[None]\n    z = mu + std * eps\n    eps *= 2",
            "your function changed its argument `eps` in place",
        ),
    ],
}
