"""What every model of the library shares: one Parameters mapping, its gradients, a backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..params import Parameters
from ..validation import check_data

Array = Any


class Model:
    """Base of Autoencoder and VAE.

    Attributes:
        params: name -> array, every weight of the model (see :mod:`minivae.params`).
        grads:  the same names; filled by ``loss_and_grads`` (overwritten by each call).
        xp:     the array module (NumPy or CuPy) that holds the parameters.
        rng:    the model's seeded generator, used for eps when none is passed in.
    """

    x_dim: int

    def _setup(self, shapes: dict, seed: int | None, dtype: Any, backend_name: str | None) -> None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self.dtype = dtype
        self.backend_name = backend.default_name() if backend_name is None else backend_name
        self.xp = backend.get(self.backend_name)
        self.seed = seed
        self.params = Parameters.zeros(shapes, dtype, self.xp)
        self.grads = self.params.zeros_like()
        # Weights are drawn with NumPy's generator on the host, whatever the backend, so the same
        # seed gives the same initial weights on the CPU and on the GPU.
        init_rng = np.random.default_rng(seed)
        host = Parameters.zeros(shapes, dtype)
        for mlp in self._mlps():
            mlp.init_params(host, init_rng)
        self.params.flat[...] = backend.to_device(host.flat, self.xp)
        self.rng = backend.default_rng(None if seed is None else seed + 1, self.xp)

    def _mlps(self) -> list:
        raise NotImplementedError

    def _check_x(self, x: Array, name: str = "x") -> Array:
        """Check a batch and move it to this model's backend and dtype."""
        x = check_data(x, name, dim=self.x_dim)
        x = backend.to_device(x, self.xp)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return x

    def _check_values(self, x: Array, name: str = "x") -> None:
        """Check that the values of a checked batch suit the loss (e.g. [0, 1] for a Bernoulli)."""
        likelihood = getattr(self, "likelihood", None)
        if likelihood is not None:
            likelihood.check_data(x)

    def config(self) -> dict:
        """The constructor arguments, enough to build the same model again (for save/load)."""
        raise NotImplementedError

    def n_params(self) -> int:
        """The number of scalar parameters."""
        return int(self.params.flat.size)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "class")
        return f"{type(self).__name__}({args})  # {self.n_params():,} parameters"
