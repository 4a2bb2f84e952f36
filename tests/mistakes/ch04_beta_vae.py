"""Planted mistakes for solutions/04_beta_vae.ipynb: each must fail its own exercise's graded test
with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

KL = "kl = float(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar))) / batch"
DLOGVAR = "dlogvar = beta * 0.5 * (np.exp(logvar) - 1) / batch"
WARMUP = "return beta_max * min(step / warmup_steps, 1.0)"
GAP = "gaps.append((top[0] - top[1]) / discrete_mutual_information(v, v))"

MISTAKES = {
    "beta_weighted_loss": [
        (
            "beta on the reconstruction term",
            "loss = recon + beta * kl",
            "loss = beta * recon + kl",
            "beta multiplies the reconstruction term",
        ),
        (
            "beta on the whole loss",
            "loss = recon + beta * kl",
            "loss = beta * (recon + kl)",
            "beta multiplies the whole loss",
        ),
        (
            "the KL not weighted",
            "loss = recon + beta * kl",
            "loss = recon + kl",
            "the KL is not weighted by beta",
        ),
        (
            "the KL subtracted",
            "loss = recon + beta * kl",
            "loss = recon - beta * kl",
            "the KL is subtracted",
        ),
        (
            "the KL divided by beta",
            "loss = recon + beta * kl",
            "loss = recon + kl / beta",
            "the KL is divided by beta",
        ),
        (
            "the KL with the wrong sign",
            "kl = float(-0.5 *",
            "kl = float(0.5 *",
            "your KL has the wrong sign",
        ),
        (
            "kl returned with beta",
            "return loss, kl, dmu, dlogvar",
            "return loss, beta * kl, dmu, dlogvar",
            "kl should be the KL itself, without beta",
        ),
        (
            "the KL averaged over the latents",
            KL,
            "kl = float(np.mean(-0.5 * (1 + logvar - mu**2 - np.exp(logvar))))",
            "your KL is averaged over the latents",
        ),
        (
            "the KL summed over the batch",
            KL,
            "kl = float(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar)))",
            "5 times too large — 5 is the batch size",
        ),
        (
            "logvar treated as a log std in the KL",
            KL,
            "kl = float(-0.5 * np.sum(1 + 2 * logvar - mu**2 - np.exp(2 * logvar))) / batch",
            "logvar treated as a log standard deviation",
        ),
        (
            "beta forgotten in dmu",
            "dmu = beta * mu / batch",
            "dmu = mu / batch",
            "dmu is missing the factor beta",
        ),
        (
            "dmu summed over the batch",
            "dmu = beta * mu / batch",
            "dmu = beta * mu",
            "dmu is missing the 1/batch",
        ),
        (
            "beta forgotten in dlogvar",
            DLOGVAR,
            "dlogvar = 0.5 * (np.exp(logvar) - 1) / batch",
            "dlogvar is missing the factor beta",
        ),
        (
            "the factor 1/2 missing in dlogvar",
            DLOGVAR,
            "dlogvar = beta * (np.exp(logvar) - 1) / batch",
            "the factor 1/2 is missing",
        ),
        (
            "the std in place of the variance",
            DLOGVAR,
            "dlogvar = beta * 0.5 * (np.exp(0.5 * logvar) - 1) / batch",
            "dlogvar uses exp(0.5 * logvar), the std",
        ),
        (
            "the -1 missing in dlogvar",
            DLOGVAR,
            "dlogvar = beta * 0.5 * np.exp(logvar) / batch",
            "the derivative of the logvar term",
        ),
        (
            "dlogvar with a flipped sign",
            DLOGVAR,
            "dlogvar = beta * 0.5 * (1 - np.exp(logvar)) / batch",
            "dlogvar: the sign is flipped",
        ),
        (
            "loss and kl returned swapped",
            "return loss, kl, dmu, dlogvar",
            "return kl, loss, dmu, dlogvar",
            "loss and kl are swapped",
        ),
        (
            "mu squared in place",
            "    batch = mu.shape[0]\n",
            "    batch = mu.shape[0]\n    mu *= mu\n    mu **= 0.5\n",
            "your function changed its argument `mu` in place",
        ),
    ],
    "kl_warmup_schedule": [
        (
            "no clipping after the warm-up",
            WARMUP,
            "return beta_max * step / warmup_steps",
            "beta keeps growing after the warm-up",
        ),
        (
            "integer division",
            "step / warmup_steps",
            "step // warmup_steps",
            "is step // warmup_steps an integer division",
        ),
        (
            "annealing the wrong way",
            WARMUP,
            "return beta_max * (1.0 - min(step / warmup_steps, 1.0))",
            "beta goes down instead of up",
        ),
        ("beta_max ignored", WARMUP, "return min(step / warmup_steps, 1.0)", "beta_max is ignored"),
        (
            "1 instead of beta_max after the warm-up",
            WARMUP,
            "return beta_max * step / warmup_steps if step < warmup_steps else 1.0",
            "after the warm-up your schedule returns 1, not beta_max",
        ),
        (
            "clipped at 1 instead of beta_max",
            WARMUP,
            "return min(beta_max * step / warmup_steps, 1.0)",
            "beta is clipped at 1 instead of beta_max",
        ),
        (
            "one step ahead",
            WARMUP,
            "return beta_max * min((step + 1) / warmup_steps, 1.0)",
            "beta is one step ahead",
        ),
        (
            "the maximum reached one step early",
            WARMUP,
            "return beta_max * min(step / (warmup_steps - 1), 1.0)",
            "beta reaches its maximum one step early",
        ),
        (
            "twice as fast",
            WARMUP,
            "return beta_max * min(2 * step / warmup_steps, 1.0)",
            "beta climbs twice as fast",
        ),
        (
            "0 after the warm-up",
            WARMUP,
            "return beta_max * step / warmup_steps if step < warmup_steps else 0.0",
            "beta falls back to 0 after the warm-up",
        ),
        (
            "the warm-up restarted every warmup_steps",
            WARMUP,
            "return beta_max * (step % warmup_steps) / warmup_steps",
            "beta starts over every warmup_steps steps",
        ),
    ],
    "active_units": [
        (
            "the standard deviation in place of the variance",
            "variance = mu.var(axis=0)",
            "variance = mu.std(axis=0)",
            "is it the standard deviation you compare",
        ),
        (
            "the variance across latents (wrong axis)",
            "variance = mu.var(axis=0)",
            "variance = mu.var(axis=1)",
            "you took the variance across the latents of each row",
        ),
        (
            "counting the inactive units",
            "np.sum(variance > threshold)",
            "np.sum(variance <= threshold)",
            "you counted the inactive units",
        ),
        (
            "the mean in place of the variance",
            "variance = mu.var(axis=0)",
            "variance = mu.mean(axis=0)",
            "are you looking at the mean of mu_j",
        ),
        (
            "the threshold argument ignored",
            "variance > threshold",
            "variance > 0.01",
            "active_units ignores its threshold argument",
        ),
        (
            "the variance with ddof=1",
            "variance = mu.var(axis=0)",
            "variance = mu.var(axis=0, ddof=1)",
            "this is the variance with ddof=1",
        ),
        (
            ">= where > belongs",
            "variance > threshold",
            "variance >= threshold",
            "compare with >, not >=",
        ),
        (
            "a float count",
            "return int(np.sum(variance > threshold))",
            "return float(np.sum(variance > threshold))",
            "expected an integer, got a float",
        ),
        (
            "a boolean mask returned",
            "return int(np.sum(variance > threshold))",
            "return variance > threshold",
            "active_units returned an array of shape (9,)",
        ),
        (
            "mu centred in place",
            "variance = mu.var(axis=0)",
            "mu -= mu.mean(axis=0)\n    variance = (mu**2).mean(axis=0)",
            "your function changed its argument `mu` in place",
        ),
    ],
    "mutual_information_gap": [
        (
            "not divided by the factor's entropy",
            GAP,
            "gaps.append(top[0] - top[1])",
            "the gaps are not divided by each factor's entropy",
        ),
        (
            "the largest minus the smallest",
            "(top[0] - top[1])",
            "(top[0] - top[-1])",
            "you took the largest minus the smallest",
        ),
        (
            "sorted in increasing order",
            "top = np.sort(mi)[::-1]",
            "top = np.sort(mi)",
            "MIG = -0.\\d+ is negative",
        ),
        (
            "the largest mutual information without the gap",
            "(top[0] - top[1])",
            "(top[0])",
            "this is the largest mutual information alone",
        ),
        (
            "bins ignored",
            "codes = discretize(mu, bins)",
            "codes = discretize(mu, 20)",
            "the bins argument is ignored",
        ),
        (
            "the largest gap instead of the mean",
            "return float(np.mean(gaps))",
            "return float(np.max(gaps))",
            "this is the largest gap of all the factors",
        ),
        (
            "the gaps summed over the factors",
            "return float(np.mean(gaps))",
            "return float(np.sum(gaps))",
            "5 times too large — 5 is the number of factors",
        ),
        (
            "the per-factor gaps returned",
            "return float(np.mean(gaps))",
            "return gaps",
            "one gap per factor: MIG is their mean",
        ),
        (
            "the entropy in bits",
            "/ discrete_mutual_information(v, v))",
            "/ (discrete_mutual_information(v, v) / np.log(2)))",
            "nats and bits mixed",
        ),
        (
            "divided by the latent's entropy",
            GAP,
            "j1 = int(np.argmax(mi))\n"
            "        h_z = discrete_mutual_information(codes[:, j1], codes[:, j1])\n"
            "        gaps.append((top[0] - top[1]) / h_z)",
            "the gaps are divided by the entropy of the latent",
        ),
        (
            "the code shifted in place",
            "codes = discretize(mu, bins)",
            "mu -= mu.min(axis=0)\n    codes = discretize(mu, bins)",
            "your function changed its argument `mu` in place",
        ),
    ],
}
