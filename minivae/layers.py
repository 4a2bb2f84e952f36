"""Layers as pairs of plain functions: ``forward(...) -> (out, cache)``, ``backward(dout, cache)``.

This is the one contract of the library (the cs231n one). ``cache`` holds what the backward pass
needs and nothing more; ``dout`` is the gradient of the loss with respect to ``out``, and each
backward returns the gradient with respect to every input of its forward.

Shapes: ``x`` is ``(batch, n_in)``; a linear layer's weight ``W`` is ``(n_in, n_out)`` (so that
``out = x @ W + b``; PyTorch stores the transpose) and its bias ``b`` is ``(n_out,)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .backend import Array, array_module

# ---------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------


def init_linear(rng: Any, n_in: int, n_out: int, dtype: Any = "float32") -> tuple[Array, Array]:
    """Initial weight and bias of a linear layer, PyTorch's default for ``nn.Linear``.

    W, b ~ Uniform(-1/sqrt(n_in), +1/sqrt(n_in)), independently per entry.
    Returns ``W`` of shape ``(n_in, n_out)`` and ``b`` of shape ``(n_out,)``.
    """
    bound = 1.0 / n_in**0.5
    W = rng.uniform(-bound, bound, size=(n_in, n_out)).astype(dtype)
    b = rng.uniform(-bound, bound, size=(n_out,)).astype(dtype)
    return W, b


def linear_forward(x: Array, W: Array, b: Array) -> tuple[Array, tuple]:
    """out = x @ W + b.   x: (batch, n_in), W: (n_in, n_out), b: (n_out,) -> out: (batch, n_out)."""
    out = x @ W
    out += b  # in place: the same sum as x @ W + b without a second (batch, n_out) array
    return out, (x, W)


def linear_backward(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    """Gradients of out = x @ W + b.

    dx = dout @ W.T   (batch, n_in)
    dW = x.T @ dout   (n_in, n_out)   -- summed over the batch, like every parameter gradient
    db = sum_batch dout   (n_out,)
    """
    x, W = cache
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db


# ---------------------------------------------------------------------------------------------
# Activations: out = f(x) elementwise; dx = dout * f'(x)
# ---------------------------------------------------------------------------------------------


def relu_forward(x: Array) -> tuple[Array, Array]:
    """out = max(x, 0)."""
    out = array_module(x).maximum(x, 0)
    return out, out


def relu_backward(dout: Array, cache: Array) -> Array:
    """dx = dout * [x > 0]   (the cache is ``out``; out > 0 exactly where x > 0)."""
    out = cache
    return dout * (out > 0)


def leaky_relu_forward(x: Array, slope: float = 0.01) -> tuple[Array, tuple]:
    """out = x if x > 0 else slope * x."""
    xp = array_module(x)
    out = xp.where(x > 0, x, slope * x)
    return out, (x, slope)


def leaky_relu_backward(dout: Array, cache: tuple) -> Array:
    """dx = dout * (1 if x > 0 else slope)."""
    x, slope = cache
    xp = array_module(x)
    return xp.where(x > 0, dout, slope * dout)


def tanh_forward(x: Array) -> tuple[Array, Array]:
    """out = tanh(x)."""
    out = array_module(x).tanh(x)
    return out, out


def tanh_backward(dout: Array, cache: Array) -> Array:
    """dx = dout * (1 - tanh(x)**2)   (the cache is ``out`` = tanh(x))."""
    out = cache
    return dout * (1 - out * out)


def sigmoid(x: Array) -> Array:
    """sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow for large |x|.

    For x >= 0 it uses 1 / (1 + exp(-x)); for x < 0 the equal form exp(x) / (1 + exp(x)),
    so ``exp`` only ever sees non-positive numbers.
    """
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_forward(x: Array) -> tuple[Array, Array]:
    """out = sigmoid(x)."""
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout: Array, cache: Array) -> Array:
    """dx = dout * sigmoid(x) * (1 - sigmoid(x))   (the cache is ``out``)."""
    out = cache
    return dout * out * (1 - out)


def softplus(x: Array) -> Array:
    """softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), finite for any x."""
    xp = array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def softplus_forward(x: Array) -> tuple[Array, Array]:
    """out = softplus(x) = log(1 + exp(x))."""
    return softplus(x), x


def softplus_backward(dout: Array, cache: Array) -> Array:
    """dx = dout * sigmoid(x)   (d/dx log(1 + e^x) = e^x / (1 + e^x))."""
    x = cache
    return dout * sigmoid(x)


def identity_forward(x: Array) -> tuple[Array, None]:
    """out = x (the 'no activation' of an output layer)."""
    return x, None


def identity_backward(dout: Array, cache: None) -> Array:
    """dx = dout."""
    return dout


ActivationPair = tuple[Callable[..., tuple[Array, Any]], Callable[[Array, Any], Array]]

#: Activations by name, each a (forward, backward) pair with the contract above.
ACTIVATIONS: dict[str, ActivationPair] = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "softplus": (softplus_forward, softplus_backward),
    "identity": (identity_forward, identity_backward),
}


def activation(name: str) -> ActivationPair:
    """The (forward, backward) pair of the activation called ``name``."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}: expected one of {sorted(ACTIVATIONS)}"
        ) from None
