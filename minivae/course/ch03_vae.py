"""The graded checks of problem set 03 (the VAE), with the reference maths they compare with and
the usual slips they recognise.

``reparameterize`` and ``reparameterize_backward`` here have the exercises' signatures; the
checks of the later exercises give them to the learner's code in place of the learner's own
(``feedback.call(..., using=...)``), so a blank or wrong exercise 1 never costs exercise 2 or 3
its points::

    from minivae.course import ch03_vae as ch03
    ch03.check_negative_elbo_and_grads(negative_elbo_and_grads, params, x, eps)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..gradcheck import numerical_gradient
from .feedback import (
    ExerciseError,
    call,
    check_close,
    check_finite,
    check_gradient,
    check_shape,
    check_type,
    unpack,
)

Array = np.ndarray
Params = dict[str, Array]
LOG_2PI = float(np.log(2 * np.pi))


def _nan_where_logvar_negative(name: str, got: Any, logvar: Array) -> None:
    """NaN exactly where logvar < 0: a square root or log of logvar itself."""
    arr = np.asarray(got, dtype=np.float64)
    if arr.shape == logvar.shape and np.isnan(arr).any():
        if np.array_equal(np.isnan(arr), logvar < 0):
            raise ExerciseError(
                f"{name} is NaN exactly where logvar < 0: np.sqrt(logvar) or np.log(logvar)? "
                "logvar is the log-variance, any real number; the std is exp(0.5 * logvar)"
            )


# ----------------------------------------------------------------------------- 1. forward


def reparameterize(mu: Array, logvar: Array, eps: Array) -> Array:
    """z = mu + exp(0.5 * logvar) * eps; mu, logvar, eps: (batch, latent)."""
    return mu + np.exp(0.5 * logvar) * eps


def check_reparameterize(fn: Callable, mu: Array, logvar: Array, eps: Array) -> Array:
    """z = mu + std * eps with std = exp(0.5 * logvar); z = mu when eps = 0."""
    expected = reparameterize(mu, logvar, eps)
    std = np.exp(0.5 * logvar)
    z = call(fn, mu, logvar, eps)
    check_type("z", z, np.ndarray)
    if np.shape(z) == (mu.shape[0], mu.shape[0]) and mu.shape[0] != mu.shape[1]:
        raise ExerciseError(
            f"z has shape {np.shape(z)}, (batch, batch): a matrix product (@) where the "
            "entry-by-entry product (*) belongs: z = mu + std * eps"
        )
    check_shape("z", z, mu.shape)
    _nan_where_logvar_negative("z", z, logvar)
    check_close(
        "z",
        z,
        expected,
        hints=[
            (
                mu + np.exp(logvar) * eps,
                "this looks like exp(logvar) * eps: exp(logvar) is the "
                "variance, the standard deviation is exp(0.5 * logvar)",
            ),
            (
                mu + logvar * eps,
                "this multiplies eps by logvar itself: the standard deviation is exp(0.5 * logvar)",
            ),
            (std * eps, "mu is missing: z = mu + std * eps"),
            (mu + eps / std, "this divides eps by the standard deviation: z = mu + std * eps"),
            (mu + std, "eps is missing: z = mu + std * eps, with the given noise eps"),
            (eps + std * mu, "mu and eps are swapped: z = mu + std * eps"),
            (mu * std * eps, "this multiplies mu by std * eps: z = mu + std * eps"),
        ],
    )
    z0 = call(fn, mu, logvar, np.zeros_like(mu))
    check_close("z when eps = 0", z0, mu)
    return z


# ----------------------------------------------------------------------------- 2. backward


def reparameterize_backward(dz: Array, logvar: Array, eps: Array) -> tuple[Array, Array]:
    """dmu = dz, dlogvar = dz * eps * 0.5 * exp(0.5 * logvar)."""
    return dz, dz * eps * 0.5 * np.exp(0.5 * logvar)


def check_reparameterize_backward(
    fn: Callable, dz: Array, mu: Array, logvar: Array, eps: Array
) -> tuple[Array, Array]:
    """dmu, dlogvar from dz, and both against finite differences of sum(dz * z)."""
    dmu_ref, dlogvar_ref = reparameterize_backward(dz, logvar, eps)
    std, var = np.exp(0.5 * logvar), np.exp(logvar)
    result = call(fn, dz, logvar, eps)
    dmu, dlogvar = unpack(result, ["dmu", "dlogvar"], "reparameterize_backward(dz, logvar, eps)")
    check_shape("dmu", dmu, mu.shape)
    check_shape("dlogvar", dlogvar, mu.shape)
    if np.allclose(np.asarray(dmu, float), dlogvar_ref) and np.allclose(
        np.asarray(dlogvar, float), dmu_ref
    ):
        raise ExerciseError("dmu and dlogvar are swapped: return (dmu, dlogvar) in that order")
    check_close(
        "dmu",
        dmu,
        dmu_ref,
        hints=[
            (dz * std, "dmu is dz times the std: but dz/dmu = 1, so dmu = dz"),
            (dz * eps, "dmu is dz times eps: but dz/dmu = 1, so dmu = dz"),
            (
                np.ones_like(dz),
                "dmu is all ones, the local derivative dz/dmu alone: multiply by "
                "dz (chain rule), dmu = dz",
            ),
        ],
    )
    _nan_where_logvar_negative("dlogvar", dlogvar, logvar)
    check_close(
        "dlogvar",
        dlogvar,
        dlogvar_ref,
        hints=[
            (
                2 * dlogvar_ref,
                "dlogvar is twice the expected value: d exp(0.5 * logvar) / d logvar "
                "= 0.5 * exp(0.5 * logvar) — the 0.5 from the chain rule is "
                "missing",
            ),
            (
                dz * eps * var,
                "this uses exp(logvar), the variance: the derivative of "
                "std = exp(0.5 * logvar) is 0.5 * std",
            ),
            (
                dz * eps * 0.5 * var,
                "this uses exp(logvar), the variance: the derivative of "
                "std = exp(0.5 * logvar) is 0.5 * std",
            ),
            (dz * 0.5 * std, "eps is missing: z depends on logvar through std * eps"),
            (
                eps * 0.5 * std,
                "dz is missing: multiply the local derivative eps * 0.5 * std by dz (chain rule)",
            ),
            (
                dz * eps * 0.5 / std,
                "this divides by the std: d exp(0.5 * logvar) / d logvar = "
                "0.5 * exp(0.5 * logvar), a product",
            ),
        ],
    )

    # the backward pass is the gradient of the forward pass (the course's reparameterize)
    def loss() -> float:
        return float(np.sum(dz * reparameterize(mu, logvar, eps)))

    mu, logvar = np.array(mu, dtype=np.float64), np.array(logvar, dtype=np.float64)
    check_gradient("dmu", dmu, numerical_gradient(loss, mu))
    check_gradient("dlogvar", dlogvar, numerical_gradient(loss, logvar))
    return dmu, dlogvar


# ----------------------------------------------------------------------------- 3. negative ELBO


def negative_elbo_and_grads(
    params: Params,
    x: Array,
    eps: Array,
    *,
    skip_kl_grads: str = "",
    swap: bool = False,
    tanh_slip: str = "",
) -> tuple[dict, Params]:
    """The negative ELBO of the one-hidden-layer tanh VAE with a Bernoulli decoder and every
    gradient (the keyword switches model the usual slips; ``tanh_slip`` names the layers,
    'encoder' and/or 'decoder', whose tanh' is written 1 - h instead of 1 - h**2)."""

    def tanh_prime(h: Array, where: str) -> Array:
        return 1 - h if where in tanh_slip else 1 - h**2

    batch, z_dim = eps.shape
    h1 = np.tanh(x @ params["encoder.W0"] + params["encoder.b0"])
    h = h1 @ params["encoder.W1"] + params["encoder.b1"]
    mu, logvar = h[:, :z_dim], h[:, z_dim:]
    if swap:
        mu, logvar = logvar, mu
    z = reparameterize(mu, logvar, eps)
    h2 = np.tanh(z @ params["decoder.W0"] + params["decoder.b0"])
    logits = h2 @ params["decoder.W1"] + params["decoder.b1"]
    recon = float(np.sum(np.logaddexp(0, logits) - x * logits)) / batch
    kl = float(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar))) / batch
    grads = {}
    dlogits = (0.5 * (1 + np.tanh(0.5 * logits)) - x) / batch
    grads["decoder.W1"] = h2.T @ dlogits
    grads["decoder.b1"] = dlogits.sum(axis=0)
    da2 = (dlogits @ params["decoder.W1"].T) * tanh_prime(h2, "decoder")
    grads["decoder.W0"] = z.T @ da2
    grads["decoder.b0"] = da2.sum(axis=0)
    dz = da2 @ params["decoder.W0"].T
    dmu, dlogvar = reparameterize_backward(dz, logvar, eps)
    if "mu" not in skip_kl_grads:
        dmu = dmu + mu / batch
    if "logvar" not in skip_kl_grads:
        dlogvar = dlogvar + 0.5 * (np.exp(logvar) - 1) / batch
    dh = np.concatenate([dlogvar, dmu] if swap else [dmu, dlogvar], axis=1)
    grads["encoder.W1"] = h1.T @ dh
    grads["encoder.b1"] = dh.sum(axis=0)
    da1 = (dh @ params["encoder.W1"].T) * tanh_prime(h1, "encoder")
    grads["encoder.W0"] = x.T @ da1
    grads["encoder.b0"] = da1.sum(axis=0)
    return {"loss": recon + kl, "recon": recon, "kl": kl}, grads


