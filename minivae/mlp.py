"""A multilayer perceptron built from the layer functions: Linear -> act -> ... -> Linear.

The MLP holds no weights of its own. It knows the names and shapes of its parameters
(``W0, b0, W1, b1, ...`` behind a prefix such as ``"encoder."``) and reads them from the model's
:class:`~minivae.params.Parameters`, so a whole model has one mapping of parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from . import accel
from .accel import inplace
from .backend import Array
from .layers import activation, init_linear, linear_backward, linear_forward


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
        in_place = accel.enabled()  # the ReLU over the product's own array (accel.inplace)
        for i in range(self.n_layers):
            w, b = self.names(i)
            h, linear_cache = linear_forward(h, params[w], params[b])
            act_cache = None
            if i < self.n_layers - 1:
                if in_place:
                    h, act_cache = inplace.activation_forward_in_place(self.act_forward, h)
                else:
                    h, act_cache = self.act_forward(h)
            caches.append((linear_cache, act_cache))
        return h, caches

    def backward(
        self,
        dout: Array,
        caches: list,
        grads: MutableMapping[str, Array] | None = None,
        need_dx: bool = True,
    ) -> tuple[Array | None, MutableMapping[str, Array]]:
        """Backpropagate ``dout`` (batch, sizes[-1]); return dx (batch, sizes[0]) and the gradients.

        Layer by layer, from the output: dh <- act_backward(dh) between layers, then
        dh, dW_i, db_i = linear_backward(dh) (:func:`~minivae.layers.linear_backward`).

        If ``grads`` is given, each gradient is written into its entry and that mapping is
        returned; otherwise a new dict is returned. ``need_dx=False`` says the gradient with
        respect to the input is not wanted (dx is then None): an encoder's input is the data,
        which has no gradient to receive. Given ``grads``, training's fast path
        (:func:`minivae.accel.inplace.mlp_backward_into`) writes dW and db straight into them and
        skips that product, one of the largest of the step; the numbers are the same.
        """
        if grads is not None and accel.enabled():
            buffers = [(grads[w], grads[b]) for w, b in map(self.names, range(self.n_layers))]
            dx = inplace.mlp_backward_into(dout, caches, self.act_backward, buffers, need_dx)
            return dx, grads
        computed: dict[str, Array] = {}
        dh = dout
        for i in reversed(range(self.n_layers)):
            linear_cache, act_cache = caches[i]
            if i < self.n_layers - 1:
                dh = self.act_backward(dh, act_cache)
            dh, dW, db = linear_backward(dh, linear_cache)
            w, b = self.names(i)
            computed[w], computed[b] = dW, db
        dx = dh if need_dx else None
        if grads is None:
            return dx, computed
        for name, grad in computed.items():
            grads[name][...] = grad  # into the given arrays (a model's flat gradient buffer)
        return dx, grads
