"""Planted mistakes for solutions/06_gpu.ipynb: each must fail its own exercise's graded test
with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

SOFTPLUS = "return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))"
KL = "kl = float(-0.5 * (1 + logvar - mu * mu - var).sum()) / batch"
STEP = "p -= lr / (1 - beta1**t) * m / denom"
DENOM = "denom = xp.sqrt(v) / (1 - beta2**t) ** 0.5 + eps"

MISTAKES = {
    "softplus": [
        (
            "NumPy called on device data",
            "xp.log1p(xp.exp(-xp.abs(x)))",
            "xp.log1p(np.exp(-xp.abs(x)))",
            "np.exp called on device data",
        ),
        (
            "NumPy as the module",
            "xp = backend.array_module(x)",
            "xp = np",
            "It called NumPy on device data",
        ),
        (
            "the overflowing textbook form",
            SOFTPLUS,
            "return xp.log1p(xp.exp(x))",
            "softplus(x) is not finite at x = [10000.0]",
        ),
        ("a flipped sign inside exp", "xp.exp(-xp.abs(x))", "xp.exp(xp.abs(x))", "is not finite"),
        (
            "the absolute value forgotten",
            "xp.exp(-xp.abs(x))",
            "xp.exp(-x)",
            "softplus(x) is not finite at x = [-10000.0]",
        ),
        ("the ReLU alone", SOFTPLUS, "return xp.maximum(x, 0)", "this is max(x, 0), the ReLU"),
        (
            "max(x, 0) forgotten",
            SOFTPLUS,
            "return xp.log1p(xp.exp(-xp.abs(x)))",
            "max(x, 0) is missing",
        ),
        ("softplus(-x)", "xp.maximum(x, 0)", "xp.maximum(-x, 0)", "this is softplus(-x)"),
        ("the sigmoid instead", SOFTPLUS, "return 1 / (1 + xp.exp(-x))", "this is the sigmoid"),
        (
            "Python's max on an array",
            "xp.maximum(x, 0)",
            "max(x, 0)",
            "Python's max, min, if, and, or work on single numbers",
        ),
        (
            "math.log1p on an array",
            SOFTPLUS,
            "import math\n\n    " + SOFTPLUS.replace("xp.log1p(", "math.log1p("),
            "The math module (math.exp, math.log1p) and float() work on single numbers",
        ),
        (
            "the result copied to the host",
            SOFTPLUS,
            SOFTPLUS.replace("return ", "return backend.to_numpy(") + ")",
            "not a device array",
        ),
        (
            "the input clipped in place",
            "    xp = backend.array_module(x)\n",
            "    xp = backend.array_module(x)\n    x[x > 700] = 700\n",
            "your function changed its argument `x` in place",
        ),
    ],
    "kl_and_grads": [
        (
            "the KL with the wrong sign",
            "kl = float(-0.5 *",
            "kl = float(0.5 *",
            "your KL has the wrong sign",
        ),
        (
            "the factor 0.5 missing in the KL",
            "kl = float(-0.5 *",
            "kl = float(-1.0 *",
            "the factor 1/2 is missing",
        ),
        (
            "the factor 0.5 missing in dlogvar",
            "dlogvar = 0.5 * (var - 1) / batch",
            "dlogvar = (var - 1) / batch",
            "dlogvar is twice too large",
        ),
        (
            "summed over the batch instead of averaged",
            "dmu = mu / batch",
            "dmu = mu",
            "dmu is missing the 1/batch",
        ),
        (
            "divided by every entry's count",
            "batch = mu.shape[0]",
            "batch = mu.size",
            "averaged over the latent",
        ),
        (
            "the KL averaged over the latents",
            KL,
            "kl = float(-0.5 * (1 + logvar - mu * mu - var).mean())",
            "your KL is averaged over the latents",
        ),
        (
            "the std in place of the variance",
            "var = xp.exp(logvar)",
            "var = xp.exp(0.5 * logvar)",
            "exp(0.5 * logvar), the std",
        ),
        (
            "NumPy called on device data",
            "var = xp.exp(logvar)",
            "var = np.exp(logvar)",
            "np.exp called on device data",
        ),
        (
            "kl left on the device",
            KL,
            "kl = -0.5 * (1 + logvar - mu * mu - var).sum() / batch",
            "kl is still a device array",
        ),
        (
            "the gradients copied to the host",
            "dmu = mu / batch",
            "dmu = backend.to_numpy(mu) / batch",
            "dmu on the stand-in came back as ndarray",
        ),
        (
            "the KL summed over the batch",
            KL,
            "kl = float(-0.5 * (1 + logvar - mu * mu - var).sum())",
            "6 times too large — 6 is the batch size",
        ),
        (
            "mu squared in place",
            "var = xp.exp(logvar)",
            "var = xp.exp(logvar)\n    mu *= 1.0\n    mu **= 2\n    mu **= 0.5",
            "your function changed its argument `mu` in place",
        ),
    ],
    "adam_step": [
        (
            "no bias correction",
            STEP,
            "p -= lr * m / (xp.sqrt(v) + eps)",
            "the bias corrections 1 - beta1**t and 1 - beta2**t are missing",
        ),
        (
            "only the second moment corrected",
            STEP,
            "p -= lr * m / denom",
            "the bias correction of the first moment, 1 - beta1**t, is missing",
        ),
        (
            "only the first moment corrected",
            DENOM,
            "denom = xp.sqrt(v) + eps",
            "the bias correction of the second moment, 1 - beta2**t, is missing",
        ),
        (
            "the square root of v missing",
            DENOM,
            "denom = v / (1 - beta2**t) + eps",
            "needs the square root of v",
        ),
        (
            "eps inside the square root",
            DENOM,
            "denom = xp.sqrt(v / (1 - beta2**t) + eps)",
            "eps is inside the square root",
        ),
        (
            "NumPy called on device data",
            "xp.sqrt(v)",
            "np.sqrt(v)",
            "np.sqrt called on device data",
        ),
        (
            "not in place",
            STEP,
            "p = p - lr / (1 - beta1**t) * m / denom",
            "p did not change: update it in place",
        ),
        (
            "the moment rebound, not updated in place",
            "    m *= beta1\n    m += (1 - beta1) * g\n",
            "    m = beta1 * m + (1 - beta1) * g\n",
            "m did not change: update the moment in place",
        ),
        (
            "the second moment rebound",
            "    v *= beta2\n    v += (1 - beta2) * g * g\n",
            "    v = beta2 * v + (1 - beta2) * g * g\n",
            "v did not change",
        ),
        ("the step uphill", STEP, "p += lr / (1 - beta1**t) * m / denom", "p moved uphill"),
        (
            "beta1 and 1 - beta1 swapped",
            "    m *= beta1\n    m += (1 - beta1) * g\n",
            "    m *= 1 - beta1\n    m += beta1 * g\n",
            "m has beta1 and 1 - beta1 swapped",
        ),
        (
            "v averages g",
            "v += (1 - beta2) * g * g",
            "v += (1 - beta2) * g",
            "v averages g; it should average g * g",
        ),
        ("lr ignored", STEP, "p -= 1e-3 / (1 - beta1**t) * m / denom", "lr is ignored"),
        (
            "the bias correction with t - 1",
            DENOM,
            "denom = xp.sqrt(v) / (1 - beta2 ** (t - 1)) ** 0.5 + eps",
            "beta**(t - 1) = 1 divides by 0",
        ),
        (
            "the gradient scaled in place",
            "    m += (1 - beta1) * g\n",
            "    g *= 1 - beta1\n    m += g\n    g /= 1 - beta1\n    g *= 1.0000001\n",
            "your function changed its argument `g` in place",
        ),
        (
            "p returned",
            STEP,
            STEP + "\n    return p",
            "it must update p, m and v in place and return None",
        ),
    ],
}