_TANH = (
    "\nThis layer sits behind a tanh: its gradient is multiplied by 1 - h**2, where "
    "h = tanh(...) is the layer's output (not its input)."
)


def check_negative_elbo_and_grads(fn: Callable, params: Params, x: Array, eps: Array) -> dict:
    """loss = recon + kl and all 8 gradients, with the course's reparameterize and
    reparameterize_backward in place of the learner's (exercises 1 and 2 are graded apart)."""
    batch, z_dim = eps.shape
    terms_ref, grads_ref = negative_elbo_and_grads(params, x, eps)
    using = {"reparameterize": reparameterize, "reparameterize_backward": reparameterize_backward}
    shapes = ", ".join(f"{name} is {tuple(value.shape)}" for name, value in params.items())
    result = call(
        fn,
        params,
        x,
        eps,
        using=using,
        advice=f"x is {x.shape}, eps is {eps.shape}; {shapes}. Write the shape next to each line.",
    )
    terms, grads = unpack(result, ["terms", "grads"], "negative_elbo_and_grads(params, x, eps)")
    check_type("terms", terms, dict)
    check_type("grads", grads, dict)
    for key in ("loss", "recon", "kl"):
        if key not in terms:
            raise ExerciseError(
                f"terms has no {key!r}: return {{'loss': ..., 'recon': ..., 'kl': ...}}"
            )
    h1 = np.tanh(x @ params["encoder.W0"] + params["encoder.b0"])
    h = h1 @ params["encoder.W1"] + params["encoder.b1"]
    mu, logvar = h[:, :z_dim], h[:, z_dim:]
    swapped, _ = negative_elbo_and_grads(params, x, eps, swap=True)
    check_close(
        "kl",
        terms["kl"],
        terms_ref["kl"],
        sizes={"batch": batch, "latent": z_dim},
        hints=[
            (-terms_ref["kl"], "your KL has the wrong sign"),
            (
                swapped["kl"],
                "mu and logvar are swapped: the first J columns of the encoder's "
                "output are mu, the last J are logvar",
            ),
        ],
    )
    check_close(
        "recon",
        terms["recon"],
        terms_ref["recon"],
        sizes={"batch": batch, "pixels": x.shape[1]},
        hints=[
            (
                terms_ref["recon"] * batch,
                "your reconstruction term is summed over the batch: average it",
            ),
        ],
    )
    check_close(
        "loss",
        terms["loss"],
        terms_ref["loss"],
        hints=[
            (
                terms_ref["recon"] - terms_ref["kl"],
                "loss = recon - kl: the negative ELBO is recon + kl",
            ),
            (terms_ref["recon"], "the loss is recon alone: the negative ELBO is recon + kl"),
        ],
    )
    missing = sorted(set(grads_ref) - set(grads))
    if missing:
        raise ExerciseError(f"grads has no entry for {missing}: it needs all 8 names of params")

    slipped = {
        where: negative_elbo_and_grads(params, x, eps, tanh_slip=where)[1]
        for where in ("decoder", "encoder")
    }

    def check_layer(name: str, extra: str = "", hints: list | None = None) -> None:
        check_shape(f'grads["{name}"]', grads[name], params[name].shape)
        try:
            check_close(
                f'grads["{name}"]',
                grads[name],
                grads_ref[name],
                hints=[
                    *(hints or []),
                    *(
                        (
                            slipped[where][name],
                            f"tanh' is written as 1 - h in the {where}: the derivative of tanh "
                            "is 1 - h**2, with h = tanh(...) the layer's output",
                        )
                        for where in ("decoder", "encoder")
                    ),
                    (
                        grads_ref[name] * batch,
                        "summed over the batch where the loss takes a "
                        "mean: divide by the batch size once, in dlogits",
                    ),
                    (
                        grads_ref[name] / batch,
                        "averaged over the batch: a parameter gradient "
                        "SUMS over the examples (the 1/batch is already "
                        "inside dlogits)",
                    ),
                ],
            )
        except ExerciseError as err:
            # the layer's advice only where no slip was recognised
            raise ExerciseError(
                str(err) + (extra if "entries differ" in str(err) else "")
            ) from None

    for name in ("decoder.b1", "decoder.W1"):
        check_layer(name)
    for name in ("decoder.b0", "decoder.W0"):
        check_layer(name, _TANH)
    # the encoder's last bias shows which part of [dmu, dlogvar] is off
    no_kl = negative_elbo_and_grads(params, x, eps, skip_kl_grads="mu logvar")[1]["encoder.b1"]
    no_kl_mu = negative_elbo_and_grads(params, x, eps, skip_kl_grads="mu")[1]["encoder.b1"]
    no_kl_logvar = negative_elbo_and_grads(params, x, eps, skip_kl_grads="logvar")[1]["encoder.b1"]
    b1_ref = grads_ref["encoder.b1"]
    kl_only = np.concatenate([mu.sum(axis=0), 0.5 * (np.exp(logvar) - 1).sum(axis=0)]) / batch
    check_shape('grads["encoder.b1"]', grads["encoder.b1"], (2 * z_dim,))
    check_layer(
        "encoder.b1",
        hints=[
            (
                no_kl,
                "the KL's gradients are missing: add mu / batch to dmu and "
                "0.5 * (exp(logvar) - 1) / batch to dlogvar before the encoder",
            ),
            (
                no_kl_mu,
                "the KL's gradient is missing from dmu: add mu / batch (the KL depends "
                "on mu directly, not only through z)",
            ),
            (
                no_kl_logvar,
                "the KL's gradient is missing from dlogvar: add 0.5 * (exp(logvar) - 1) / batch",
            ),
            (2 * no_kl - b1_ref, "the KL's gradients enter with the wrong sign"),
            (
                kl_only,
                "only the KL's gradients reach the encoder: add the decoder's dmu and "
                "dlogvar from reparameterize_backward(dz, logvar, eps)",
            ),
            (
                np.concatenate([b1_ref[z_dim:], b1_ref[:z_dim]]),
                "dmu and dlogvar are concatenated in the wrong order: [dmu, dlogvar], like "
                "[mu, logvar]",
            ),
        ],
    )
    check_layer("encoder.W1")
    for name in ("encoder.b0", "encoder.W0"):
        check_layer(name, _TANH)

    # every gradient is the gradient of the learner's own loss, by central finite differences
    params64 = {name: np.array(value, dtype=np.float64) for name, value in params.items()}

    def loss_of_params() -> float:
        return call(fn, params64, x, eps, using=using)[0]["loss"]

    for name in params64:
        numeric = numerical_gradient(loss_of_params, params64[name])
        check_gradient(f'grads["{name}"]', grads[name], numeric, tol=1e-6)
    return terms


