"""The graded checks of problem set 02 (latent variables and the ELBO), with the reference maths
they compare with and the usual slips they recognise::

    from minivae.course import ch02_elbo as ch02
    ch02.check_kl_standard_normal(kl_standard_normal, mu, logvar)

Each slip is written out here as the number it would give (``kl_slips``, ``kl_mc_slips``,
``gaussian_nll_slips``), so a hint fires only when the learner's numbers are exactly those.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..gradcheck import numerical_gradient
from ..kl import kl_standard_normal as reference_kl
from ..losses import gaussian_nll as reference_gaussian_nll
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
Hints = list[tuple[object, str]]


# ----------------------------------------------------------------------------- 1. closed-form KL


def kl_slips(mu: Array, logvar: Array) -> Hints:
    """The KL that each usual slip gives, with what to say."""
    batch = mu.shape[0]
    var, std = np.exp(logvar), np.exp(0.5 * logvar)
    per_entry = -0.5 * (1 + logvar - mu**2 - var)
    return [
        (
            float(-0.5 * np.sum(1 + logvar - mu**2 - std)) / batch,
            "this looks like exp(0.5 * logvar), the standard deviation, where the variance "
            "exp(logvar) belongs",
        ),
        (
            float(-0.5 * np.sum(1 + 2 * logvar - mu**2 - var**2)) / batch,
            "this looks like logvar treated as a log standard deviation: here logvar is "
            "log(sigma^2), so the variance is exp(logvar)",
        ),
        (
            float(per_entry.mean()),
            "your KL is averaged over the latent dimensions: it is a SUM over them (the KL of "
            "independent dimensions adds up), then a mean over the batch",
        ),
        (
            float(per_entry.sum()),
            "your KL is summed over the batch: the loss is a MEAN over the batch (sum over latent "
            "dimensions, then divide by the batch size)",
        ),
        (float(-0.5 * np.sum(1 + logvar - mu - var)) / batch, "this uses mu where mu**2 belongs"),
        (float(-0.5 * np.sum(1 - mu**2 - var)) / batch, "the logvar term is missing"),
        (
            float(-0.5 * np.sum(logvar - mu**2 - var)) / batch,
            "the constant 1 inside the sum is missing (without it the KL of q = p is not 0)",
        ),
        (float(-0.5 * np.sum(1 + logvar - var)) / batch, "the mu**2 term is missing"),
    ]


def check_kl_standard_normal(kl_fn: Callable, mu: Array, logvar: Array) -> float:
    """kl (batch mean of the sum over latents) and its gradients dmu, dlogvar; 0 when q = p."""
    batch, latent = mu.shape
    names = ["kl", "dmu", "dlogvar"]
    # q = p gives KL = 0, with zero gradients
    zeros = np.zeros((batch, latent))
    kl0, _, _ = unpack(call(kl_fn, zeros, zeros), names, "kl_standard_normal(mu, logvar)")
    check_type("kl", kl0, float)
    check_close(
        "kl for mu = 0, logvar = 0 (q equals the prior)",
        kl0,
        0.0,
        atol=1e-12,
        hints=[(h, m) for h, m in kl_slips(zeros, zeros)],
    )
    kl_ref, dmu_ref, dlogvar_ref = reference_kl(mu, logvar)
    var, std = np.exp(logvar), np.exp(0.5 * logvar)
    kl, dmu, dlogvar = unpack(call(kl_fn, mu, logvar), names, "kl_standard_normal(mu, logvar)")
    check_type("kl", kl, float)
    check_close(
        "kl",
        kl,
        kl_ref,
        sizes={"batch": batch, "latent": latent},
        hints=[
            (
                -kl_ref,
                "your KL has the wrong sign: it is -1/2 * sum(1 + logvar - mu^2 - "
                "exp(logvar)), and a KL is never negative",
            ),
            (2 * kl_ref, "your KL is twice the expected value: the factor 1/2 in front is missing"),
            *kl_slips(mu, logvar),
        ],
    )
    check_shape("dmu", dmu, mu.shape)
    check_close(
        "dmu",
        dmu,
        dmu_ref,
        sizes={"batch": batch},
        hints=[
            (-dmu_ref, "dmu has the wrong sign: d/dmu of -1/2 * (-mu^2) is +mu"),
            (mu, "dmu is missing the 1/batch of the batch mean: dmu = mu / batch"),
            (2 * dmu_ref, "dmu is twice the expected value: d/dmu of mu^2 / 2 is mu"),
        ],
    )
    check_shape("dlogvar", dlogvar, logvar.shape)
    check_close(
        "dlogvar",
        dlogvar,
        dlogvar_ref,
        sizes={"batch": batch},
        hints=[
            (-dlogvar_ref, "dlogvar has the wrong sign: it is +1/2 * (exp(logvar) - 1) / batch"),
            (2 * dlogvar_ref, "dlogvar is twice the expected value: the factor 1/2 is missing"),
            (0.5 * (var - 1), "dlogvar is missing the 1/batch of the batch mean"),
            (
                0.5 * (std - 1) / batch,
                "this looks like exp(0.5 * logvar) where the variance "
                "exp(logvar) belongs: d exp(logvar) / d logvar = "
                "exp(logvar)",
            ),
            (
                0.5 * (0.5 * std - 1) / batch,
                "this looks like the derivative of exp(0.5 * logvar); "
                "the KL contains the variance exp(logvar)",
            ),
            (
                0.5 * var / batch,
                "the derivative of the logvar term (-1/2 per entry) is missing from dlogvar",
            ),
        ],
    )
    # the gradients are the gradients of the learner's own kl, by central finite differences
    mu64, logvar64 = np.array(mu, dtype=np.float64), np.array(logvar, dtype=np.float64)
    check_gradient("dmu", dmu, numerical_gradient(lambda: kl_fn(mu64, logvar64)[0], mu64), tol=1e-6)
    check_gradient(
        "dlogvar", dlogvar, numerical_gradient(lambda: kl_fn(mu64, logvar64)[0], logvar64), tol=1e-6
    )
    return kl


# ----------------------------------------------------------------------------- 2. Monte Carlo KL


def kl_monte_carlo(mu: Array, logvar: Array, eps: Array) -> float:
    """mean over samples and batch of sum_j [log q(z_j) - log p(z_j)], z = mu + std * eps."""
    std = np.exp(0.5 * logvar)
    z = mu + std * eps
    log_q = -0.5 * (LOG_2PI + logvar + eps**2)
    log_p = -0.5 * (LOG_2PI + z**2)
    return float(np.mean(np.sum(log_q - log_p, axis=-1)))


def _mc(log_q: Array, log_p: Array) -> float:
    return float(np.mean(np.sum(log_q - log_p, axis=-1)))


def kl_mc_slips(mu: Array, logvar: Array, eps: Array) -> Hints:
    """The Monte Carlo estimate that each usual slip gives, with what to say."""
    std, var = np.exp(0.5 * logvar), np.exp(logvar)
    z = mu + std * eps
    log_q = -0.5 * (LOG_2PI + logvar + eps**2)
    log_p = -0.5 * (LOG_2PI + z**2)
    z_var = mu + var * eps  # exp(logvar) as the std
    log_q_var = -0.5 * (LOG_2PI + logvar + ((z_var - mu) / var) ** 2)
    return [
        (
            _mc(log_q, -0.5 * (LOG_2PI + z_var**2)),
            "this looks like z = mu + exp(logvar) * eps: the standard deviation is "
            "exp(0.5 * logvar)",
        ),
        (
            _mc(log_q_var, -0.5 * (LOG_2PI + z_var**2)),
            "this looks like z = mu + exp(logvar) * eps: the standard deviation is "
            "exp(0.5 * logvar)",
        ),
        (
            _mc(-0.5 * (LOG_2PI + 2 * logvar + eps**2), -0.5 * (LOG_2PI + z_var**2)),
            "this looks like logvar treated as a log standard deviation (std = exp(logvar)): here "
            "logvar is log(sigma^2), so std = exp(0.5 * logvar)",
        ),
        (
            _mc(-0.5 * (LOG_2PI + eps**2), log_p),
            "the log-variance term of log q(z) is missing: "
            "log q(z) = -1/2 * (log(2 pi) + logvar + eps**2), summed over latent dimensions",
        ),
        (
            _mc(log_q, -0.5 * (LOG_2PI + eps**2)),
            "log p is evaluated at eps: the prior's density is at z = mu + std * eps",
        ),
        (
            _mc(-0.5 * (LOG_2PI + logvar + z**2), log_p),
            "log q uses z**2: its squared distance is ((z - mu) / std)**2 = eps**2",
        ),
        (
            _mc(-0.5 * (LOG_2PI + logvar + ((z - mu) / var) ** 2), log_p),
            "log q divides z - mu by the variance: the standardised distance is (z - mu) / std",
        ),
        (
            _mc(log_q[:1], log_p[:1]),
            "this uses only the first sample: average log q - log p over all the samples",
        ),
    ]


def check_kl_monte_carlo(
    kl_mc_fn: Callable, mu: Array, logvar: Array, eps: Array, eps_many: Array | None = None
) -> float:
    """The estimate from the given eps; exactly 0 when q = p; near the closed form for many eps."""
    n_samples, batch, latent = eps.shape
    advice = (
        f"eps is (n_samples, batch, latent) = {eps.shape} and mu is {mu.shape}: mu + std * eps "
        f"broadcasts to {eps.shape} without any reshaping"
    )
    expected = kl_monte_carlo(mu, logvar, eps)
    kl_mc = call(kl_mc_fn, mu, logvar, eps, advice=advice)
    check_type("kl_monte_carlo(mu, logvar, eps)", kl_mc, float)
    # q equal to the prior: log q(z) = log p(z) for every sample, so the estimate is exactly 0
    zero = call(kl_mc_fn, np.zeros((batch, latent)), np.zeros((batch, latent)), eps, advice=advice)
    check_type("kl_monte_carlo for mu = 0, logvar = 0", zero, float)
    if abs(zero) > 1e-10:
        raise ExerciseError(
            f"with mu = 0 and logvar = 0, q equals the prior, so log q(z) - log p(z) is 0 for "
            f"every sample; your estimate is {zero:.6g}. Check that log q and log p have the same "
            "form, -1/2 * (log(2 pi) + log-variance + squared distance / variance), with the 1/2 "
            "in both"
        )
    check_close(
        "kl_monte_carlo",
        kl_mc,
        expected,
        rtol=1e-8,
        sizes={"batch": batch, "latent": latent, "samples": n_samples},
        hints=[
            (
                -expected,
                "the estimate has the wrong sign: it is the average of "
                "log q(z) - log p(z), not log p(z) - log q(z)",
            ),
            *kl_mc_slips(mu, logvar, eps),
        ],
    )
    if eps_many is None:
        return kl_mc
    # with many samples, the estimate must land close to the closed form (it is unbiased)
    estimate = call(kl_mc_fn, mu, logvar, eps_many, advice=advice)
    closed, _, _ = reference_kl(mu, logvar)
    std = np.exp(0.5 * logvar)
    per_sample = np.sum(
        -0.5 * (logvar + eps_many**2) + 0.5 * (mu + std * eps_many) ** 2, axis=-1
    ).mean(axis=1)
    stderr = per_sample.std() / np.sqrt(len(eps_many))
    if abs(estimate - closed) > 5 * stderr:
        raise ExerciseError(
            f"with {len(eps_many)} samples the estimate {estimate:.4f} should be within 5 "
            f"standard errors ({5 * stderr:.4f}) of the closed form {closed:.4f}; it is "
            f"{abs(estimate - closed):.4f} off"
        )
    return estimate


# ----------------------------------------------------------------------------- 3. Gaussian NLL


def _nll(
    mean: Array,
    logvar: Array,
    x: Array,
    *,
    log_2pi: float = LOG_2PI,
    scale: float = 1.0,
    inv_var: Array | None = None,
    log_term: Array | None = None,
) -> float:
    diff = mean - x
    inv_var = np.exp(-logvar) if inv_var is None else inv_var
    log_term = logvar if log_term is None else log_term
    return float(np.sum(scale * (log_2pi + log_term + diff**2 * inv_var))) / x.shape[0]


def gaussian_nll_slips(mean: Array, logvar: Array, x: Array) -> Hints:
    """The loss that each usual slip gives, with what to say."""
    std = np.exp(0.5 * logvar)
    return [
        (
            _nll(mean, logvar, x, scale=0.5, log_2pi=0.0),
            "the constant log(2 pi) is missing: 1/2 * log(2 pi) per pixel",
        ),
        (
            _nll(mean, logvar, x, scale=0.5, inv_var=1 / std),
            "this divides the squared error by exp(0.5 * logvar), the standard deviation; it "
            "must be divided by the variance exp(logvar)",
        ),
        (
            _nll(mean, logvar, x, scale=0.5, inv_var=np.exp(logvar)),
            "this multiplies the squared error by exp(logvar): divide by the variance (multiply by "
            "exp(-logvar))",
        ),
        (
            _nll(mean, logvar, x, scale=0.5, log_term=2 * logvar, inv_var=np.exp(-2 * logvar)),
            "this looks like logvar treated as a log standard deviation (variance "
            "exp(2 * logvar)): here logvar is log(sigma^2), the variance is exp(logvar)",
        ),
        (
            _nll(mean, logvar, x, scale=0.5, log_term=0.5 * logvar),
            "the log term is 1/2 * logvar per pixel (log sigma = logvar / 2 is added once more?): "
            "the NLL holds 1/2 * (log(2 pi) + logvar + ...)",
        ),
        (
            _nll(mean, logvar, x, scale=0.5, log_2pi=float(np.log2(2 * np.pi))),
            "the constant is log2(2 pi): use the natural log, np.log(2 * np.pi) (nats)",
        ),
        (
            _nll(mean, logvar, x, scale=0.5, log_term=np.zeros_like(logvar)),
            "the logvar term is missing: without it a large variance costs nothing",
        ),
        (
            _nll(mean, logvar, x, scale=0.5, inv_var=1 / logvar),
            "this divides by logvar itself: the variance is exp(logvar)",
        ),
    ]


def check_gaussian_nll_learned_var(nll_fn: Callable, mean: Array, logvar: Array, x: Array) -> float:
    """loss = (1/B) sum 1/2 [log 2 pi + logvar + (x - mean)^2 / exp(logvar)], dmean, dlogvar."""
    batch, pixels = x.shape
    loss_ref, dmean_ref, dlogvar_ref = reference_gaussian_nll(mean, logvar, x)
    var, std = np.exp(logvar), np.exp(0.5 * logvar)
    diff = mean - x
    result = call(nll_fn, mean, logvar, x)
    loss, dmean, dlogvar = unpack(
        result, ["loss", "dmean", "dlogvar"], "gaussian_nll_learned_var(mean, logvar, x)"
    )
    check_type("loss", loss, float)
    check_close(
        "loss",
        loss,
        loss_ref,
        sizes={"batch": batch, "pixels": pixels},
        hints=[
            (-loss_ref, "the loss has the wrong sign: it is MINUS the log-likelihood"),
            (2 * loss_ref, "the loss is twice the expected value: the factor 1/2 is missing"),
            *gaussian_nll_slips(mean, logvar, x),
        ],
    )
    check_shape("dmean", dmean, mean.shape)
    check_close(
        "dmean",
        dmean,
        dmean_ref,
        sizes={"batch": batch},
        hints=[
            (-dmean_ref, "dmean has the wrong sign: d/dmean of (x - mean)^2 is 2 (mean - x)"),
            (
                2 * dmean_ref,
                "dmean is twice the expected value: the 1/2 and the 2 from the square cancel",
            ),
            (
                diff / std / batch,
                "dmean divides by the standard deviation: divide by the variance exp(logvar)",
            ),
            (diff * var / batch, "dmean multiplies by exp(logvar): divide by the variance instead"),
            (
                diff * np.exp(-2 * logvar) / batch,
                "dmean divides by exp(2 * logvar): logvar "
                "treated as a log std? The variance is "
                "exp(logvar)",
            ),
            (diff / var, "dmean is missing the 1/batch of the batch mean"),
        ],
    )
    check_shape("dlogvar", dlogvar, logvar.shape)
    check_close(
        "dlogvar",
        dlogvar,
        dlogvar_ref,
        sizes={"batch": batch},
        hints=[
            (
                -dlogvar_ref,
                "dlogvar has the wrong sign: it is 1/2 * (1 - (x - mean)^2 / exp(logvar)) / batch",
            ),
            (2 * dlogvar_ref, "dlogvar is twice the expected value: the factor 1/2 is missing"),
            (
                0.5 * (1 + diff**2 / var) / batch,
                "the sign of the squared-error part of dlogvar is "
                "flipped: d/dlogvar of exp(-logvar) is "
                "-exp(-logvar)",
            ),
            (0.5 * (1 - diff**2 / var), "dlogvar is missing the 1/batch of the batch mean"),
            (
                -0.5 * diff**2 / var / batch,
                "the derivative of the logvar term itself (1/2 per entry) is missing from dlogvar",
            ),
        ],
    )
    mean64, logvar64 = np.array(mean, dtype=np.float64), np.array(logvar, dtype=np.float64)
    check_gradient(
        "dmean", dmean, numerical_gradient(lambda: nll_fn(mean64, logvar64, x)[0], mean64), tol=1e-6
    )
    check_gradient(
        "dlogvar",
        dlogvar,
        numerical_gradient(lambda: nll_fn(mean64, logvar64, x)[0], logvar64),
        tol=1e-6,
    )
    return loss
