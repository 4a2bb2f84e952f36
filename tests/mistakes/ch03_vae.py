"""Planted mistakes for solutions/03_vae.ipynb: each must make its exercise's graded test fail.

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new) triples;
``old`` is an exact substring of that solution cell and ``new`` the learner's typical slip.
"""

MISTAKES = {
    "reparameterize": [
        ("exp(logvar) used as the std", "std = np.exp(0.5 * logvar)", "std = np.exp(logvar)"),
        ("logvar used as the std", "std = np.exp(0.5 * logvar)", "std = logvar"),
        ("mu forgotten", "z = mu + std * eps", "z = std * eps"),
    ],
    "reparameterize_backward": [
        (
            "the 0.5 of the chain rule forgotten",
            "dlogvar = dz * eps * 0.5 * std",
            "dlogvar = dz * eps * std",
        ),
        (
            "the variance where the std belongs",
            "std = np.exp(0.5 * logvar)",
            "std = np.exp(logvar)",
        ),
        ("dmu multiplied by the std", "dmu = dz\n", "dmu = dz * std\n"),
        ("eps forgotten in dlogvar", "dlogvar = dz * eps * 0.5 * std", "dlogvar = dz * 0.5 * std"),
    ],
    "negative_elbo_and_grads": [
        ("the KL gradient forgotten in dmu", "dmu = dmu + mu / batch", "dmu = dmu"),
        (
            "the KL gradient forgotten in dlogvar",
            "dlogvar = dlogvar + 0.5 * (np.exp(logvar) - 1) / batch",
            "dlogvar = dlogvar",
        ),
        ("tanh' written as 1 - tanh", "* (1 - h2**2)", "* (1 - h2)"),
        ("the KL with a flipped sign", "kl = float(-0.5 * np.sum(", "kl = float(0.5 * np.sum("),
        (
            "dlogits with a flipped sign",
            "(0.5 * (1 + np.tanh(0.5 * logits)) - x) / batch",
            "(x - 0.5 * (1 + np.tanh(0.5 * logits))) / batch",
        ),
        (
            "dlogits summed over the batch",
            "(0.5 * (1 + np.tanh(0.5 * logits)) - x) / batch",
            "0.5 * (1 + np.tanh(0.5 * logits)) - x",
        ),
        (
            "transposed weight gradient",
            'grads["encoder.W1"] = h1.T @ dh',
            'grads["encoder.W1"] = dh.T @ h1',
        ),
        (
            "the encoder bias gradient as a mean",
            'grads["encoder.b0"] = da1.sum(axis=0)',
            'grads["encoder.b0"] = da1.mean(axis=0)',
        ),
    ],
    "sample_prior": [
        (
            "uniform draws instead of Gaussian",
            "z = rng.standard_normal((n, model.z_dim))",
            "z = rng.random((n, model.z_dim))",
        ),
        (
            "logits returned instead of the mean",
            "x = model.decode(z)",
            "x = model.decoder_output(z)",
        ),
        (
            "a fixed-seed generator inside",
            "z = rng.standard_normal((n, model.z_dim))",
            "z = np.random.default_rng(3).standard_normal((n, model.z_dim))",
        ),
        (
            "z drawn as (z_dim, n) and transposed",
            "z = rng.standard_normal((n, model.z_dim))",
            "z = rng.standard_normal((model.z_dim, n)).T",
        ),
    ],
    "iwae_log_likelihood": [
        (
            "log of the mean of exp without the max subtracted",
            "log_px = m + np.log(np.sum(np.exp(log_w - m), axis=0)) - np.log(k)",
            "log_px = np.log(np.mean(np.exp(log_w), axis=0))",
        ),
        (
            "the - log k forgotten",
            "log_px = m + np.log(np.sum(np.exp(log_w - m), axis=0)) - np.log(k)",
            "log_px = m + np.log(np.sum(np.exp(log_w - m), axis=0))",
        ),
        (
            "the mean of the log-weights (the ELBO) instead of the IWAE bound",
            "log_px = m + np.log(np.sum(np.exp(log_w - m), axis=0)) - np.log(k)",
            "log_px = log_w.mean(axis=0)",
        ),
        ("exp(logvar) used as the std", "std = np.exp(0.5 * logvar)", "std = np.exp(logvar)"),
        (
            "log q with a flipped sign",
            "log_w = log_px_z + log_pz - log_qz",
            "log_w = log_px_z + log_pz + log_qz",
        ),
        (
            "the logvar term of log q forgotten",
            "np.sum(eps**2 + LOG_2PI + logvar, axis=-1)",
            "np.sum(eps**2 + LOG_2PI, axis=-1)",
        ),
    ],
}