# ----------------------------------------------------------------------------- 4. prior samples


def check_sample_prior(fn: Callable, model: Any, n: int, seed: int) -> tuple[Array, Array]:
    """z ~ N(0, I) as the first draw of the given generator; x = model.decode(z)."""
    z_dim, x_dim = model.z_dim, model.x_dim
    z_ref = np.random.default_rng(seed).standard_normal((n, z_dim))
    x_ref = model.decode(z_ref)
    result = call(fn, model, n, np.random.default_rng(seed))
    z, x = unpack(result, ["z", "x"], "sample_prior(model, n, rng)")
    if np.shape(z) == (n, x_dim) and np.shape(x) == (n, z_dim):
        raise ExerciseError("z and x are swapped: return (z, x), the codes first")
    check_shape("z", z, (n, z_dim))
    check_close(
        "z",
        z,
        z_ref,
        common_hints=False,
        hints=[
            (
                np.random.default_rng(seed).random((n, z_dim)),
                "these are uniform draws in [0, 1): z ~ N(0, I) needs rng.standard_normal",
            ),
            (
                np.random.default_rng(seed).standard_normal((z_dim, n)).T,
                "z was drawn as (z_dim, n) and transposed: draw it as (n, z_dim)",
            ),
        ],
    )
    check_shape("x", x, (n, x_dim))
    logits = model.decoder_output(z_ref)
    x_arr = np.asarray(x, dtype=np.float64)
    if np.all(np.isin(x_arr, (0.0, 1.0))) and not np.all(np.isin(x_ref, (0.0, 1.0))):
        raise ExerciseError(
            "x holds only 0s and 1s: these are samples of p(x|z); return its mean, "
            "model.decode(z) (the pixel probabilities)"
        )
    check_close(
        "x",
        x,
        x_ref,
        probabilities=True,
        common_hints=False,
        hints=[
            (
                logits,
                "these are the decoder's logits: the mean of p(x|z) is sigmoid(logits), which "
                "model.decode(z) returns",
            ),
            (
                1 / (1 + np.exp(-x_ref)),
                "the sigmoid is applied twice: model.decode(z) already gives probabilities",
            ),
        ],
    )
    rng_shared = np.random.default_rng(seed + 1)
    first = unpack(call(fn, model, 3, rng_shared), ["z", "x"], "sample_prior(model, n, rng)")[0]
    second = unpack(call(fn, model, 3, rng_shared), ["z", "x"], "sample_prior(model, n, rng)")[0]
    check_shape("z for n = 3", first, (3, z_dim))
    if np.allclose(first, second):
        raise ExerciseError(
            "two calls with the same generator gave the same z: draw from the rng you are given "
            "(do not create a new, fixed-seed generator inside)"
        )
    return z, x


