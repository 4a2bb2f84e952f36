"""A deterministic autoencoder: x -> encoder -> z -> decoder -> x_hat, trained to reconstruct x.

Two losses: 'mse' (squared error on the raw output, summed over pixels, batch mean) and
'bernoulli' (cross-entropy with logits: the decoder outputs logits and x_hat = sigmoid(logits)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..layers import sigmoid
from ..losses import bernoulli_nll, mse
from ..mlp import MLP
from ..params import Parameters
from ..validation import check_data, check_positive_int, check_unit_interval
from .base import Model

Array = Any
LOSSES = ("mse", "bernoulli")


class Autoencoder(Model):
    """An MLP autoencoder.  Parameters ``encoder.W0, ..., decoder.W0, ...``; W is (n_in, n_out).

    Args:
        x_dim: pixels per example. z_dim: bottleneck width. hidden: encoder hidden widths
        (the decoder mirrors them; ``()`` gives a linear autoencoder with activation 'identity').
        loss: 'mse' or 'bernoulli'. activation: hidden activation. seed, dtype, backend: as VAE.
    """

    def __init__(
        self,
        x_dim: int,
        z_dim: int = 2,
        hidden: Sequence[int] = (256,),
        loss: str = "mse",
        activation: str = "relu",
        seed: int | None = 0,
        dtype: Any = "float32",
        backend: str | None = None,
    ):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: expected one of {LOSSES}")
        self.x_dim = check_positive_int(x_dim, "x_dim")
        self.z_dim = check_positive_int(z_dim, "z_dim")
        self.hidden = tuple(check_positive_int(h, "hidden width") for h in hidden)
        self.loss_name = loss
        self.activation = activation
        self.encoder = MLP([self.x_dim, *self.hidden, self.z_dim], activation, "encoder.")
        self.decoder = MLP([self.z_dim, *reversed(self.hidden), self.x_dim], activation, "decoder.")
        self._setup(
            {**self.encoder.param_shapes(), **self.decoder.param_shapes()}, seed, dtype, backend
        )

    def _mlps(self) -> list:
        return [self.encoder, self.decoder]

    def config(self) -> dict:
        return {
            "class": "Autoencoder",
            "x_dim": self.x_dim,
            "z_dim": self.z_dim,
            "hidden": list(self.hidden),
            "loss": self.loss_name,
            "activation": self.activation,
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    def encode(self, x: Array) -> Array:
        """z = encoder(x): (batch, x_dim) -> (batch, z_dim)."""
        return self.encoder.forward(self.params, self._check_x(x))[0]

    def decode(self, z: Array) -> Array:
        """x_hat = decoder(z) (through a sigmoid for the 'bernoulli' loss): (batch, x_dim)."""
        z = check_data(z, "z", dim=self.z_dim).astype(self.dtype, copy=False)
        out = self.decoder.forward(self.params, self.xp.asarray(z))[0]
        return sigmoid(out) if self.loss_name == "bernoulli" else out

    def reconstruct(self, x: Array) -> Array:
        """x_hat = decode(encode(x)): (batch, x_dim)."""
        return self.decode(self.encode(x))

    def loss_and_grads(
        self, x: Array, eps: None = None, target: Array | None = None
    ) -> tuple[dict, Parameters]:
        """Reconstruction loss of ``target`` (default: x itself) from x, and all gradients.

        Passing a clean ``target`` with a noisy ``x`` trains a denoising autoencoder.
        Returns ``({"loss", "recon"}, grads)``; ``eps`` is accepted for the training loop
        and unused.
        """
        x = self._check_x(x)
        target = x if target is None else self._check_x(target, "target")
        if target.shape != x.shape:
            raise ValueError(f"target must have the shape of x {x.shape}, got {target.shape}")
        self._check_values(target, "target")
        return self._loss_and_grads(x, None, target)

    def _check_values(self, x: Array, name: str = "x") -> None:
        """The 'bernoulli' loss needs x in [0, 1]; 'mse' takes any real numbers."""
        if self.loss_name == "bernoulli":
            check_unit_interval(x, name)

    def _loss_and_grads(
        self, x: Array, eps: None = None, target: Array | None = None
    ) -> tuple[dict, Parameters]:
        target = x if target is None else target
        z, enc_cache = self.encoder.forward(self.params, x)
        out, dec_cache = self.decoder.forward(self.params, z)
        loss_fn = bernoulli_nll if self.loss_name == "bernoulli" else mse
        loss, dout = loss_fn(out, target)
        dz, _ = self.decoder.backward(dout, dec_cache, self.grads)
        self.encoder.backward(dz, enc_cache, self.grads)
        return {"loss": loss, "recon": loss}, self.grads

    def loss(self, x: Array, eps: None = None) -> dict:
        """The reconstruction loss of x, without gradients: {"loss", "recon"}."""
        x = self._check_x(x)
        self._check_values(x)
        out = self.decoder.forward(self.params, self.encoder.forward(self.params, x)[0])[0]
        loss_fn = bernoulli_nll if self.loss_name == "bernoulli" else mse
        value = loss_fn(out, x)[0]
        return {"loss": value, "recon": value}
