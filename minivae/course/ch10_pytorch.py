"""The graded checks of problem set 10 (from minivae to PyTorch), with the reference code they
compare with and the usual slips they recognise::

    from minivae.course import ch10_pytorch as ch10
    ch10.check_negative_elbo(negative_elbo, model, x, eps)

The references have the exercises' names and signatures (``negative_elbo``, ``train_step``,
``vector_quantize``, ``average_gradients``); what they must equal is minivae's own hand-written
numbers: ``VAE.loss_and_grads``, ``minivae.Adam``, ``VQVAE.loss_and_grads``. The check of
``train_step`` hands the learner's code the course's ``negative_elbo`` (``feedback.call(...,
using=...)``), so a wrong exercise 1 never costs exercise 2 its points; the check of
``average_gradients`` runs it in real processes joined by ``torch.distributed``
(:func:`minivae.course.torch_bridge.run_world`), each with the course's loss of its shard.

Imports PyTorch (part of the course's requirements).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..models import VAE
from ..optim import Adam
from . import torch_bridge as tb
from .feedback import ExerciseError, call, check_close, check_shape, unpack

Array = np.ndarray
Grads = dict[str, np.ndarray]


# ----------------------------------------------------------------------------- helpers


def _scalar_tensor(name: str, value: Any, what: str) -> torch.Tensor:
    """``value`` must be a 0-d tensor (one number that keeps its graph)."""
    if value is None:
        raise ExerciseError(f"{name}: got None — does {what} end with `return ...`?")
    if isinstance(value, numbers.Number) or (isinstance(value, np.ndarray) and value.ndim == 0):
        raise ExerciseError(
            f"{name} is a plain number ({float(value):.6g}), not a tensor: return the tensor "
            "itself. .item(), float() or NumPy give a number without the graph that "
            "loss.backward() needs"
        )
    if isinstance(value, np.ndarray):
        raise ExerciseError(
            f"{name} is a NumPy array of shape {value.shape}: compute it with torch "
            "operations on the tensors you are given, so that autograd records them"
        )
    if not isinstance(value, torch.Tensor):
        raise ExerciseError(f"{name}: expected a 0-d torch tensor, got a {type(value).__name__}")
    if value.numel() != 1:
        check_shape(name, tb.to_numpy(value), ())
    return value.reshape(())


def _number(value: torch.Tensor) -> float:
    return float(value.detach().cpu())


def _grads_close(got: Grads, expected: Grads, rtol: float = 1e-9, atol: float = 1e-12) -> bool:
    return all(
        got[name].shape == value.shape
        and np.allclose(got[name], value, rtol=rtol, atol=atol)
        for name, value in expected.items()
    )


def _grads_differ(a: Grads, b: Grads) -> bool:
    return not _grads_close(a, b, rtol=1e-9, atol=1e-12)


def _check_grads(
    got: Grads,
    expected: Grads,
    variants: Sequence[tuple[Grads, str]] = (),
    extra: str = "",
) -> None:
    """Every gradient equal to ``expected``; else the message of the variant ``got`` matches,
    else the first gradient that differs, with its numbers."""
    if _grads_close(got, expected):
        return
    matching = list(dict.fromkeys(
        m for v, m in variants if _grads_differ(v, expected) and _grads_close(got, v)))
    if matching:
        raise ExerciseError(matching[0] if len(matching) == 1 else "either " + "; or ".join(
            matching))
    zero = [name for name, value in got.items() if not np.any(value) and np.any(expected[name])]
    if zero:
        raise ExerciseError(
            f"no gradient reached {', '.join(zero)} (their .grad is zero or None){extra}"
        )
    for name in expected:
        try:
            check_close(f'the gradient of {name}', got[name], expected[name], rtol=1e-9,
                        atol=1e-12)
        except ExerciseError as err:
            raise ExerciseError(f"{err}{extra}") from None


# ----------------------------------------------------------------------------- 1. the ELBO


def negative_elbo(
    encoder: torch.nn.Module,
    decoder: torch.nn.Module,
    x: torch.Tensor,
    eps: torch.Tensor,
    *,
    detach: frozenset[str] = frozenset(),
    std_power: float = 0.5,
    swap: bool = False,
    sigmoid_bce: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, recon, kl) of the Bernoulli VAE, as 0-d tensors with their graph.

        h = encoder(x); mu, logvar = h[:, :J], h[:, J:];  z = mu + exp(0.5 logvar) * eps
        recon = (1/B) sum_{b,d} BCE-with-logits(decoder(z), x)
        kl = -(1/(2B)) sum_{b,j} (1 + logvar - mu^2 - exp(logvar)),   loss = recon + kl

    The keywords model the usual slips: ``detach`` names what is cut from the graph ("mu in z",
    "logvar in z", "z", "kl"), ``std_power`` 1 takes exp(logvar) for the std, ``swap`` reads
    logvar where mu is, ``sigmoid_bce`` takes the sigmoid and then binary_cross_entropy.
    """
    batch, z_dim = eps.shape
    h = encoder(x)
    mu, logvar = h[:, :z_dim], h[:, z_dim:]
    if swap:
        mu, logvar = logvar, mu
    mu_z = mu.detach() if "mu in z" in detach else mu
    logvar_z = logvar.detach() if "logvar in z" in detach else logvar
    z = mu_z + torch.exp(std_power * logvar_z) * eps
    if "z" in detach:
        z = z.detach()
    logits = decoder(z)
    if sigmoid_bce:
        recon = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") / batch
    else:
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
    mu_kl, logvar_kl = (mu.detach(), logvar.detach()) if "kl" in detach else (mu, logvar)
    kl = -0.5 * torch.sum(1 + logvar_kl - mu_kl**2 - torch.exp(logvar_kl)) / batch
    return recon + kl, recon, kl