# ----------------------------------------------------------------------------- 5. IWAE


def iwae_log_weights(
    model: Any,
    x: Array,
    eps: Array,
    *,
    std_power: float = 0.5,
    pairing: str = "tile",
    decoded: bool = False,
) -> tuple[Array, Array, Array]:
    """(log p(x|z_k), log p(z_k), log q(z_k|x)), each (k, batch), for z_k = mu + std * eps_k.

    ``std_power`` (0.5: the std; 1: exp(logvar) mistaken for it), ``pairing`` ('repeat': x
    repeated row by row against z ordered sample by sample) and ``decoded`` (probabilities
    given to log_prob where logits belong) model the usual slips.
    """
    k, batch, z_dim = eps.shape
    mu, logvar = model.encode(x)
    z = mu + np.exp(std_power * logvar) * eps
    out = model.decoder_output(z.reshape(k * batch, z_dim))
    if decoded:
        out = model.likelihood.mean(out)
    x_rep = np.tile(x, (k, 1)) if pairing == "tile" else np.repeat(x, k, axis=0)
    log_px_z = np.asarray(model.likelihood.log_prob(out, x_rep)).reshape(k, batch)
    log_pz = -0.5 * np.sum(z**2 + LOG_2PI, axis=-1)
    log_qz = -0.5 * np.sum(eps**2 + LOG_2PI + logvar, axis=-1)
    return log_px_z, log_pz, log_qz


