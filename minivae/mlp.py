"""A multilayer perceptron built from the layer functions: Linear -> act -> ... -> Linear.

The MLP holds no weights of its own. It knows the names and shapes of its parameters
(``W0, b0, W1, b1, ...`` behind a prefix such as ``"encoder."``) and reads them from the model's
:class:`~minivae.params.Parameters`, so a whole model has one mapping of parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from .backend import array_module
from .layers import activation, init_linear, linear_backward, linear_forward

Array = Any


class MLP:
    """x -> [Linear -> activation] * (n - 2) -> Linear.  The output layer has no activation.

    ``sizes = [n_in, h1, ..., n_out]``; layer i maps sizes[i] -> sizes[i+1] with weight
    ``{prefix}W{i}`` of shape (sizes[i], sizes[i+1]) and bias ``{prefix}b{i}`` of shape
    (sizes[i+1],).
    """

    def __init__(self, sizes: Sequence[int], activation_name: str = "relu", prefix: str = ""):
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"sizes must be at least [n_in, n_out] of positive ints, got {sizes}")
        self.sizes = [int(s) for s in sizes]
        self.activation_name = activation_name
        self.act_forward, self.act_backward = activation(activation_name)
        self.prefix = prefix

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def names(self, i: int) -> tuple[str, str]:
        """The parameter names of layer i: (weight, bias)."""
        return f"{self.prefix}W{i}", f"{self.prefix}b{i}"

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """name -> shape for every weight and bias, in layer order."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i in range(self.n_layers):
            w, b = self.names(i)
            shapes[w] = (self.sizes[i], self.sizes[i + 1])
            shapes[b] = (self.sizes[i + 1],)
        return shapes

    def init_params(self, params: MutableMapping[str, Array], rng: Any) -> None:
        """Fill this MLP's entries of ``params`` with PyTorch's default Linear initialisation."""
        for i in range(self.n_layers):
            w, b = self.names(i)
            W0, b0 = init_linear(rng, self.sizes[i], self.sizes[i + 1], dtype=params[w].dtype)
            params[w], params[b] = W0, b0

    def forward(self, params: Mapping[str, Array], x: Array) -> tuple[Array, list]:
        """out = MLP(x).   x: (batch, sizes[0]) -> out: (batch, sizes[-1]); cache for backward."""
        caches = []
        h = x
        for i in range(self.n_layers):
            w, b = self.names(i)
            h, linear_cache = linear_forward(h, params[w], params[b])
            act_cache = None
            if i < self.n_layers - 1:
                h, act_cache = self.act_forward(h)
            caches.append((linear_cache, act_cache))
        return h, caches

    def backward(
        self,
        dout: Array,
        caches: list,
        grads: MutableMapping[str, Array] | None = None,
        need_dx: bool = True,
    ) -> tuple[Array, dict[str, Array]]:
        """Backpropagate ``dout`` (batch, sizes[-1]); return dx (batch, sizes[0]) and the gradients.

        If ``grads`` is given, each gradient is written into its entry and that mapping is
        returned; otherwise a new dict is returned. ``need_dx=False`` skips the gradient with
        respect to the input (dx is then None): an encoder's input is the data, which has no
        gradient to receive, and that product is one of the largest of the step.
        """
        if grads is None:
            out: dict[str, Array] = {}
            dh = dout
            for i in reversed(range(self.n_layers)):
                linear_cache, act_cache = caches[i]
                if i < self.n_layers - 1:
                    dh = self.act_backward(dh, act_cache)
                dh, dW, db = linear_backward(dh, linear_cache)
                w, b = self.names(i)
                out[w], out[b] = dW, db
            return (dh if need_dx else None), out
        # The training path (speed, see benchmarks/): the same products as linear_backward, but
        # dW and db are written straight into the flat gradient buffer (out=, no copy) and the
        # input's dx is not computed when not needed.
        dh = dout
        for i in reversed(range(self.n_layers)):
            linear_cache, act_cache = caches[i]
            if i < self.n_layers - 1:
                dh = self.act_backward(dh, act_cache)
            w, b = self.names(i)
            dh = _linear_backward_into(dh, linear_cache, grads[w], grads[b], i > 0 or need_dx)
        return dh, grads


def _linear_backward_into(dout: Array, cache: tuple, dW: Array, db: Array, need_dx: bool) -> Array:
    """:func:`~minivae.layers.linear_backward` writing dW = x.T @ dout and db = sum_batch dout
    into the given arrays; returns dx = dout @ W.T, or None when ``need_dx`` is False.
    (``x.T`` and ``W.T`` are views: BLAS reads transposed operands at no cost, no copy is made.)
    """
    x, W = cache
    array_module(dout).matmul(x.T, dout, out=dW)
    dout.sum(axis=0, out=db)
    return dout @ W.T if need_dx else None
