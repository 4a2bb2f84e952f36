"""PyTorch twins of every model the course trains, for ``bench_models.py``.

A twin is a function ``loss(p, x, eps, labels) -> dict of 0-d tensors`` over a dict ``p`` of
torch leaf tensors with minivae's names and layouts (``encoder.W0`` is (n_in, n_out), so a layer is
``torch.addmm(b, h, W)``, the same product ``nn.Linear`` computes with its transposed weight).
The same weights (:func:`params_of`), the same batch and the same eps give the same loss and
gradients as ``model.loss_and_grads`` (checked in float64 by ``bench_models.py``), and the same
training step is ``loss.backward(); torch.optim.Adam(p.values()).step()``.

Equations (per example, summed over pixels and latent dims, batch mean; LOG_2PI = log 2 pi):

- VAE:  z = mu + exp(logvar / 2) eps;  loss = -log p(x|z) + beta KL(N(mu, e^logvar) || N(0, I)).
- CVAE: the VAE with the one-hot label appended to the encoder's and the decoder's input.
- M2:   every row is enumerated over the K labels: L(x, y) = -log p(x|z,y) + beta KL + log K;
        loss = (1/n) [sum_lab L(x, y) + sum_unlab sum_y pi_y (L(x, y) + log pi_y)
        - alpha sum_lab log pi_y],  pi = softmax(classifier(x)).
- VQ-VAE: z_e (n, P, D) -> nearest code e (cdist argmin), z_q = z_e + (e - z_e).detach();
        loss = -log p(x|z_q) + |sg(z_e) - e|^2 + beta |z_e - sg(e)|^2.
- FlowVAE (planar, closed-form base KL): z_K = f_K(...f_1(z_0)), u_hat so that w.u_hat >= -1;
        kl = KL(q_0 || p) + log p(z_0) - log p(z_K) - sum_k log|1 + u_hat_k . psi_k|.
- IWAE: loss = -(1/n) sum_i [logsumexp_k (log p(x|z_k) + beta (log p(z_k) - log q(z_k|x))) - log k].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
}


def params_of(model: Any, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The model's parameters as torch leaf tensors (copies, ``requires_grad``), same names."""
    return {name: torch.tensor(np.array(value), dtype=dtype, requires_grad=True)
            for name, value in model.params.items()}


def grads_of(p: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """``p[name].grad`` as NumPy, zeros where no gradient arrived."""
    return {name: np.zeros(tuple(t.shape)) if t.grad is None else t.grad.detach().numpy()
            for name, t in p.items()}


def mlp(p: dict, net: Any, h: torch.Tensor) -> torch.Tensor:
    """minivae's ``MLP.forward``: Linear -> activation -> ... -> Linear."""
    act = ACTIVATIONS[net.activation_name]
    for i in range(net.n_layers):
        w, b = net.names(i)
        h = torch.addmm(p[b], h, p[w])
        if i < net.n_layers - 1:
            h = act(h)
    return h


def nll_rows(likelihood: Any, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | decoder output) per row: (rows,)."""
    name = likelihood.name
    if name == "bernoulli":
        return F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
    if name == "gaussian":
        var = likelihood.var
        return 0.5 * ((x - out) ** 2 / var + (math.log(var) + LOG_2PI)).sum(1)
    if name == "gaussian_learned":
        d = x.shape[1]
        mean, logvar = out[:, :d], out[:, d:]
        return 0.5 * ((x - mean) ** 2 * torch.exp(-logvar) + logvar + LOG_2PI).sum(1)
    raise ValueError(f"no twin for the likelihood {name!r}")


def nll_sum(likelihood: Any, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | out) summed over rows and pixels (BCE's fused sum for Bernoulli)."""
    if likelihood.name == "bernoulli":
        return F.binary_cross_entropy_with_logits(out, x, reduction="sum")
    return nll_rows(likelihood, out, x).sum()


def _kl_sum(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.sum(1 + logvar - mu * mu - torch.exp(logvar))


def vae(model: Any) -> Callable:
    """The twin of ``VAE`` (any likelihood)."""
    zd, lik, beta = model.z_dim, model.likelihood, float(model.beta)

    def loss(p: dict, x: torch.Tensor, eps: torch.Tensor, labels: Any = None) -> dict:
        n = x.shape[0]
        h = mlp(p, model.encoder, x)
        mu, logvar = h[:, :zd], h[:, zd:]
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = nll_sum(lik, mlp(p, model.decoder, z), x) / n
        kl = _kl_sum(mu, logvar) / n
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}

    return loss


def cvae(model: Any) -> Callable:
    """The twin of ``CVAE``: [x, onehot(y)] -> encoder, [z, onehot(y)] -> decoder."""
    zd, lik, beta, k = model.z_dim, model.likelihood, float(model.beta), model.n_classes

    def loss(p: dict, x: torch.Tensor, eps: torch.Tensor, labels: torch.Tensor) -> dict:
        n = x.shape[0]
        c = F.one_hot(labels, k).to(x.dtype)
        h = mlp(p, model.encoder, torch.cat([x, c], 1))
        mu, logvar = h[:, :zd], h[:, zd:]
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = nll_sum(lik, mlp(p, model.decoder, torch.cat([z, c], 1)), x) / n
        kl = _kl_sum(mu, logvar) / n
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}

    return loss