def log_mean_exp(log_w: Array) -> Array:
    """log (1/k) sum_k exp(log_w_k) over axis 0, with the maximum subtracted first."""
    m = log_w.max(axis=0)
    return m + np.log(np.mean(np.exp(log_w - m), axis=0))


def iwae_log_likelihood(model: Any, x: Array, eps: Array) -> Array:
    """The IWAE estimate of log p(x) for each example of x, from the k noise draws eps."""
    log_px_z, log_pz, log_qz = iwae_log_weights(model, x, eps)
    return log_mean_exp(log_px_z + log_pz - log_qz)


def check_iwae_log_likelihood(fn: Callable, model: Any, x: Array, eps: Array) -> Array:
    """log p(x) per example from the given eps, against the course's log-mean-exp of log w."""
    k, batch, z_dim = eps.shape
    advice = (
        f"eps is (k, batch, latent) = {eps.shape}; mu is ({batch}, {z_dim}) and broadcasts "
        "against it. The decoder takes 2-D input: reshape z to (k * batch, latent) and back."
    )
    log_px_z, log_p, log_q = iwae_log_weights(model, x, eps)
    log_w = log_px_z + log_p - log_q
    expected = log_mean_exp(log_w)
    logvar = model.encode(x)[1]
    log_px = call(fn, model, x, eps, advice=advice)
    if np.shape(log_px) == (k,) and k != batch:
        raise ExerciseError(
            f"log p(x) has shape ({k},), one value per sample: combine the k samples (axis 0) "
            f"and keep one value per example, shape ({batch},)"
        )
    check_shape("log p(x)", log_px, (batch,))
    variant = {
        "var": iwae_log_weights(model, x, eps, std_power=1.0),
        "repeat": iwae_log_weights(model, x, eps, pairing="repeat"),
        "decoded": iwae_log_weights(model, x, eps, decoded=True),
    }
    check_close(
        "log p(x)",
        log_px,
        expected,
        rtol=1e-7,
        common_hints=False,
        hints=[
            (
                expected + np.log(k),
                "the - log k is missing: the estimate is log of the MEAN of "
                "the weights, log((1/k) sum_i w_i)",
            ),
            (
                log_w.mean(axis=0),
                "this is the mean of the log-weights, which is the ELBO "
                "estimate: the IWAE bound is the log of the mean of the weights "
                "(log-sum-exp - log k)",
            ),
            (
                log_w.max(axis=0) - np.log(k),
                "this is the largest log-weight minus log k: after "
                "subtracting the max, add "
                "log(sum(exp(log_w - max)))",
            ),
            (
                expected - log_w.max(axis=0),
                "the maximum m is subtracted inside the exp but not "
                "added back: log mean w = m + "
                "log(sum(exp(log_w - m))) - log k",
            ),
            (
                log_mean_exp(sum(variant["var"][:2]) - variant["var"][2]),
                "this looks like z = mu + exp(logvar) * eps: the standard deviation is "
                "exp(0.5 * logvar)",
            ),
            (
                log_mean_exp(log_px_z + log_p + log_q),
                "log q(z|x) enters with the wrong sign: log w = log p(x|z) + log p(z) - log q(z|x)",
            ),
            (
                log_mean_exp(log_w - 0.5 * np.sum(logvar, axis=-1)),
                "the logvar term of log q(z|x) is missing: "
                "log q = -1/2 sum(eps^2 + log 2 pi + logvar)",
            ),
            (
                log_mean_exp(log_px_z - 0.5 * np.sum(eps**2 + LOG_2PI, axis=-1) - log_q),
                "log p(z) is evaluated at eps: the prior's density is at z = mu + std * eps",
            ),
            (
                log_mean_exp(log_px_z + log_p),
                "log q(z|x) is missing from the log-weight: w = p(x|z) p(z) / q(z|x)",
            ),
            (
                log_mean_exp(sum(variant["repeat"][:2]) - variant["repeat"][2]),
                "x and z are paired wrongly: z.reshape(k * batch, latent) is ordered sample by "
                "sample, so repeat x the same way, np.tile(x, (k, 1)) (np.repeat(x, k, axis=0) "
                "repeats each row k times in a row)",
            ),
            (
                log_mean_exp(sum(variant["decoded"][:2]) - variant["decoded"][2]),
                "log_prob is given model.decode(z), the probabilities: it takes the decoder's raw "
                "output, model.decoder_output(z) (the logits)",
            ),
        ],
    )
    return log_px


def check_iwae_sharp_decoder(fn: Callable, model: Any, x: Array, eps: Array) -> Array:
    """A sharp decoder: log-weights near -10000, where exp underflows to 0 unless each example's
    maximum is subtracted first."""
    expected = iwae_log_likelihood(model, x, eps)
    log_px = call(fn, model, x, eps)
    check_shape("log p(x) for a sharp decoder", log_px, expected.shape)
    arr = np.asarray(log_px, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        if np.any(np.isfinite(arr)):
            raise ExerciseError(
                f"log p(x) is {arr} for log-weights around {expected.mean():.0f}: some examples "
                "are finite and some not, so one maximum was subtracted for all of them. "
                "Subtract each example's own maximum, m = log_w.max(axis=0), before exponentiating"
            )
        raise ExerciseError(
            f"log p(x) is {arr} for log-weights around {expected.mean():.0f}: exp() of such "
            "numbers underflows to 0 and log(0) = -inf. Subtract the largest log-weight m before "
            "exponentiating: log mean w = m + log(sum(exp(log_w - m))) - log k"
        )
    check_finite("log p(x) for a sharp decoder", arr)
    check_close("log p(x) for a sharp decoder", arr, expected, rtol=1e-9)
    return expected
