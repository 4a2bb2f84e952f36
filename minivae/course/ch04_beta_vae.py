"""The graded checks of problem set 04 (beta-VAE, disentanglement, posterior collapse), with the
reference maths they compare with and the usual slips they recognise::

    from minivae.course import ch04_beta_vae as ch04
    ch04.check_kl_warmup_schedule(kl_warmup_schedule)

The references are the library's: ``minivae.kl``, ``minivae.schedules.linear_warmup``,
``minivae.metrics.active_units`` and ``minivae.metrics.mutual_information_gap``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..kl import kl_standard_normal
from ..metrics import (
    active_units,
    discrete_mutual_information,
    discretize,
    mutual_information_gap,
    mutual_information_matrix,
)
from ..schedules import linear_warmup
from .feedback import ExerciseError, call, check_close, check_shape, check_type, unpack

Array = np.ndarray


# ----------------------------------------------------------------------------- 1. beta loss


def check_beta_weighted_loss(
    fn: Callable, recon: float, mu: Array, logvar: Array, beta: float
) -> tuple[float, float]:
    """(loss, kl, dmu, dlogvar) = (recon + beta KL, KL, beta dKL/dmu, beta dKL/dlogvar)."""
    batch, latent = mu.shape
    kl_ref, dmu_ref, dlogvar_ref = kl_standard_normal(mu, logvar)
    loss_ref = recon + beta * kl_ref
    per_entry = -0.5 * (1 + logvar - mu**2 - np.exp(logvar))
    result = call(fn, recon, mu, logvar, beta)
    loss, kl, dmu, dlogvar = unpack(
        result, ["loss", "kl", "dmu", "dlogvar"], "beta_weighted_loss(recon, mu, logvar, beta)"
    )
    check_type("kl", kl, float)
    check_type("loss", loss, float)
    if np.isclose(float(loss), kl_ref, rtol=1e-10) and np.isclose(float(kl), loss_ref, rtol=1e-10):
        raise ExerciseError("loss and kl are swapped: return (loss, kl, dmu, dlogvar)")
    check_close(
        "kl",
        kl,
        kl_ref,
        rtol=1e-10,
        sizes={"batch": batch, "latent": latent},
        hints=[
            (
                -kl_ref,
                "your KL has the wrong sign: KL = -1/2 * sum(1 + logvar - mu^2 - "
                "exp(logvar)) is never negative",
            ),
            (beta * kl_ref, "kl should be the KL itself, without beta (beta goes into the loss)"),
            (
                float(per_entry.mean()),
                "your KL is averaged over the latents: it is a SUM over "
                "them, then a mean over the batch",
            ),
            (
                float(-0.5 * np.sum(1 + 2 * logvar - mu**2 - np.exp(2 * logvar))) / batch,
                "this looks like logvar treated as a log standard deviation: logvar is "
                "log(sigma^2), the variance is exp(logvar)",
            ),
        ],
    )
    check_close(
        "loss",
        loss,
        loss_ref,
        rtol=1e-10,
        common_hints=False,
        hints=[
            (
                beta * recon + kl_ref,
                "beta multiplies the reconstruction term here; it belongs on "
                "the KL: recon + beta * KL",
            ),
            (
                beta * (recon + kl_ref),
                "beta multiplies the whole loss; it belongs on the KL only: recon + beta * KL",
            ),
            (recon + kl_ref, "the KL is not weighted by beta: loss = recon + beta * KL"),
            (recon - beta * kl_ref, "the KL is subtracted; the loss adds it: recon + beta * KL"),
            (
                recon + kl_ref / beta,
                "the KL is divided by beta; it is multiplied: recon + beta * KL",
            ),
        ],
    )
    check_shape("dmu", dmu, mu.shape)
    check_close(
        "dmu",
        dmu,
        beta * dmu_ref,
        rtol=1e-10,
        sizes={"batch": batch},
        hints=[
            (
                dmu_ref,
                "dmu is missing the factor beta: the gradient of beta * KL is beta times the KL's",
            ),
            (
                beta * mu,
                "dmu is missing the 1/batch: the KL is a batch mean, so divide by the batch size",
            ),
        ],
    )
    check_shape("dlogvar", dlogvar, logvar.shape)
    check_close(
        "dlogvar",
        dlogvar,
        beta * dlogvar_ref,
        rtol=1e-10,
        sizes={"batch": batch},
        hints=[
            (dlogvar_ref, "dlogvar is missing the factor beta"),
            (2 * beta * dlogvar_ref, "dlogvar is twice too large: the factor 1/2 is missing"),
            (
                beta * 0.5 * (np.exp(0.5 * logvar) - 1) / batch,
                "dlogvar uses exp(0.5 * logvar), the std; the derivative of exp(logvar) is the "
                "variance exp(logvar)",
            ),
            (
                beta * 0.5 * np.exp(logvar) / batch,
                "the derivative of the logvar term (-1/2 per entry) is missing from dlogvar",
            ),
        ],
    )
    # beta = 1 is the ELBO: the loss is recon + KL
    loss1 = unpack(
        call(fn, recon, mu, logvar, 1.0),
        ["loss", "kl", "dmu", "dlogvar"],
        "beta_weighted_loss(recon, mu, logvar, beta)",
    )[0]
    check_close("loss at beta = 1", loss1, recon + kl_ref, rtol=1e-10)
    return loss, kl


# ----------------------------------------------------------------------------- 2. warm-up


def check_kl_warmup_schedule(fn: Callable, warmup_steps: int = 100, beta_max: float = 4.0) -> None:
    """beta = beta_max * min(step / warmup_steps, 1) during and after the warm-up, for the
    default beta_max = 1 and for another ``beta_max``."""
    reference = linear_warmup(warmup_steps, end=1.0)
    early_steps = [0, 1, warmup_steps // 2, warmup_steps - 1]
    first = call(fn, 0, warmup_steps)
    check_type(f"kl_warmup_schedule(0, {warmup_steps})", first, float)
    got = [call(fn, s, warmup_steps) for s in early_steps]
    want = [reference(s) for s in early_steps]
    n = warmup_steps
    check_close(
        f"beta at steps {early_steps} (a warm-up over {n} steps)",
        got,
        want,
        rtol=1e-12,
        common_hints=False,
        hints=[
            (
                [0.0] * 4,
                "beta stays 0 during the warm-up: is step // warmup_steps an integer "
                "division? Use /",
            ),
            (
                [1 - w for w in want],
                "beta goes down instead of up: it starts at 0 and rises to beta_max",
            ),
            (
                [min((s + 1) / n, 1.0) for s in early_steps],
                "beta is one step ahead: at step 0 it must be 0, (step + 1) / warmup_steps is not",
            ),
            (
                [min(s / (n - 1), 1.0) for s in early_steps],
                "beta reaches its maximum one step "
                "early: divide by warmup_steps, not "
                "warmup_steps - 1",
            ),
            (
                [min(2 * s / n, 1.0) for s in early_steps],
                "beta climbs twice as fast: step / warmup_steps",
            ),
        ],
    )
    late_steps = [n, n + n // 2, 100 * n]
    late = [call(fn, s, warmup_steps) for s in late_steps]
    check_close(
        f"beta at steps {late_steps} (after the warm-up)",
        late,
        [1.0, 1.0, 1.0],
        rtol=1e-12,
        common_hints=False,
        hints=[
            (
                [s / n for s in late_steps],
                "beta keeps growing after the warm-up: clip step / warmup_steps at 1",
            ),
            ([0.0, 0.0, 0.0], "beta falls back to 0 after the warm-up: it stays at beta_max"),
            (
                [(s % n) / n for s in late_steps],
                "beta starts over every warmup_steps steps: use "
                "min(step / warmup_steps, 1), not the remainder "
                "step % warmup_steps",
            ),
        ],
    )
    # another beta_max, during and after the warm-up
    half = call(fn, n // 2, warmup_steps, beta_max=beta_max)
    check_close(
        f"beta at step {n // 2} with beta_max = {beta_max:g}",
        half,
        beta_max * reference(n // 2),
        rtol=1e-12,
        common_hints=False,
        hints=[
            (reference(n // 2), "beta_max is ignored: the schedule climbs to beta_max, not to 1"),
            (
                min(beta_max * reference(n // 2), 1.0),
                "beta is clipped at 1 instead of beta_max: "
                "clip step / warmup_steps at 1, then "
                "multiply by beta_max",
            ),
        ],
    )
    after = [call(fn, s, warmup_steps, beta_max=beta_max) for s in late_steps]
    check_close(
        f"beta at steps {late_steps} with beta_max = {beta_max:g} (after the warm-up)",
        after,
        [beta_max] * 3,
        rtol=1e-12,
        common_hints=False,
        hints=[
            (
                [1.0] * 3,
                f"after the warm-up your schedule returns 1, not beta_max = {beta_max:g}: "
                "it climbs to beta_max and stays there",
            ),
            (
                [beta_max * s / n for s in late_steps],
                "beta keeps growing after the warm-up: clip step / warmup_steps at 1",
            ),
        ],
    )


# ----------------------------------------------------------------------------- 3. active units


def active_units_slips(mu: Array, threshold: float) -> list[tuple[int, str]]:
    """(what each usual slip would count, what to say)."""
    n = mu.shape[0]
    return [
        (
            int((mu.std(axis=0) > threshold).sum()),
            f"is it the standard deviation you compare with {threshold:g}? A_j is the variance of "
            "mu_j over the data",
        ),
        (
            int((mu.mean(axis=0) > threshold).sum()),
            "are you looking at the mean of mu_j? A_j is its variance over the data",
        ),
        (
            int((mu.var(axis=0) <= threshold).sum()),
            f"you counted the inactive units (variance <= {threshold:g})",
        ),
        (
            int((mu.var(axis=1) > threshold).sum()),
            "you took the variance across the latents of each row (axis 1); take it over the rows "
            "(axis 0)",
        ),
        (
            int((mu.var(axis=0, ddof=1) > threshold).sum()),
            f"this is the variance with ddof=1 (divided by n - 1 = {n - 1}): A_j is the variance "
            f"over the data, divided by n = {n} (np.var's default, ddof=0)",
        ),
        (
            int((mu.var(axis=0) >= threshold).sum()),
            f"a latent whose variance is exactly {threshold:g} is not active: compare with >, "
            "not >=",
        ),
    ]


def check_active_units(fn: Callable, mu: Array, threshold: float | None = None) -> int:
    """The number of latents whose posterior mean varies over the data more than threshold."""
    args = () if threshold is None else (threshold,)
    t = 0.01 if threshold is None else threshold
    got = call(fn, mu, *args)
    if isinstance(got, np.ndarray):
        raise ExerciseError(
            f"active_units returned an array of shape {got.shape}; return the number of active "
            "units, an int (count the latents whose variance is above the threshold)"
        )
    check_type(f"active_units(mu{', threshold' if args else ''})", got, int)
    expected = active_units(mu, threshold=t)
    if got != expected:
        slips = active_units_slips(mu, t)
        if args:
            slips.insert(
                0,
                (
                    active_units(mu),
                    f"active_units ignores its threshold argument: "
                    f"with threshold={t:g} it counts {expected}, "
                    "with the default 0.01 it counts what you got",
                ),
            )
        found = [m for count, m in slips if got == count and count != expected]
        found = list(dict.fromkeys(found))
        if found:
            message = found[0] if len(found) == 1 else "either " + "; or ".join(found)
            raise ExerciseError(f"active_units(mu) = {got}, expected {expected}: {message}")
        raise ExerciseError(
            f"active_units(mu) = {got}, expected {expected}: count the latents whose variance "
            "over the rows (axis 0, one number per latent) is above the threshold"
        )
    return got


# ----------------------------------------------------------------------------- 4. MIG


def check_mutual_information_gap(
    fn: Callable, mu: Array, factors: Array, bins: int | None = None
) -> float:
    """MIG of the code ``mu`` for the integer ``factors``, with the slips named."""
    kwargs = {} if bins is None else {"bins": bins}
    b = 20 if bins is None else bins
    expected = mutual_information_gap(mu, factors, bins=b)
    mi = mutual_information_matrix(mu, factors, bins=b)
    entropy = np.array([discrete_mutual_information(v, v) for v in factors.T])
    ordered = np.sort(mi, axis=0)[::-1]
    gaps = (ordered[0] - ordered[1]) / entropy
    codes = discretize(mu, b)
    latent_entropy = np.array(
        [discrete_mutual_information(codes[:, j], codes[:, j]) for j in range(codes.shape[1])]
    )
    top_latent = np.argmax(mi, axis=0)
    got = call(fn, mu, factors, **kwargs)
    if isinstance(got, list | tuple | np.ndarray) and np.size(got) == factors.shape[1] > 1:
        raise ExerciseError(
            f"mutual_information_gap returned {np.size(got)} numbers, one gap per factor: MIG is "
            "their mean, one float"
        )
    check_type("mutual_information_gap(mu, factors)", got, float)
    if got < 0:
        raise ExerciseError(
            f"MIG = {got:.3f} is negative: take the largest minus the second largest mutual "
            "information (sort in decreasing order)"
        )
    hints = [
        (
            np.mean(ordered[0] - ordered[1]),
            "the gaps are not divided by each factor's entropy H(v_k) = I(v_k; v_k)",
        ),
        (
            np.mean((ordered[0] - ordered[-1]) / entropy),
            "you took the largest minus the smallest mutual information; MIG uses the two largest",
        ),
        (
            np.mean(ordered[0] / entropy),
            "this is the largest mutual information alone; subtract the second largest",
        ),
        (float(np.max(gaps)), "this is the largest gap of all the factors; MIG is their mean"),
        (
            np.mean((ordered[0] - ordered[1]) / latent_entropy[top_latent]),
            "the gaps are divided by the entropy of the latent, H(z_(1)); MIG divides by the "
            "factor's entropy H(v_k)",
        ),
    ]
    if bins is not None:
        hints.append(
            (
                mutual_information_gap(mu, factors),
                "the bins argument is ignored: pass it on to discretize(mu, bins)",
            )
        )
    check_close(
        "MIG",
        got,
        expected,
        rtol=1e-8,
        atol=1e-10,
        sizes={"factors": factors.shape[1]},
        hints=hints,
    )
    return got
