"""A deterministic autoencoder: x -> encoder -> z -> decoder -> x_hat, trained to reconstruct x.

Two losses: 'mse' (squared error on the raw output, summed over pixels, batch mean) and
'bernoulli' (cross-entropy with logits: the decoder outputs logits and x_hat = sigmoid(logits)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..backend import Array
from ..layers import sigmoid
from ..losses import bernoulli_nll, mse
from ..mlp import MLP
from ..params import Parameters
from ..validation import check_data, check_positive_int, check_unit_interval
from .base import Batch, Model, check_hidden, checked_overflow, stack_shapes

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
        self.hidden = check_hidden(hidden)
        self.loss_name = loss
        self.activation = activation
        self.encoder = MLP([self.x_dim, *self.hidden, self.z_dim], activation, "encoder.")
        self.decoder = MLP([self.z_dim, *reversed(self.hidden), self.x_dim], activation, "decoder.")
        shapes = stack_shapes(self.encoder.param_shapes(), self.decoder.param_shapes())
        self._setup(shapes, seed, dtype, backend)

    def networks(self) -> list:
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

    def check_values(self, x: Array, name: str = "x") -> None:
        """The 'bernoulli' loss needs x in [0, 1]; 'mse' takes any real numbers."""
        if self.loss_name == "bernoulli":
            check_unit_interval(x, name)

    def prepare(self, x: Any, name: str = "x", *, mask: Any = None, labels: Any = None) -> Batch:
        if mask is not None:
            # the squared error and cross-entropy here have no masked form: say so, rather than
            # train on zero-filled pixels as if they had been observed
            raise TypeError(
                "an Autoencoder cannot train on incomplete data (mask=...): use a VAE, whose "
                "likelihood counts the observed entries only"
            )
        return super().prepare(x, name, labels=labels)

    @checked_overflow
    def encode(self, x: Any) -> Array:
        """z = encoder(x): (batch, x_dim) -> (batch, z_dim)."""
        batch = self.prepare(x)
        return self.check_result(self.encoder.forward(self.params, batch.x)[0], "encode(x)",
                                 x=batch)

    @checked_overflow
    def decode(self, z: Any) -> Array:
        """x_hat = decoder(z) (through a sigmoid for the 'bernoulli' loss): (batch, x_dim)."""
        z = self._to_model_dtype(check_data(z, "z", dim=self.z_dim), "z")  # finite after the cast
        out = self.decoder.forward(self.params, z)[0]
        x_hat = sigmoid(out) if self.loss_name == "bernoulli" else out
        return self.check_result(x_hat, "decode(z)", z=z)

    def reconstruct(self, x: Any) -> Array:
        """x_hat = decode(encode(x)): (batch, x_dim)."""
        return self.decode(self.encode(x))

    @checked_overflow
    def loss_and_grads(
        self, x: Any, eps: None = None, *, target: Any = None, mask: Any = None,
        labels: Any = None,
    ) -> tuple[dict, Parameters]:
        """Reconstruction loss of ``target`` (default: x itself) from x, and all gradients.

        Passing a clean ``target`` with a noisy ``x`` trains a denoising autoencoder.
        Returns ``({"loss", "recon"}, grads)``; ``eps`` is accepted for the protocol and unused.
        """
        batch = self.prepare(x, mask=mask, labels=labels)
        if target is None:
            terms, grads = self.objective(batch, None, need_grads=True)
        else:
            target = self.prepare(target, "target").x
            if target.shape != batch.x.shape:
                raise ValueError(
                    f"target must have the shape of x {batch.x.shape}, got {target.shape}"
                )
            terms, grads = self._loss_and_grads(batch.x, target)
        return self.check_terms(terms, batch, "the loss"), grads

    def objective(self, batch: Batch, eps: None, need_grads: bool) -> tuple[dict, Any]:
        """loss = (1/batch) sum_b loss(decoder(encoder(x_b)), x_b): 'mse' or 'bernoulli'."""
        if need_grads:
            return self._loss_and_grads(batch.x, batch.x)
        out = self.decoder.forward(self.params, self.encoder.forward(self.params, batch.x)[0])[0]
        loss_fn = bernoulli_nll if self.loss_name == "bernoulli" else mse
        value = loss_fn(out, batch.x)[0]
        return {"loss": value, "recon": value}, None

    def _loss_and_grads(self, x: Array, target: Array) -> tuple[dict, Parameters]:
        z, enc_cache = self.encoder.forward(self.params, x)
        out, dec_cache = self.decoder.forward(self.params, z)
        loss_fn = bernoulli_nll if self.loss_name == "bernoulli" else mse
        loss, dout = loss_fn(out, target)
        dz, _ = self.decoder.backward(dout, dec_cache, self.grads)
        self.encoder.backward(dz, enc_cache, self.grads)
        return {"loss": loss, "recon": loss}, self.grads