def _twins(model: VAE) -> tuple[torch.nn.Sequential, torch.nn.Sequential]:
    return (tb.mlp_twin(model.encoder, model.params), tb.mlp_twin(model.decoder, model.params))


def _reference_grads(model: VAE, x: Array, eps: Array, **variant: Any) -> Grads:
    encoder, decoder = _twins(model)
    loss = negative_elbo(encoder, decoder, torch.from_numpy(x), torch.from_numpy(eps),
                         **variant)[0]
    loss.backward()
    return {**tb.mlp_grads(encoder, "encoder."), **tb.mlp_grads(decoder, "decoder.")}


def _reference_terms(model: VAE, x: Array, eps: Array, **variant: Any) -> tuple[float, ...]:
    encoder, decoder = _twins(model)
    with torch.no_grad():
        terms = negative_elbo(encoder, decoder, torch.from_numpy(x), torch.from_numpy(eps),
                              **variant)
    return tuple(_number(t) for t in terms)


def _call_elbo(fn: Callable, model: VAE, x: Array, eps: Array) -> tuple:
    encoder, decoder = _twins(model)
    tx, teps = torch.from_numpy(x.copy()), torch.from_numpy(eps.copy())
    advice = (
        f"x is {tuple(x.shape)}, eps is {tuple(eps.shape)}; encoder(x) is "
        f"({x.shape[0]}, {2 * eps.shape[1]}), its first {eps.shape[1]} columns mu, the last "
        f"{eps.shape[1]} logvar; decoder(z) gives the logits, ({x.shape[0]}, {x.shape[1]})"
    )
    result = call(fn, encoder, decoder, tx, teps, advice=advice)
    for arg, given, kept in (("x", tx, x), ("eps", teps, eps)):
        if not np.array_equal(tb.to_numpy(given), kept):
            raise ExerciseError(
                f"negative_elbo changed its argument `{arg}` in place (an in-place operation "
                f"such as {arg}.mul_(), {arg} += ... or {arg}[...] = ...): compute new tensors"
            )
    terms = unpack(result, ["loss", "recon", "kl"], "negative_elbo(encoder, decoder, x, eps)")
    terms = tuple(_scalar_tensor(n, t, "negative_elbo")
                  for n, t in zip(("loss", "recon", "kl"), terms, strict=True))
    return (encoder, decoder, *terms)


