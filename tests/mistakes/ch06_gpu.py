"""Mistakes planted into solutions/06_gpu.ipynb: each must make its exercise's tests fail."""

MISTAKES = {
    "softplus": [
        ("NumPy called on device data", "xp.log1p(xp.exp(-xp.abs(x)))",
         "xp.log1p(np.exp(-xp.abs(x)))"),
        ("the overflowing textbook form", "xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))",
         "xp.log1p(xp.exp(x))"),
        ("a flipped sign inside exp", "xp.exp(-xp.abs(x))", "xp.exp(xp.abs(x))"),
    ],
    "kl_and_grads": [
        ("the KL with the wrong sign", "kl = float(-0.5 *", "kl = float(0.5 *"),
        ("the factor 0.5 missing in dlogvar", "dlogvar = 0.5 * (var - 1) / batch",
         "dlogvar = (var - 1) / batch"),
        ("summed over the batch instead of averaged", "dmu = mu / batch", "dmu = mu"),
        ("NumPy called on device data", "var = xp.exp(logvar)", "var = np.exp(logvar)"),
    ],
    "adam_step": [
        ("no bias correction", "p -= lr / (1 - beta1**t) * m / denom", "p -= lr * m / denom"),
        ("the square root of v missing", "denom = xp.sqrt(v) / (1 - beta2**t) ** 0.5 + eps",
         "denom = v / (1 - beta2**t) + eps"),
        ("NumPy called on device data", "xp.sqrt(v)", "np.sqrt(v)"),
        ("not in place", "p -= lr / (1 - beta1**t) * m / denom",
         "p = p - lr / (1 - beta1**t) * m / denom"),
    ],
}
