"""In-place versions of steps of training: the Bernoulli loss, the ReLU, the MLP's backward pass.

Each gives the same numbers, bit for bit, as the plain function it stands in for (each entry goes
through the same float operations in the same order); it only makes fewer and smaller arrays.
On the CPU, at this course's sizes, making and filling temporary arrays costs as much as the
arithmetic (profile in ``benchmarks/README.md``). They work on any array module (NumPy, the
stand-in, CuPy without its kernels); on CuPy the fused kernel is used first where there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backend import Array, array_module
from ..layers import relu_backward, relu_forward

#: Entries of one block of rows in :func:`bernoulli_entries` (float32: 128 KiB per array, so the
#: block's six arrays stay in a core's L2 cache). Measured on the 2-core Xeon of the benchmarks
#: (2 MiB of L2 per core), 512 x 784 float32 logits: the whole array at once 2.05 ms, blocks of
#: 8 rows 1.83, 16 rows 1.59, 32 rows (2**15 / 784) 1.46, 64 rows 1.47, 128 rows 1.56 ms; at
#: 128 x 784 the blocks gain nothing (0.37 ms either way): it fits the cache whole.
BLOCK = 2**15


def bernoulli_entries(logits: Array, x: Array) -> tuple[Array, Array]:
    """:func:`minivae.losses.bernoulli_entries` in 15 array passes (one exp) instead of about 24:
    softplus(l) - x * l and (sigmoid(l) - x) / batch, entry by entry, two (batch, D) arrays.

    e = exp(-|l|) is computed once for both softplus(l) = max(l, 0) + log1p(e) and
    sigmoid(l) = (1 if l >= 0 else e) / (1 + e) (the two forms of :func:`minivae.layers.sigmoid`),
    and every pass writes into one of the two results or into two scratch arrays. A large batch
    is done in blocks of rows (:data:`BLOCK` entries) that stay in the CPU's cache through the 15
    passes; each entry goes through the same operations whatever the blocks, and the callers
    sum the whole array (the sum's order is the plain code's).
    """
    xp = array_module(logits)
    batch, width = x.shape
    per_entry = xp.empty_like(logits)
    dlogits = xp.empty_like(logits)
    # one block for a small batch, and on CuPy and the stand-in (on a GPU one big launch beats
    # many small ones, and its caches are not the CPU's)
    rows = batch if xp is not np or batch * width <= 2 * BLOCK else BLOCK // width
    rows = max(rows, 1)  # an empty batch, or rows wider than a block
    e_block = xp.empty((rows, width), dtype=logits.dtype)
    buf_block = xp.empty((rows, width), dtype=logits.dtype)
    for start in range(0, batch, rows):
        stop = min(start + rows, batch)
        ell, xb = logits[start:stop], x[start:stop]
        per, dl = per_entry[start:stop], dlogits[start:stop]
        e, buf = e_block[: stop - start], buf_block[: stop - start]
        xp.maximum(ell, 0, out=per)
        xp.minimum(ell, 0, out=e)
        xp.subtract(e, per, out=e)  # min(l, 0) - max(l, 0) = -|l| exactly (one of them is 0)
        xp.exp(e, out=e)  # e = exp(-|l|), in (0, 1]
        xp.log1p(e, out=buf)
        xp.add(per, buf, out=per)  # softplus(l) = max(l, 0) + log1p(exp(-|l|))
        xp.multiply(xb, ell, out=buf)
        xp.subtract(per, buf, out=per)  # softplus(l) - x * l
        xp.add(e, 1, out=buf)  # 1 + e
        # sigmoid's numerator, 1 if l >= 0 else e, as max(e, [l >= 0]): e is in [0, 1], so the
        # maximum is 1 where l >= 0 and e elsewhere (NaN stays NaN). A select (xp.where) is 5x
        # slower on the CPU (a branch per entry, which the logits' signs make unpredictable).
        xp.greater_equal(ell, 0, out=dl)  # 1.0 or 0.0
        xp.maximum(e, dl, out=dl)
        xp.divide(dl, buf, out=dl)  # sigmoid(l)
        xp.subtract(dl, xb, out=dl)
        xp.divide(dl, batch, out=dl)
    return per_entry, dlogits


def activation_forward_in_place(act_forward: Callable[[Array], tuple[Array, Any]], h: Array
                                ) -> tuple[Array, Any]:
    """``act_forward(h)``, written over ``h`` for the ReLU (``h`` is a linear layer's fresh
    output, which nothing else holds): ``max(h, 0)`` into the same array, no new (batch, n) array.
    Other activations run as they are. Bit for bit :func:`minivae.layers.relu_forward`."""
    if act_forward is relu_forward:
        array_module(h).maximum(h, 0, out=h)
        return h, h
    return act_forward(h)


def activation_backward_in_place(act_backward: Callable[[Array, Any], Array], dh: Array,
                                 cache: Any) -> Array:
    """``act_backward(dh, cache)``, written over ``dh`` for the ReLU (``dh`` is the fresh
    ``dout @ W.T`` of the layer above): ``dh * [out > 0]`` in place. Other activations run as
    they are. Bit for bit :func:`minivae.layers.relu_backward`."""
    if act_backward is relu_backward:
        array_module(dh).multiply(dh, cache > 0, out=dh)
        return dh
    return act_backward(dh, cache)


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
        if i < n_layers - 1:  # dh is the product of the layer above: ours to overwrite
            dh = activation_backward_in_place(act_backward, dh, act_cache)
        dW, db = grad_buffers[i]
        dh = linear_backward_into(dh, linear_cache, dW, db, i > 0 or need_dx)
    return dh