def check_negative_elbo(fn: Callable, model: VAE, x: Array, eps: Array) -> dict[str, float]:
    """(loss, recon, kl) as tensors equal to ``model.loss_and_grads(x, eps)``'s terms, and the
    gradient of loss.backward() equal to minivae's hand-written gradient of every weight.

    model: a float64 Bernoulli ``minivae.VAE``; x (B, D) in {0, 1}; eps (B, J).
    """
    batch, z_dim = eps.shape
    pixels = x.shape[1]
    terms_ref, grads_ref = model.loss_and_grads(x, eps)
    grads_ref = {name: np.array(value) for name, value in grads_ref.items()}
    recon_ref, kl_ref, loss_ref = terms_ref["recon"], terms_ref["kl"], terms_ref["loss"]

    encoder, decoder, loss, recon, kl = _call_elbo(fn, model, x, eps)
    second = _call_elbo(fn, model, x, eps)[2]
    if not np.isclose(_number(loss), _number(second), rtol=1e-12, atol=0):
        raise ExerciseError(
            f"two calls with the same x and eps gave different losses ({_number(loss):.6g} and "
            f"{_number(second):.6g}): is noise drawn inside (torch.randn_like(mu))? Use the eps "
            "you are given, so the step can be reproduced (and compared with minivae)"
        )
    swapped = _reference_terms(model, x, eps, swap=True)
    as_variance = _reference_terms(model, x, eps, std_power=1.0)
    check_close(
        "kl",
        _number(kl),
        kl_ref,
        rtol=1e-10,
        sizes={"batch": batch, "latent": z_dim},
        hints=[
            (-kl_ref, "your KL has the wrong sign: -1/2 sum(1 + logvar - mu^2 - exp(logvar))"),
            (
                swapped[2],
                "mu and logvar are swapped: the first J columns of encoder(x) are mu, the last "
                "J logvar",
            ),
            (
                kl_ref / z_dim,
                f"your KL is {z_dim} times too small: torch.mean over the (batch, latent) "
                "entries divides by B * J; the course SUMS over the latent dimensions and "
                "averages over the batch: torch.sum(...) / B",
            ),
        ],
    )
    check_close(
        "recon",
        _number(recon),
        recon_ref,
        rtol=1e-10,
        sizes={"batch": batch, "pixels": pixels},
        hints=[
            (
                recon_ref / pixels,
                f"recon is 1/{pixels} of the course's: F.binary_cross_entropy_with_logits "
                "averages over every entry by default (reduction='mean'), the pixels too; the "
                "course sums over the pixels and averages over the batch: reduction='sum', "
                "then divide by the batch size",
            ),
            (
                recon_ref / (pixels * batch),
                f"recon is 1/({pixels} * {batch}) of the course's: reduction='mean' already "
                "averages over the batch AND the pixels, and you divided by the batch again. "
                "Use reduction='sum' and divide by the batch size once",
            ),
            (
                recon_ref * batch,
                f"recon is {batch} times too large: reduction='sum' sums over the batch too — "
                "divide by the batch size, x.shape[0]",
            ),
            (
                as_variance[1],
                "this looks like z = mu + exp(logvar) * eps: exp(logvar) is the variance, the "
                "standard deviation is exp(0.5 * logvar)",
            ),
            (
                swapped[1],
                "mu and logvar are swapped: the first J columns of encoder(x) are mu, the last "
                "J logvar",
            ),
        ],
    )
    check_close(
        "loss",
        _number(loss),
        loss_ref,
        rtol=1e-10,
        hints=[
            (recon_ref - kl_ref, "loss = recon - kl: the negative ELBO is recon + kl"),
            (recon_ref, "the loss is recon alone: the negative ELBO is recon + kl"),
        ],
    )
    if not loss.requires_grad:
        raise ExerciseError(
            "loss has no graph (loss.requires_grad is False): was it computed under "
            "torch.no_grad(), detached, or rebuilt from a number with torch.tensor(...)? "
            "loss.backward() needs the operations that made it"
        )
    try:
        loss.backward()
    except RuntimeError as err:
        raise ExerciseError(f"loss.backward() raised RuntimeError: {err}") from None
    got = {**tb.mlp_grads(encoder, "encoder."), **tb.mlp_grads(decoder, "decoder.")}
    _check_grads(
        got,
        grads_ref,
        [
            (
                _reference_grads(model, x, eps, detach=frozenset({"logvar in z"})),
                "the loss is right but no gradient flows from the decoder to logvar: is logvar "
                "(or the std) detached in z = mu + exp(0.5 * logvar) * eps? The "
                "reparameterization is there so that it flows",
            ),
            (
                _reference_grads(model, x, eps, detach=frozenset({"mu in z"})),
                "the loss is right but no gradient flows from the decoder to mu: is mu detached "
                "in z = mu + std * eps?",
            ),
            (
                _reference_grads(model, x, eps, detach=frozenset({"z"})),
                "the loss is right but no gradient reaches the encoder through z (z.detach()?): "
                "only the KL trains the encoder then",
            ),
            (
                _reference_grads(model, x, eps, detach=frozenset({"kl"})),
                "the loss is right but the KL sends no gradient to the encoder: are mu and "
                "logvar detached in the KL?",
            ),
        ],
        extra=" — compare with minivae: the gradient of loss.backward() must be VAE's "
        "hand-written one",
    )
    # large logits: binary_cross_entropy_with_logits is exact here, sigmoid-then-log is not
    sharp = VAE(model.x_dim, model.z_dim, model.hidden, activation=model.activation,
                dtype="float64", seed=0)
    for name, value in model.params.items():
        sharp.params[name] = np.array(value)
    last = model.decoder.n_layers - 1
    sharp.params[f"decoder.W{last}"] = 40.0 * np.array(model.params[f"decoder.W{last}"])
    sharp.params[f"decoder.b{last}"] = 40.0 * np.array(model.params[f"decoder.b{last}"])
    recon_sharp_ref = sharp.loss_and_grads(x, eps)[0]["recon"]
    recon_sharp = _number(_call_elbo(fn, sharp, x, eps)[3])
    sigmoid_sharp = _reference_terms(sharp, x, eps, sigmoid_bce=True)[1]
    check_close(
        "recon for large logits (the decoder's last layer times 40)",
        recon_sharp,
        recon_sharp_ref,
        rtol=1e-9,
        common_hints=False,
        hints=[
            (
                sigmoid_sharp,
                "torch.sigmoid then F.binary_cross_entropy loses the large logits (the "
                "sigmoid rounds to 1.0 and PyTorch clamps log(0) to -100): use "
                "F.binary_cross_entropy_with_logits(logits, x, ...), the stable form",
            ),
        ],
    )
    return {"loss": _number(loss), "recon": _number(recon), "kl": _number(kl)}


