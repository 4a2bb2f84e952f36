"""Mistakes planted into solutions/04_beta_vae.ipynb: each must make its exercise's tests fail."""

MISTAKES = {
    "beta_weighted_loss": [
        ("beta on the reconstruction term", "loss = recon + beta * kl", "loss = beta * recon + kl"),
        ("the KL with the wrong sign", "kl = float(-0.5 *", "kl = float(0.5 *"),
        ("beta forgotten in the gradient", "dmu = beta * mu / batch", "dmu = mu / batch"),
        ("the factor 1/2 missing in dlogvar", "dlogvar = beta * 0.5 * (np.exp(logvar) - 1) / batch",
         "dlogvar = beta * (np.exp(logvar) - 1) / batch"),
        ("the std exp(0.5 logvar) in place of the variance",
         "dlogvar = beta * 0.5 * (np.exp(logvar) - 1) / batch",
         "dlogvar = beta * 0.5 * (np.exp(0.5 * logvar) - 1) / batch"),
        ("summed over the batch instead of averaged", "dmu = beta * mu / batch", "dmu = beta * mu"),
    ],
    "kl_warmup_schedule": [
        ("no clipping after the warm-up", "return beta_max * min(step / warmup_steps, 1.0)",
         "return beta_max * step / warmup_steps"),
        ("integer division", "step / warmup_steps", "step // warmup_steps"),
        ("annealing the wrong way", "return beta_max * min(step / warmup_steps, 1.0)",
         "return beta_max * (1.0 - min(step / warmup_steps, 1.0))"),
        ("beta_max ignored", "return beta_max * min(step / warmup_steps, 1.0)",
         "return min(step / warmup_steps, 1.0)"),
    ],
    "active_units": [
        ("the standard deviation in place of the variance", "variance = mu.var(axis=0)",
         "variance = mu.std(axis=0)"),
        ("the variance across latents (wrong axis)", "variance = mu.var(axis=0)",
         "variance = mu.var(axis=1)"),
        ("counting the inactive units", "np.sum(variance > threshold)",
         "np.sum(variance <= threshold)"),
        ("the mean in place of the variance", "variance = mu.var(axis=0)",
         "variance = mu.mean(axis=0)"),
        ("the threshold argument ignored", "variance > threshold", "variance > 0.01"),
    ],
    "mutual_information_gap": [
        ("not divided by the factor's entropy",
         "(top[0] - top[1]) / discrete_mutual_information(v, v)", "(top[0] - top[1])"),
        ("the largest minus the smallest", "(top[0] - top[1])", "(top[0] - top[-1])"),
        ("sorted in increasing order", "top = np.sort(mi)[::-1]", "top = np.sort(mi)"),
        ("the largest mutual information without the gap", "(top[0] - top[1])", "(top[0])"),
        ("bins ignored", "codes = discretize(mu, bins)", "codes = discretize(mu, 20)"),
    ],
}
