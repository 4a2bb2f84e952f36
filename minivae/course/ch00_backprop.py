"""The graded checks of problem set 00 (backprop by hand), with the reference maths they compare
with and the usual slips they recognise.

Each ``check_<exercise>(fn, ...)`` computes the reference first, then runs the learner's ``fn``
through :func:`minivae.course.feedback.call` (on copies of its inputs) and raises an
:class:`~minivae.course.feedback.ExerciseError` that names the slip when the numbers match one::

    from minivae.course import ch00_backprop as checks
    checks.check_linear_forward(linear_forward, x, W, b)

The references are the library's (``minivae.layers``) or written out here (``adam_reference``),
so a learner's notebook never shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import layers
from .feedback import ExerciseError, call, check_close, check_shape, unpack

Array = np.ndarray


def _describe(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(item) for item in value) + ")"
    if hasattr(value, "shape"):
        return f"an array of shape {tuple(value.shape)}"
    return type(value).__name__


# ----------------------------------------------------------------------------- 1. linear forward


def check_linear_forward(linear_forward: Callable, x: Array, W: Array, b: Array) -> Array:
    """out = x @ W + b with cache (x, W, b); x: (batch, n_in), W: (n_in, n_out), b: (n_out,)."""
    expected, _ = layers.linear_forward(x, W, b)
    batch, n_in = x.shape
    n_out = W.shape[1]
    result = call(
        linear_forward,
        x,
        W,
        b,
        advice=f"x is (batch, n_in) = {x.shape} and W is (n_in, n_out) = {W.shape}, so x @ W is "
        f"({batch}, {n_out}): W needs no transpose here (PyTorch stores the transpose, this "
        "course does not), and `@` is the matrix product (`*` multiplies entry by entry)",
    )
    out, cache = unpack(result, ["out", "cache"], "linear_forward(x, W, b)")
    check_shape("out", out, (batch, n_out))
    check_close(
        "out",
        out,
        expected,
        hints=[
            (
                expected - b,
                "the bias is missing: add b (one value per output, broadcast over the batch)",
            ),
            (expected + b, "the bias is added twice"),
            (expected - 2 * b, "the bias is subtracted: out = x @ W + b"),
        ],
    )
    if not (isinstance(cache, tuple) and len(cache) == 3):
        raise ExerciseError(
            f"cache should be the tuple (x, W, b) that linear_backward reads; got "
            f"{_describe(cache)}"
        )
    for name, got, want in zip(["x", "W", "b"], cache, [x, W, b], strict=True):
        if not (np.shape(got) == want.shape and np.array_equal(got, want)):
            raise ExerciseError(
                f"cache should be (x, W, b) in that order; its entry for {name} is not {name}"
            )
    if np.asarray(out).dtype != np.result_type(x, W, b):
        raise ExerciseError(
            f"out has dtype {np.asarray(out).dtype}, but x, W and b are "
            f"{np.result_type(x, W, b)}: compute in the inputs' precision (no astype, no "
            "dtype=...)"
        )
    return out


# ----------------------------------------------------------------------------- 2. linear backward


def check_linear_backward(
    linear_backward: Callable, dout: Array, x: Array, W: Array, b: Array
) -> tuple[Array, Array, Array]:
    """dx = dout @ W.T, dW = x.T @ dout, db = dout summed over the batch."""
    dx_ref, dW_ref, db_ref = layers.linear_backward(dout, (x, W))
    batch, n_in = x.shape
    n_out = W.shape[1]
    result = call(
        linear_backward,
        dout,
        (x, W, b),
        advice=f"dout is (batch, n_out) = {dout.shape} and W is (n_in, n_out) = {W.shape}; dx "
        f"must come out (batch, n_in) = {x.shape} like x, and dW (n_in, n_out) = {W.shape} like "
        f"W. Which of W and W.T turns {dout.shape} into {x.shape}? Which product of x, dout and "
        "their transposes is (n_in, n_out)?",
    )
    dx, dW, db = unpack(result, ["dx", "dW", "db"], "linear_backward(dout, cache)")
    if np.shape(dx) == (n_in, batch) and n_in != batch:
        raise ExerciseError(
            f"dx has shape {np.shape(dx)}, the transpose of x's shape {x.shape}: dx must have "
            "the shape of x, one row per example"
        )
    check_shape("dx", dx, x.shape)
    if np.shape(dW) == (n_out, n_in) and n_in != n_out:
        raise ExerciseError(
            f"dW looks transposed: it has shape {np.shape(dW)} but W is {W.shape}. A gradient "
            "has the shape of its parameter: multiply x's transpose by dout, "
            "(n_in, batch) @ (batch, n_out)"
        )
    check_shape("dW", dW, W.shape)
    if np.ndim(db) == 0:
        raise ExerciseError(
            f"db is a single number: sum dout over the batch axis only (axis 0), which leaves one "
            f"value per output, shape ({n_out},)"
        )
    if np.shape(db) == (batch,) and batch != n_out:
        raise ExerciseError(
            f"db has shape ({batch},), one value per example: you summed over the outputs. Sum "
            f"over the batch axis (axis 0) instead, which leaves one value per output, shape "
            f"({n_out},)"
        )
    check_shape("db", db, b.shape)
    square = W.shape[0] == W.shape[1]
    check_close(
        "dx",
        dx,
        dx_ref,
        hints=[(dout @ W, "dx uses W where W.T belongs: dx = dout @ W.T")] if square else [],
    )
    check_close(
        "dW",
        dW,
        dW_ref,
        hints=[
            (
                dW_ref / batch,
                "divided by the batch size: parameter gradients SUM over the "
                "batch (any 1/batch of the loss is already inside dout)",
            )
        ],
    )
    check_close(
        "db",
        db,
        db_ref,
        hints=[
            (
                db_ref / batch,
                "this looks like the MEAN of dout over the batch; parameter "
                "gradients SUM over the batch (any 1/batch of the loss is already "
                "inside dout)",
            ),
            (
                np.zeros_like(db_ref),
                "all zeros: the bias gets a gradient too, dout summed over the batch",
            ),
            (b, "equal to b: return the gradient of the bias, not the bias itself"),
        ],
    )
    return dx, dW, db


# ----------------------------------------------------------------------------- 3-5. activations


def check_relu_backward(relu_backward: Callable, dout: Array, x: Array) -> Array:
    """dx = dout * [x > 0] (0 at x == 0 exactly, like PyTorch)."""
    expected = layers.relu_backward(dout, layers.relu_forward(x)[1])
    dx = call(relu_backward, dout, x)
    check_shape("dx", dx, x.shape)
    hints = [
        (
            dout * (dout > 0),
            "your mask looks at dout; the gradient passes where the INPUT x was "
            "positive, whatever the sign of dout",
        ),
        (
            (x > 0).astype(float),
            "you returned the mask [x > 0] alone: multiply it by dout (chain rule)",
        ),
        (
            dout * (x < 0),
            "the mask is inverted: the gradient passes where x > 0, and is 0 where x < 0",
        ),
        (
            dout * (x <= 0),
            "the mask is inverted: the gradient passes where x > 0, and is 0 where x <= 0",
        ),
        (np.maximum(x, 0), "you returned the forward pass, max(x, 0), instead of the gradient"),
        (
            dout * np.maximum(x, 0),
            "you multiplied dout by relu(x) itself; the derivative of "
            "relu is 1 where x > 0 and 0 elsewhere",
        ),
    ]
    if np.any(x == 0):
        hints.append(
            (
                dout * (x >= 0),
                "at x == 0 exactly the derivative is taken as 0: use x > 0, not x >= 0",
            )
        )
    check_close("dx", dx, expected, hints=hints)
    return dx


def check_tanh_backward(tanh_backward: Callable, dout: Array, x: Array) -> Array:
    """dx = dout * (1 - tanh(x)**2)."""
    t = np.tanh(x)
    expected = layers.tanh_backward(dout, layers.tanh_forward(x)[1])
    dx = call(tanh_backward, dout, x)
    check_shape("dx", dx, x.shape)
    check_close(
        "dx",
        dx,
        expected,
        hints=[
            (
                dout * (1 - t),
                "this looks like dout * (1 - tanh(x)): the derivative of tanh is "
                "1 - tanh(x)**2, squared",
            ),
            (
                dout * (1 - t) ** 2,
                "this looks like dout * (1 - tanh(x))**2: square tanh(x) first, "
                "then subtract from 1",
            ),
            (
                dout * (1 - x**2),
                "this looks like dout * (1 - x**2): the derivative is "
                "1 - tanh(x)**2, with tanh applied to x",
            ),
            (
                1 - t**2,
                "you returned the derivative of tanh alone: multiply it by dout (chain rule)",
            ),
            (
                dout * t,
                "you multiplied dout by tanh(x), the forward value; use the derivative "
                "1 - tanh(x)**2",
            ),
            (
                dout / np.cosh(x),
                "this is dout / cosh(x) = dout * sech(x); the derivative of tanh "
                "is sech(x)**2 = 1 / cosh(x)**2 = 1 - tanh(x)**2",
            ),
        ],
    )
    return dx


def check_sigmoid_backward(sigmoid_backward: Callable, dout: Array, x: Array) -> Array:
    """dx = dout * s * (1 - s) with s = sigmoid(x)."""
    s = layers.sigmoid(x)
    expected = layers.sigmoid_backward(dout, s)
    dx = call(sigmoid_backward, dout, x)
    check_shape("dx", dx, x.shape)
    check_close(
        "dx",
        dx,
        expected,
        hints=[
            (
                dout * s,
                "this looks like dout * s: the factor (1 - s) is missing, the derivative "
                "is s * (1 - s)",
            ),
            (
                dout * (1 - s),
                "this looks like dout * (1 - s): the factor s is missing, the "
                "derivative is s * (1 - s)",
            ),
            (
                s * (1 - s),
                "you returned the derivative of the sigmoid alone: multiply it by dout "
                "(chain rule)",
            ),
            (
                dout * x * (1 - x),
                "this looks like dout * x * (1 - x): use s = sigmoid(x), not x itself",
            ),
            (
                dout * s * (1 + s),
                "this looks like dout * s * (1 + s): the derivative is s * (1 - s)",
            ),
        ],
    )
    return dx


# ----------------------------------------------------------------------------- 6. gradient check


def f_exp(x: Array) -> float:
    """sum(exp(4 x)): curves strongly (f'' = 4 f'), so a one-sided difference is visibly off."""
    return float(np.sum(np.exp(4 * x)))


def central_difference(f: Callable[[Array], float], x: Array, h: float) -> Array:
    """The reference: (f(x + h e_i) - f(x - h e_i)) / (2 h) for every entry i of a copy of x."""
    x = np.array(x, dtype=np.float64, copy=True)
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f(x)
        x[i] = old - h
        f_minus = f(x)
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


_RESTORE = (
    "after evaluating f at x + h and at x - h, put the entry's old value back (x[i] = old) "
    "before moving on to the next entry; on return x must be exactly as it was"
)


def check_numerical_gradient(numerical_gradient: Callable, x: Array, C: Array, W: Array) -> None:
    """Central differences of f = sum(exp(4 x)) at the 1-D x, and of sum(C * W**3) at the 2-D W.

    With h = 1e-5 the one-sided difference of sum(exp(4 x)) is off by about 4 h / 2 = 2e-5 and
    the central one by about 16 h**2 / 6 ~ 3e-10; with h = 1e-3 the central one is off by about
    3e-6, so a function that ignores its ``h`` is caught.
    """
    h = 1e-5
    exact = 4 * np.exp(4 * x)
    forward = (np.exp(4 * (x + h)) - np.exp(4 * x)) / h
    backward = (np.exp(4 * x) - np.exp(4 * (x - h))) / h
    grad = call(numerical_gradient, f_exp, x, inplace_advice={"x": _RESTORE})
    check_shape("the gradient of sum(exp(4 x))", grad, x.shape)
    check_close(
        "the gradient of sum(exp(4 x))",
        grad,
        exact,
        rtol=1e-6,
        atol=1e-8,
        common_hints=False,
        hints=[
            (
                forward,
                "this looks like a one-sided difference (f(x + h) - f(x)) / h: its error is "
                "O(h), here about 2e-5. Use the central difference "
                "(f(x + h) - f(x - h)) / (2 h), whose error is O(h**2)",
            ),
            (
                backward,
                "this looks like a one-sided difference (f(x) - f(x - h)) / h: its error "
                "is O(h). Use the central difference (f(x + h) - f(x - h)) / (2 h)",
            ),
            (
                2 * exact,
                "twice the right value: the two points are 2 h apart, so divide by 2 h, not h",
            ),
            (exact / 2, "half the right value: divide by 2 h, not 4 h"),
            (-exact, "the sign is flipped: compute f(x + h) - f(x - h), in that order"),
        ],
    )

    def f_cubic(A: Array) -> float:
        return float(np.sum(C * A**3))

    grad_W = call(numerical_gradient, f_cubic, W, inplace_advice={"x": _RESTORE})
    rows, cols = W.shape
    check_shape(f"the gradient with respect to a {W.shape} array", grad_W, W.shape)
    exact_W = 3 * C * W**2
    grad_W = np.asarray(grad_W, dtype=np.float64)
    if np.allclose(grad_W, grad_W[:, :1]) and not np.allclose(exact_W, exact_W[:, :1]):
        raise ExerciseError(
            f"each row of the gradient of a {W.shape} array holds one repeated value: on a 2-D "
            "array x[i] is a whole row, so your loop moved a row at a time. Visit every entry, "
            "one at a time: for i in np.ndindex(x.shape)"
        )
    if np.any(grad_W == 0) and not np.any(exact_W == 0):
        raise ExerciseError(
            f"some entries of the gradient of a {W.shape} array are still 0: does your loop "
            "visit every entry of a 2-D x? np.ndindex(x.shape) yields every index tuple (i, j)"
        )
    check_close(
        f"the gradient with respect to a {W.shape} array",
        grad_W,
        exact_W,
        rtol=1e-6,
        atol=1e-8,
        common_hints=False,
        hints=[(exact_W.T, "looks transposed")] if rows == cols else [],
    )

    wide = 1e-3
    grad_wide = call(numerical_gradient, f_exp, x, h=wide, inplace_advice={"x": _RESTORE})
    check_close(
        f"the gradient with h = {wide:g}",
        grad_wide,
        central_difference(f_exp, x, wide),
        rtol=1e-9,
        atol=1e-12,
        common_hints=False,
        hints=[
            (
                exact,
                f"h is ignored: with h = {wide:g} the central difference differs from the "
                "exact derivative by about 3e-6, yours does not. Use the h you are given",
            )
        ],
    )


# ----------------------------------------------------------------------------- 7. Adam


def adam_reference(
    param: Array,
    grad: Array,
    m: Array,
    v: Array,
    t: int,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    *,
    correct_m: bool = True,
    correct_v: bool = True,
    square_root: bool = True,
    eps_inside: bool = False,
) -> tuple[Array, Array, Array]:
    """One Adam step, as new arrays (the keyword switches model the usual slips).

    m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g**2,
    param <- param - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1**t),
    v_hat = v / (1 - beta2**t).
    """
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t) if correct_m else m
    v_hat = v / (1 - beta2**t) if correct_v else v
    if eps_inside:
        denominator = np.sqrt(v_hat + eps)
    else:
        denominator = (np.sqrt(v_hat) if square_root else v_hat) + eps
    return param - lr * m_hat / denominator, m, v