# ----------------------------------------------------------------------------- 2. one step


def train_step(
    model: tb.TorchVAE, optimizer: torch.optim.Optimizer, x: torch.Tensor, eps: torch.Tensor
) -> float:
    """One Adam step on the negative ELBO; returns the loss before the step (a float)."""
    optimizer.zero_grad()
    loss = negative_elbo(model.encoder, model.decoder, x, eps)[0]
    loss.backward()
    optimizer.step()
    return loss.item()


def _replay(model: VAE, x: Array, eps: Array, lr: float, slip: str) -> list[dict[str, Array]]:
    """The weights after each step of a PyTorch loop with the slip ``slip`` (or none: '')."""
    twin = tb.TorchVAE.from_minivae(model)
    optimizer = torch.optim.Adam(twin.parameters(), lr=lr)
    tx = torch.from_numpy(x)
    weights = []
    for t in range(len(eps)):
        teps = torch.from_numpy(eps[t])

        def loss_now() -> torch.Tensor:
            return negative_elbo(twin.encoder, twin.decoder, tx, teps)[0]  # noqa: B023

        if slip == "no zero_grad":
            loss_now().backward()
            optimizer.step()
        elif slip == "two steps":
            optimizer.zero_grad()
            loss_now().backward()
            optimizer.step()
            optimizer.step()
        elif slip == "no step":
            optimizer.zero_grad()
            loss_now().backward()
        else:
            optimizer.zero_grad()
            loss_now().backward()
            optimizer.step()
        weights.append(tb.minivae_params(twin))
    return weights


_NOT_MOVED = (
    "the weights did not move: optimizer.step() reads the .grad that loss.backward() wrote, so it "
    "comes after backward() and before the next zero_grad() — is the step missing, before "
    "backward(), or after a zero_grad() that erased the gradient? Order: zero_grad, backward, step"
)
_STEP_SLIPS = {
    "no zero_grad": (
        "the gradients of the earlier steps were added to this one: PyTorch ACCUMULATES into "
        ".grad at every backward(), so call optimizer.zero_grad() before loss.backward() in "
        "each step (minivae's loss_and_grads overwrites its gradients instead)"
    ),
    "no step": _NOT_MOVED,  # also: zero_grad between backward and step, step before backward
    "two steps": "the weights moved by two Adam steps: call optimizer.step() once per step",
}


_BACKWARD_ADVICE = (
    "loss.backward() needs the loss's graph: no torch.no_grad() around the forward pass, no "
    ".item() or .detach() before backward, and one backward() per forward pass"
)