def m2(model: Any) -> Callable:
    """The twin of ``M2`` (labels: class index, or -1 for an unlabelled row)."""
    zd, lik, beta, k = model.z_dim, model.likelihood, float(model.beta), model.n_classes
    alpha = float(model.alpha)

    def loss(p: dict, x: torch.Tensor, eps: torch.Tensor, labels: torch.Tensor) -> dict:
        n = x.shape[0]
        log_pi = torch.log_softmax(mlp(p, model.classifier, x), dim=1)
        x_rep = x.repeat_interleave(k, dim=0)
        c_rep = torch.eye(k, dtype=x.dtype).repeat(n, 1)
        h = mlp(p, model.encoder, torch.cat([x_rep, c_rep], 1))
        mu, logvar = h[:, :zd], h[:, zd:]
        z = mu + torch.exp(0.5 * logvar) * eps.reshape(n * k, zd)
        recon = nll_rows(lik, mlp(p, model.decoder, torch.cat([z, c_rep], 1)), x_rep)
        kl = -0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum(1)
        bound = (recon + beta * kl).reshape(n, k) + math.log(k)
        lab = labels >= 0
        y = F.one_hot(labels.clamp(min=0), k).to(x.dtype) * lab[:, None]
        unl = (~lab).to(x.dtype)[:, None]
        total = (y * bound).sum() + (unl * log_pi.exp() * (bound + log_pi)).sum() \
            - alpha * (y * log_pi).sum()
        return {"loss": total / n}

    return loss


def vqvae(model: Any) -> Callable:
    """The twin of ``VQVAE`` (gradient codebook term, straight-through estimator)."""
    lik, beta, positions = model.likelihood, float(model.beta), model.positions

    def loss(p: dict, x: torch.Tensor, eps: Any = None, labels: Any = None) -> dict:
        n = x.shape[0]
        codebook = p["codebook"]
        z_e = mlp(p, model.encoder, x).reshape(n * positions, -1)
        e = codebook[torch.cdist(z_e, codebook).argmin(dim=1)]
        z_q = z_e + (e - z_e).detach()
        recon = nll_sum(lik, mlp(p, model.decoder, z_q.reshape(n, -1)), x) / n
        codebook_term = ((z_e.detach() - e) ** 2).sum() / n
        commitment = ((z_e - e.detach()) ** 2).sum() / n
        return {"loss": recon + codebook_term + beta * commitment, "recon": recon,
                "codebook": codebook_term}

    return loss


def flow_vae(model: Any) -> Callable:
    """The twin of ``FlowVAE`` (planar flows, base_kl 'closed_form' or 'sampled')."""
    d, kf, lik, beta = model.z_dim, model.n_flows, model.likelihood, float(model.beta)
    sampled = model.base_kl == "sampled"

    def loss(p: dict, x: torch.Tensor, eps: torch.Tensor, labels: Any = None) -> dict:
        n = x.shape[0]
        h = mlp(p, model.encoder, x)
        mu, logvar = h[:, :d], h[:, d : 2 * d]
        u = h[:, 2 * d : 2 * d + kf * d].reshape(n, kf, d)
        w = h[:, 2 * d + kf * d : 2 * d + 2 * kf * d].reshape(n, kf, d)
        b = h[:, 2 * d + 2 * kf * d :]
        z0 = mu + torch.exp(0.5 * logvar) * eps
        z, log_det = z0, torch.zeros(n, dtype=x.dtype)
        for i in range(kf):
            ui, wi, bi = u[:, i], w[:, i], b[:, i]
            a = (wi * ui).sum(-1, keepdim=True)
            u_hat = ui + (F.softplus(a) - 1 - a) * wi / (wi * wi).sum(-1, keepdim=True)
            t = torch.tanh((wi * z).sum(-1) + bi)
            psi = (1 - t * t)[:, None] * wi
            log_det = log_det + torch.log(torch.abs(1 + (u_hat * psi).sum(-1)))
            z = z + u_hat * t[:, None]
        recon = nll_sum(lik, mlp(p, model.decoder, z), x) / n
        log_p0_minus_pk = 0.5 * (z * z - z0 * z0).sum(-1)  # log p(z_0) - log p(z_K)
        if sampled:  # log q_0(z_0) - log p(z_0) sampled: -1/2 (logvar + eps^2 - z_0^2)
            base = -0.5 * (logvar + eps * eps - z0 * z0).sum(-1)
        else:
            base = -0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum(-1)
        kl = (base + log_p0_minus_pk - log_det).mean()
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "log_det": log_det.mean()}

    return loss


def iwae(model: Any) -> Callable:
    """The twin of ``IWAE`` (eps: (k, n, z_dim))."""
    zd, lik, beta, k = model.z_dim, model.likelihood, float(model.beta), model.k

    def loss(p: dict, x: torch.Tensor, eps: torch.Tensor, labels: Any = None) -> dict:
        n = x.shape[0]
        h = mlp(p, model.encoder, x)
        mu, logvar = h[:, :zd], h[:, zd:]
        z = mu + torch.exp(0.5 * logvar) * eps  # (k, n, zd)
        out = mlp(p, model.decoder, z.reshape(k * n, zd))
        log_px = -nll_rows(lik, out, x.repeat(k, 1)).reshape(k, n)
        log_pz = -0.5 * (z * z + LOG_2PI).sum(-1)
        log_qz = -0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)
        bound = torch.logsumexp(log_px + beta * (log_pz - log_qz), dim=0) - math.log(k)
        return {"loss": -bound.mean(), "recon": -log_px.mean(), "kl": (log_qz - log_pz).mean()}

    return loss


TWINS: dict[str, Callable[[Any], Callable]] = {
    "VAE": vae, "CVAE": cvae, "M2": m2, "VQVAE": vqvae, "FlowVAE": flow_vae, "IWAE": iwae,
}


def twin_of(model: Any) -> Callable:
    """The twin loss function of a minivae model (by its ``config()["class"]``)."""
    return TWINS[model.config()["class"]](model)
