"""In-place versions of two steps of training: the Bernoulli loss and the MLP's backward pass.

Each gives the same numbers, bit for bit, as the plain function it stands in for (each entry goes
through the same float operations in the same order); it only makes fewer and smaller arrays.
On the CPU, at this course's sizes, making and filling temporary arrays costs as much as the
arithmetic (profile in ``benchmarks/README.md``). They work on any array module (NumPy, the
stand-in, CuPy without its kernels); on CuPy the fused kernel is used first where there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..backend import array_module

Array = Any  # a NumPy or CuPy ndarray


def bernoulli_nll(logits: Array, x: Array) -> tuple[float, Array]:
    """:func:`minivae.losses.bernoulli_nll` in 16 array passes instead of about 24.

    loss    = (1/batch) * sum_{b,d} [softplus(l) - x * l]
    dlogits = (sigmoid(l) - x) / batch                       logits, x: (batch, D)

    e = exp(-|l|) is computed once for both softplus(l) = max(l, 0) + log1p(e) and
    sigmoid(l) = (1 if l >= 0 else e) / (1 + e) (the two forms of :func:`minivae.layers.sigmoid`),
    and every pass writes into one of three (batch, D) buffers instead of a new array.
    """
    xp = array_module(logits)
    batch = x.shape[0]
    e = xp.abs(logits)
    xp.negative(e, out=e)
    xp.exp(e, out=e)  # e = exp(-|l|), in (0, 1]
    per_entry = xp.maximum(logits, 0)
    buf = xp.log1p(e)
    xp.add(per_entry, buf, out=per_entry)  # softplus(l) = max(l, 0) + log1p(exp(-|l|))
    xp.multiply(x, logits, out=buf)
    xp.subtract(per_entry, buf, out=per_entry)  # softplus(l) - x * l
    loss = float(per_entry.sum()) / batch
    xp.add(e, 1, out=per_entry)  # 1 + e
    dlogits = xp.where(logits >= 0, e.dtype.type(1), e)
    xp.divide(dlogits, per_entry, out=dlogits)  # sigmoid(l)
    xp.subtract(dlogits, x, out=dlogits)
    xp.divide(dlogits, batch, out=dlogits)
    return loss, dlogits


def linear_backward_into(dout: Array, cache: tuple, dW: Array, db: Array, need_dx: bool
                         ) -> Array | None:
    """:func:`minivae.layers.linear_backward` writing dW = x.T @ dout and db = sum_batch dout into
    the given arrays (views into a flat gradient buffer: no temporary, no copy); returns
    dx = dout @ W.T, or None when ``need_dx`` is False (a layer whose input is the data).

    ``x.T`` and ``W.T`` are views: BLAS reads transposed operands in place.
    """
    x, W = cache
    array_module(dout).matmul(x.T, dout, out=dW)
    dout.sum(axis=0, out=db)
    return dout @ W.T if need_dx else None


def mlp_backward_into(
    dout: Array,
    caches: Sequence[tuple],
    act_backward: Callable[[Array, Any], Array],
    grad_buffers: Sequence[tuple[Array, Array]],
    need_dx: bool,
) -> Array | None:
    """:meth:`minivae.mlp.MLP.backward` with each layer's gradients written in place.

    ``caches`` are the MLP forward's (linear cache, activation cache) per layer; ``act_backward``
    its hidden activation's backward; ``grad_buffers[i] = (dW_i, db_i)`` the arrays that receive
    layer i's gradients. Returns dx (batch, n_in), or None when ``need_dx`` is False: then the
    first layer's input gradient, one of the largest products of a step, is not computed.
    """
    n_layers = len(caches)
    dh = dout
    for i in reversed(range(n_layers)):
        linear_cache, act_cache = caches[i]
        if i < n_layers - 1:
            dh = act_backward(dh, act_cache)
        dW, db = grad_buffers[i]
        dh = linear_backward_into(dh, linear_cache, dW, db, i > 0 or need_dx)
    return dh