def check_train_step(
    fn: Callable, model: VAE, x: Array, eps: Array, lr: float = 0.01
) -> list[float]:
    """``len(eps)`` calls of train_step(twin, torch Adam, x, eps[t]) give minivae's weights —
    VAE.loss_and_grads and minivae.Adam with the same lr — after every step (float64), and
    return the loss each step was taken on.

    The learner's code runs with the course's negative_elbo. Returns the losses it returned.
    """
    reference = VAE(model.x_dim, model.z_dim, model.hidden, activation=model.activation,
                    dtype="float64", seed=0)
    for name, value in model.params.items():
        reference.params[name] = np.array(value)
    optimizer_ref = Adam(reference.params, lr=lr)
    weights_ref, losses_ref, losses_after = [], [], []
    for t in range(len(eps)):
        terms, grads = reference.loss_and_grads(x, eps[t])
        optimizer_ref.step(grads)
        losses_ref.append(terms["loss"])
        losses_after.append(reference.loss(x, eps[t])["loss"])
        weights_ref.append({name: np.array(value) for name, value in reference.params.items()})

    twin = tb.TorchVAE.from_minivae(model)
    optimizer = torch.optim.Adam(twin.parameters(), lr=lr)
    tx = torch.from_numpy(x.copy())
    weights, returned = [], []
    for t in range(len(eps)):
        try:
            returned.append(call(fn, twin, optimizer, tx, torch.from_numpy(eps[t].copy()),
                                 using={"negative_elbo": negative_elbo}))
        except ExerciseError as err:
            # (feedback.call's explain= would also catch NotImplementedError, a RuntimeError)
            if "raised RuntimeError" in str(err):
                raise ExerciseError(f"{err}. {_BACKWARD_ADVICE}") from None
            raise
        weights.append(tb.minivae_params(twin))

    def same(a: list[dict], b: list[dict]) -> bool:
        return all(_grads_close(u, v, rtol=1e-9, atol=1e-12) for u, v in zip(a, b, strict=True))

    if not same(weights, weights_ref):
        matching = []
        for slip, message in _STEP_SLIPS.items():
            replayed = _replay(model, x, eps, lr, slip)
            if not same(replayed, weights_ref) and same(weights, replayed):
                matching.append(message)
        matching = list(dict.fromkeys(matching))
        if matching:
            raise ExerciseError(f"over {len(eps)} steps: " + (
                matching[0] if len(matching) == 1 else "either " + "; or ".join(matching)))
        t = next(t for t in range(len(eps)) if not same(weights[t:t + 1], weights_ref[t:t + 1]))
        for name in weights_ref[t]:
            try:
                check_close(f"the weights {name} after step {t + 1}", weights[t][name],
                            weights_ref[t][name], rtol=1e-9, atol=1e-12, common_hints=False)
            except ExerciseError as err:
                raise ExerciseError(
                    f"{err} — one step is: optimizer.zero_grad(), the loss, loss.backward(), "
                    "optimizer.step(), with the optimizer you are given"
                ) from None
    for t, value in enumerate(returned):
        if isinstance(value, torch.Tensor):
            raise ExerciseError(
                "train_step returned a tensor: return loss.item(), a Python float (a tensor "
                "kept in a list of losses keeps its whole graph alive)"
            )
        if value is None:
            raise ExerciseError("train_step returned None: return the loss, loss.item()")
        if not isinstance(value, numbers.Real):
            raise ExerciseError(f"train_step should return a float, it returned {value!r}")
        check_close(
            f"the loss train_step returned at step {t + 1}",
            float(value),
            losses_ref[t],
            rtol=1e-10,
            common_hints=False,
            hints=[
                (
                    losses_after[t],
                    "this is the loss AFTER the step (computed again with the new weights): "
                    "return the loss the step was taken on, loss.item() of the loss you "
                    "called backward() on",
                )
            ],
        )
    return [float(v) for v in returned]


# ----------------------------------------------------------------------------- 3. straight-through


