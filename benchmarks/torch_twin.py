"""The PyTorch twin of minivae's VAE, for the benchmarks: same architecture, loss and Adam.

    encoder: Linear(D, H) -> ReLU -> Linear(H, 2 Z)  ->  mu, logvar = split
    z = mu + exp(0.5 * logvar) * eps
    decoder: Linear(Z, H) -> ReLU -> Linear(H, D)    ->  Bernoulli logits
    loss = BCE-with-logits summed over pixels + KL(q || N(0, I)) summed over latents, batch mean

``nn.Linear``'s default initialisation is U(-1/sqrt(n_in), 1/sqrt(n_in)) for weight and bias,
the same scale as minivae's ``init_linear``; :func:`copy_from_minivae` gives both the same
numbers (torch stores W transposed: (n_out, n_in)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class TorchVAE(nn.Module):
    """A Bernoulli VAE with MLP encoder and decoder, as minivae.VAE(likelihood='bernoulli')."""

    def __init__(self, x_dim: int, z_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.x_dim, self.z_dim = x_dim, z_dim
        self.encoder = _mlp([x_dim, *hidden, 2 * z_dim])
        self.decoder = _mlp([z_dim, *reversed(hidden), x_dim])

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(loss, recon, kl) for a batch x (batch, D) and noise eps (batch, Z)."""
        h = self.encoder(x)
        mu, logvar = h[:, : self.z_dim], h[:, self.z_dim :]
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.decoder(z)
        batch = x.shape[0]
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
        kl = -0.5 * torch.sum(1 + logvar - mu * mu - torch.exp(logvar)) / batch
        return recon + kl, recon, kl


def copy_from_minivae(twin: TorchVAE, model: Any) -> TorchVAE:
    """Set the twin's weights to minivae ``model``'s (``encoder.W0`` -> encoder[0].weight.T ...)."""
    for prefix, seq in (("encoder.", twin.encoder), ("decoder.", twin.decoder)):
        linears = [m for m in seq if isinstance(m, nn.Linear)]
        for i, lin in enumerate(linears):
            W = np.asarray(model.params[f"{prefix}W{i}"])
            b = np.asarray(model.params[f"{prefix}b{i}"])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b.copy()))
    return twin


def twin_of(model: Any, dtype: torch.dtype = torch.float32) -> TorchVAE:
    """A TorchVAE with ``model``'s sizes and weights, in ``dtype``."""
    twin = TorchVAE(model.x_dim, model.z_dim, model.hidden).to(dtype)
    return copy_from_minivae(twin, model)


def make_adam(twin: TorchVAE, fused: bool) -> torch.optim.Optimizer:
    """PyTorch's Adam with minivae's defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8).

    ``fused=False`` is PyTorch's default on the CPU; ``fused=True`` one kernel for all tensors.
    """
    return torch.optim.Adam(twin.parameters(), lr=1e-3, fused=True if fused else None)


def train_epoch(
    twin: TorchVAE, opt: torch.optim.Optimizer, x: torch.Tensor, batch_size: int, gen: Any
) -> dict[str, float]:
    """One epoch as ``minivae.fit`` runs it: shuffled minibatches, fresh eps, one step each,
    the per-example mean of every loss term recorded. ``gen``: a torch.Generator on x's device."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=gen, device=x.device)  # gen lives on x's device
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
    for start in range(0, n, batch_size):
        xb = x[perm[start : start + batch_size]]
        eps = torch.randn(xb.shape[0], twin.z_dim, generator=gen, dtype=x.dtype, device=x.device)
        loss, recon, kl = twin(xb, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for key, value in zip(sums, (loss, recon, kl), strict=True):
            sums[key] += value.item() * xb.shape[0]
    return {key: value / n for key, value in sums.items()}