def check_adam_step(
    adam_step: Callable,
    param0: Array,
    grads: list[Array],
    lr: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> Array:
    """Run the learner's adam_step for len(grads) steps from param0; compare every step."""
    settings = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps}
    param, m, v = param0.copy(), np.zeros_like(param0), np.zeros_like(param0)
    for t, g in enumerate(grads, start=1):
        param_ref, m_ref, v_ref = adam_reference(param, g, m, v, t, **settings)
        slips = [
            (
                adam_reference(param, g, m, v, t, **settings, correct_m=False, correct_v=False)[0],
                "this looks like Adam without bias correction: divide m by (1 - beta1**t) and v by "
                "(1 - beta2**t) before the update",
            ),
            (
                adam_reference(param, g, m, v, t, **settings, correct_v=False)[0],
                "only m is bias-corrected: divide v by (1 - beta2**t) too",
            ),
            (
                adam_reference(param, g, m, v, t, **settings, correct_m=False)[0],
                "only v is bias-corrected: divide m by (1 - beta1**t) too",
            ),
            (
                adam_reference(param, g, m, v, t, **settings, square_root=False)[0],
                "the square root is missing: divide by sqrt(v_hat) + eps, not v_hat + eps",
            ),
            (
                adam_reference(param, g, m, v, t, **settings, eps_inside=True)[0],
                "eps is inside the square root: PyTorch adds it after, sqrt(v_hat) + eps",
            ),
            (
                2 * param - param_ref,
                "the step goes uphill: subtract lr * m_hat / (sqrt(v_hat) + eps) from param",
            ),
            (
                param - (param - param_ref) * 1e-3 / lr,
                f"lr is ignored: the step is lr = {lr:g} times m_hat / (sqrt(v_hat) + eps); "
                "use the lr you are given",
            ),
            (
                param - lr * (m_ref / (1 - beta2**t)) / (np.sqrt(v_ref / (1 - beta1**t)) + eps),
                "the bias corrections are swapped: m_hat = m / (1 - beta1**t), "
                "v_hat = v / (1 - beta2**t)",
            ),
        ]
        if t > 1:
            slips.append(
                (
                    adam_reference(param, g, m, v, t - 1, **settings)[0],
                    "the bias correction is one step behind: t is the number of this "
                    "step, 1 for the first (use beta**t, not beta**(t - 1))",
                )
            )
        slips.append(
            (
                adam_reference(param, g, m, v, t + 1, **settings)[0],
                "the bias correction is one step ahead: t is already 1 at the first step "
                "(use beta**t, not beta**(t + 1))",
            )
        )
        result = call(adam_step, param, g, m, v, t, **settings)
        param_new, m_new, v_new = unpack(result, ["param", "m", "v"], "adam_step(...)")
        when = f"after step t = {t}"
        check_shape(f"m {when}", m_new, m.shape)
        check_close(
            f"m {when}",
            m_new,
            m_ref,
            hints=[
                (
                    (1 - beta1) * m + beta1 * g,
                    "m has beta1 and 1 - beta1 swapped: the old m keeps the weight beta1",
                ),
                ((1 - beta1) * g, "m forgets its past: m = beta1 * m + (1 - beta1) * grad"),
            ],
        )
        check_close(
            f"v {when}",
            v_new,
            v_ref,
            hints=[
                (beta2 * v + (1 - beta2) * g, "v averages grad; it should average grad**2"),
                ((1 - beta2) * v + beta2 * g**2, "v has beta2 and 1 - beta2 swapped"),
            ],
        )
        if t == 1 and not np.all(np.isfinite(np.asarray(param_new, dtype=np.float64))):
            raise ExerciseError(
                "param after step t = 1 is not finite: at the first step t = 1, so the bias "
                "corrections are 1 - beta1**1 and 1 - beta2**1 (beta**(t - 1) = 1 divides by 0)"
            )
        check_close(f"param {when}", param_new, param_ref, rtol=1e-9, atol=1e-12, hints=slips)
        param, m, v = param_ref, m_ref, v_ref
    return param