def vector_quantize(
    z_e: torch.Tensor, codebook: torch.Tensor, *, st: str = "", terms: str = ""
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z_st, codebook term, commitment term) for z_e (B, P, D) and codebook (K, D).

        k = argmin_j ||z_e - e_j||^2 per position,  z_q = codebook[k]
        z_st = z_e + (z_q - z_e).detach()                (the value of z_q, z_e's gradient)
        codebook = (1/B) sum (z_e.detach() - z_q)^2,   commitment = (1/B) sum (z_e - z_q.detach())^2

    ``st`` ('wrong side', 'no detach', 'plain', 'detached') and ``terms`` ('swapped', 'none',
    'both') model the usual slips in the straight-through line and the detaches of the terms.
    """
    batch, positions, code_dim = z_e.shape
    flat = z_e.reshape(batch * positions, code_dim)
    z_q = codebook[tb.nearest_code(flat, codebook)]
    z_st = {
        "": lambda: flat + (z_q - flat).detach(),
        "wrong side": lambda: z_q + (flat - z_q).detach(),
        "no detach": lambda: flat + (z_q - flat),
        "plain": lambda: z_q,
        "detached": lambda: z_q.detach(),
    }[st]()
    sg_e, sg_q = flat.detach(), z_q.detach()
    sides = {  # (the codebook term's two sides, then the commitment term's)
        "": (sg_e, z_q, flat, sg_q),
        "swapped": (flat, sg_q, sg_e, z_q),
        "none": (flat, z_q, flat, z_q),
        "both": (sg_e, sg_q, sg_e, sg_q),
    }
    code_e, code_q, commit_e, commit_q = sides[terms]
    codebook_term = ((code_e - code_q) ** 2).sum() / batch
    commitment = ((commit_e - commit_q) ** 2).sum() / batch
    return z_st.reshape(batch, positions, code_dim), codebook_term, commitment


def _vq_inputs(z_e: Array, codebook: Array) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(z_e, requires_grad=True), torch.nn.Parameter(torch.tensor(codebook)))


def _vq_grads(
    fn: Callable, z_e: Array, codebook: Array, dz: Array, beta: float, **variant: Any
) -> tuple[Any, ...]:
    """(z_st, codebook term, commitment, z_e.grad, codebook.grad) of
    L = sum(dz * z_st) + codebook + beta * commitment."""
    tz, tcode = _vq_inputs(z_e, codebook)
    z_st, code_term, commit = call(fn, tz, tcode, **variant)
    ((torch.from_numpy(dz) * z_st).sum() + code_term + beta * commit).backward()
    return z_st, code_term, commit, tb.grad_or_zeros(tz), tb.grad_or_zeros(tcode)


_NO_STRAIGHT_THROUGH = (
    "the decoder's gradient goes to the codebook and none reaches the encoder: z_q alone, and "
    "z_e + (z_q - z_e) without a detach (the +z_e and -z_e cancel for autograd too), have no "
    "path back to z_e (argmin has no gradient). Copy the gradient straight through: "
    "z_e + (z_q - z_e).detach()"
)
_ST = {
    "no detach": _NO_STRAIGHT_THROUGH,
    "plain": _NO_STRAIGHT_THROUGH,
    "detached": (
        "the decoder's gradient reaches neither the encoder nor the codebook: z_q.detach() cuts "
        "both. The straight-through line is z_e + (z_q - z_e).detach()"
    ),
}
_TERMS = {
    "swapped": (
        "the detaches of the two terms are swapped: the codebook term must move the codes only, "
        "(z_e.detach() - z_q)**2, and the commitment term the encoder only, "
        "(z_e - z_q.detach())**2 — now the encoder is pulled with weight 1 and the codes with "
        "beta"
    ),
    "none": (
        "both terms send gradient to both the encoder and the codebook: detach z_e in the "
        "codebook term, (z_e.detach() - z_q)**2, and z_q in the commitment term, "
        "(z_e - z_q.detach())**2"
    ),
    "both": (
        "the two terms send no gradient at all (both sides detached): the codebook term "
        "detaches z_e only, the commitment term z_q only"
    ),
}


def check_vector_quantize(
    fn: Callable, z_e: Array, codebook: Array, dz: Array, beta: float = 0.25
) -> torch.Tensor:
    """z_st has the nearest codes' values; both terms are (1/B) sum of squares; the gradient of
    sum(dz * z_st) + codebook + beta * commitment is dz + 2 beta (z_e - z_q) / B for z_e and
    (2/B) sum_{assigned} (z_q - z_e) for each code (no decoder gradient reaches the codebook).

    z_e: (B, P, D), codebook: (K, D), dz: (B, P, D) float64 arrays.
    """
    batch, positions, code_dim = z_e.shape
    ref_st, ref_code, ref_commit, ref_dz_e, ref_dcode = _vq_grads(
        vector_quantize, z_e, codebook, dz, beta)
    z_q_ref = tb.to_numpy(ref_st)
    tz, tcode = _vq_inputs(z_e, codebook)
    result = call(fn, tz, tcode, advice=(
        f"z_e is (B, P, D) = {z_e.shape}, codebook is (K, D) = {codebook.shape}: reshape z_e "
        f"to ({batch * positions}, {code_dim}) to compare every position with every code"))
    z_st, code_term, commit = unpack(result, ["z_st", "codebook_term", "commitment_term"],
                                     "vector_quantize(z_e, codebook)")
    if not isinstance(z_st, torch.Tensor):
        raise ExerciseError(f"z_st: expected a tensor of shape {z_e.shape}, got "
                            f"{type(z_st).__name__}")
    if not np.array_equal(tb.to_numpy(tz), z_e):
        raise ExerciseError("vector_quantize changed z_e in place: compute new tensors")
    check_shape("z_st", tb.to_numpy(z_st), z_e.shape)
    flat = z_e.reshape(-1, code_dim)
    farthest = codebook[np.argmax(((flat[:, None] - codebook[None]) ** 2).sum(2), axis=1)]
    by_dot = codebook[np.argmax(flat @ codebook.T, axis=1)]
    check_close(
        "z_st (its value)",
        tb.to_numpy(z_st),
        z_q_ref,
        rtol=1e-12,
        atol=1e-12,
        common_hints=False,
        hints=[
            (
                z_e,
                "z_st has the value of z_e, not of the codes: z_q + (z_e - z_q).detach() is z_e "
                "(the detach is on the wrong side). The decoder must see z_q: "
                "z_e + (z_q - z_e).detach()",
            ),
            (farthest.reshape(z_e.shape), "these are the FARTHEST codes: argmin, not argmax"),
            (
                by_dot.reshape(z_e.shape),
                "these codes have the largest dot product z_e . e_j, which is not the nearest "
                "unless every code has the same length: ||z_e - e_j||^2 = ||z_e||^2 + ||e_j||^2 "
                "- 2 z_e . e_j",
            ),
        ],
    )
    code_term = _scalar_tensor("codebook_term", code_term, "vector_quantize")
    commit = _scalar_tensor("commitment_term", commit, "vector_quantize")
    squared = _number(ref_code)
    term_hints = [
        (
            squared / (positions * code_dim),
            f"this is 1/{positions * code_dim} of the course's number: F.mse_loss (and "
            "torch.mean) average over every entry (reduction='mean'); the course sums over the "
            "positions and code dimensions and averages over the batch: "
            "F.mse_loss(..., reduction='sum') / B",
        ),
        (
            squared / (batch * positions * code_dim),
            "this is the mean over every entry divided by B once more: sum the squares, then "
            "divide by the batch size once",
        ),
        (squared * batch, f"{batch} times too large: divide the sum by the batch size B"),
    ]
    check_close("codebook_term", _number(code_term), squared, rtol=1e-10,
                sizes={"batch": batch}, hints=term_hints)
    check_close("commitment_term", _number(commit), _number(ref_commit), rtol=1e-10,
                sizes={"batch": batch}, hints=term_hints)
    # the gradients, from the learner's own function
    got = _vq_grads(fn, z_e, codebook, dz, beta)
    got_grads = {"z_e": got[3], "codebook": got[4]}
    expected = {"z_e": ref_dz_e, "codebook": ref_dcode}
    variants: list[tuple[Grads, str]] = []
    for st, message in _ST.items():
        v = _vq_grads(vector_quantize, z_e, codebook, dz, beta, st=st)
        variants.append(({"z_e": v[3], "codebook": v[4]}, message))
    for terms, message in _TERMS.items():
        v = _vq_grads(vector_quantize, z_e, codebook, dz, beta, terms=terms)
        variants.append(({"z_e": v[3], "codebook": v[4]}, message))
    _check_grads(got_grads, expected, variants,
                 extra=" — with L = sum(dz * z_st) + codebook + beta * commitment, z_e's "
                 "gradient is dz + 2 beta (z_e - z_q) / B and a code's (2 / B) times the sum of "
                 "(z_q - z_e) over the positions assigned to it")
    return z_st


def check_vqvae_twin(fn: Callable, model: Any, x: Array) -> dict[str, float]:
    """A whole VQ-VAE in PyTorch with the learner's vector_quantize: loss and every gradient
    equal to minivae's ``VQVAE.loss_and_grads`` (float64 model)."""
    terms_ref, grads_ref = model.loss_and_grads(x)
    grads_ref = {name: np.array(value) for name, value in grads_ref.items()}
    twin = tb.TorchVQVAE(model)
    terms = twin(torch.from_numpy(x), quantize=fn)
    for key in ("recon", "codebook", "commitment", "loss"):
        check_close(f"the VQ-VAE's {key}", _number(terms[key]), terms_ref[key], rtol=1e-10)
    terms["loss"].backward()
    _check_grads(tb.minivae_grads(twin), grads_ref,
                 extra=" — the whole VQ-VAE with your vector_quantize against minivae.VQVAE")
    return {key: _number(value) for key, value in terms.items()}


# ----------------------------------------------------------------------------- 4. data parallel


def average_gradients(model: torch.nn.Module) -> None:
    """Every parameter's .grad becomes the mean of the processes' .grad (all_reduce, then / N)."""
    world_size = dist.get_world_size()
    for p in model.parameters():
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad /= world_size


_COLLECTIVE = (
    "Every process must call dist.all_reduce on the same tensors in the same order: a "
    "collective waits for all of them (here another process stopped, or called it differently)"
)


def _average_in_process(
    rank: int, world_size: int, fn: Callable, model: VAE, x: Array, eps: Array
) -> Grads:
    """One process: the course's loss of this process's shard, backward, then fn(twin)."""
    rows = slice(rank * len(x) // world_size, (rank + 1) * len(x) // world_size)
    twin = tb.TorchVAE.from_minivae(model)
    twin(torch.from_numpy(x[rows]), torch.from_numpy(eps[rows]))["loss"].backward()
    try:
        call(fn, twin)
    except ExerciseError as err:
        text = str(err)
        # gloo reports a peer that left as "Connection closed by peer" or, depending on which
        # side notices first and how, as "Connection reset by peer" (a read) or "Broken pipe"
        # (a write)
        closed = any(words in text for words in
                     ("Connection closed", "Connection reset", "Broken pipe"))
        if closed or "timed out" in text.lower():
            what = "a peer process closed the connection" if closed \
                else "a collective timed out"
            raise ExerciseError(
                f"average_gradients raised RuntimeError ({what}, while this process waited in "
                f"a collective). {_COLLECTIVE}"
            ) from None
        raise
    return tb.minivae_grads(twin)


def check_average_gradients(
    fn: Callable, model: VAE, x: Array, eps: Array, world_size: int = 2, timeout: float = 30
) -> Grads:
    """In ``world_size`` processes joined by torch.distributed (gloo), each with the gradient
    of its shard's loss (its rows' mean), fn(model) must leave every process holding the
    gradient of the whole batch's loss — minivae's ``model.loss_and_grads(x, eps)``."""
    n = len(x)
    if n % world_size:
        raise ValueError(f"the batch of {n} does not split into {world_size} equal shards")
    shard = n // world_size
    whole = {k: np.array(v) for k, v in model.loss_and_grads(x, eps)[1].items()}
    own = [
        {k: np.array(v) for k, v in model.loss_and_grads(
            x[r * shard:(r + 1) * shard], eps[r * shard:(r + 1) * shard])[1].items()}
        for r in range(world_size)
    ]
    results = tb.run_world(_average_in_process, world_size, args=(fn, model, x, eps),
                           timeout=timeout)

    def scaled(grads: Grads, factor: float) -> Grads:
        return {k: v * factor for k, v in grads.items()}

    for rank, got in enumerate(results):
        where = f"in process {rank} of {world_size}"
        if not isinstance(got, dict) or set(got) != set(whole):
            raise ExerciseError(f"{where}: the model's parameters changed their names or number")
        if _grads_close(got, whole):
            continue
        variants = [
            (
                scaled(whole, world_size),
                f"{where}: every gradient is {world_size} times the whole batch's: all_reduce "
                f"SUMS the {world_size} processes' gradients; divide by their number, "
                "dist.get_world_size(), to average them (each process's loss is already a mean "
                "over its own rows)",
            ),
            (
                own[rank],
                f"{where}: the process still holds the gradient of its own shard only: reduce "
                "p.grad itself, in place (dist.all_reduce(p.grad, ...)) — not p (the weights), "
                "a copy such as p.grad.clone(), or a tensor you then drop",
            ),
            (
                scaled(own[rank], 1 / world_size),
                f"{where}: the gradient was divided by {world_size} but never summed over the "
                "processes: reduce p.grad itself, in place, with dist.all_reduce(p.grad, "
                "op=dist.ReduceOp.SUM) — not p (the weights), a copy such as p.grad.clone(), or "
                "a tensor you then drop — and then divide",
            ),
            (
                scaled(whole, 1 / world_size),
                f"{where}: every gradient is 1/{world_size} of the whole batch's: divided by the "
                "number of processes twice (ReduceOp.AVG already averages)?",
            ),
            (
                scaled(whole, world_size / shard),
                f"{where}: the summed gradient was divided by the shard's batch size "
                f"({shard}): each process's loss is already a mean over its rows, so divide by "
                "the number of processes, dist.get_world_size()",
            ),
        ]
        if world_size != 2:
            variants.append((
                scaled(whole, world_size / 2),
                f"{where}: the summed gradient was divided by 2, but there are {world_size} "
                "processes here: divide by dist.get_world_size(), not a number written in",
            ))
        matching = [m for v, m in variants if _grads_close(got, v)]
        if matching:
            raise ExerciseError(matching[0])
        averaged = [k for k in whole if np.allclose(got[k], whole[k], rtol=1e-9, atol=1e-12)]
        if averaged:
            missed = [k for k in whole if k not in averaged]
            raise ExerciseError(
                f"{where}: only some gradients were averaged ({', '.join(averaged[:3])}"
                f"{' ...' if len(averaged) > 3 else ''}), not {', '.join(missed[:3])}"
                f"{' ...' if len(missed) > 3 else ''}: loop over all of model.parameters() "
                "(is a return or break inside the loop?)"
            )
        _check_grads(got, whole, extra=f" ({where})")
    return results[0]


__all__ = [
    "average_gradients",
    "check_average_gradients",
    "check_negative_elbo",
    "check_train_step",
    "check_vector_quantize",
    "check_vqvae_twin",
    "negative_elbo",
    "train_step",
    "vector_quantize",
]
