"""Planted mistakes for solutions/00_backprop.ipynb: each must fail its own exercise's graded test
with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

MISTAKES = {
    "linear_forward": [
        ("the bias is forgotten", "out = x @ W + b", "out = x @ W", "the bias is missing"),
        ("the bias subtracted", "out = x @ W + b", "out = x @ W - b", "the bias is subtracted"),
        (
            "the bias added twice",
            "out = x @ W + b",
            "out = x @ W + 2 * b",
            "the bias is added twice",
        ),
        (
            "W transposed, as in PyTorch's layout",
            "out = x @ W + b",
            "out = x @ W.T + b",
            "W needs no transpose here",
        ),
        (
            "an entry-by-entry product instead of the matrix product",
            "out = x @ W + b",
            "out = x * W + b",
            "`@` is the matrix product",
        ),
        ("the cache lacks b", "cache = (x, W, b)", "cache = (x, W)", "cache should be the tuple"),
        (
            "the cache in the wrong order",
            "cache = (x, W, b)",
            "cache = (W, x, b)",
            "cache should be (x, W, b) in that order",
        ),
        (
            "only out returned, no cache",
            "return out, cache",
            "return out",
            "expected a tuple, got an array of shape (4, 5)",
        ),
        (
            "the output cast to float32",
            "out = x @ W + b",
            "out = (x @ W + b).astype(np.float32)",
            "out has dtype float32, but x, W and b are float64",
        ),
    ],
    "linear_backward": [
        (
            "transposed weight gradient",
            "dW = x.T @ dout",
            "dW = dout.T @ x",
            "dW looks transposed: it has shape (5, 3) but W is (3, 5)",
        ),
        (
            "db as the mean over the batch",
            "db = dout.sum(axis=0)",
            "db = dout.mean(axis=0)",
            "this looks like the MEAN of dout over the batch",
        ),
        (
            "dx with W instead of W.T",
            "dx = dout @ W.T",
            "dx = dout @ W",
            "Which of W and W.T turns (4, 5) into (4, 3)?",
        ),
        (
            "db summed over every axis",
            "db = dout.sum(axis=0)",
            "db = dout.sum()",
            "db is a single number",
        ),
        (
            "db summed over the outputs",
            "db = dout.sum(axis=0)",
            "db = dout.sum(axis=1)",
            "db has shape (4,), one value per example",
        ),
        (
            "db forgotten (left at zero)",
            "db = dout.sum(axis=0)",
            "db = np.zeros_like(b)",
            "all zeros: the bias gets a gradient too",
        ),
        ("db set to b itself", "db = dout.sum(axis=0)", "db = b", "equal to b"),
        (
            "dW divided by the batch size",
            "dW = x.T @ dout",
            "dW = x.T @ dout / len(x)",
            "divided by the batch size: parameter gradients SUM over the batch",
        ),
        (
            "dx with a flipped sign",
            "dx = dout @ W.T",
            "dx = -dout @ W.T",
            "dx: the sign is flipped",
        ),
        (
            "dW as x @ dout (a shape error)",
            "dW = x.T @ dout",
            "dW = x @ dout",
            "Which product of x, dout and their transposes is (n_in, n_out)?",
        ),
        ("dW twice too large", "dW = x.T @ dout", "dW = 2 * x.T @ dout", "dW: off by a factor 2"),
    ],
    "relu_backward": [
        (
            "mask taken from dout instead of x",
            "dout * (x > 0)",
            "dout * (dout > 0)",
            "your mask looks at dout",
        ),
        (
            "the mask returned without dout",
            "dx = dout * (x > 0)",
            "dx = (x > 0) * 1.0",
            "you returned the mask [x > 0] alone",
        ),
        ("gradient 1 at x == 0", "(x > 0)", "(x >= 0)", "use x > 0, not x >= 0"),
        ("the mask inverted", "(x > 0)", "(x < 0)", "the mask is inverted"),
        (
            "the forward pass returned",
            "dx = dout * (x > 0)",
            "dx = np.maximum(x, 0)",
            "you returned the forward pass",
        ),
        (
            "dout multiplied by relu(x)",
            "dx = dout * (x > 0)",
            "dx = dout * np.maximum(x, 0)",
            "you multiplied dout by relu(x) itself",
        ),
        (
            "dout zeroed in place",
            "dx = dout * (x > 0)",
            "dout[x <= 0] = 0\n    dx = dout",
            "your function changed its argument `dout` in place",
        ),
        (
            "x clipped in place",
            "dx = dout * (x > 0)",
            "np.maximum(x, 0, out=x)\n    dx = dout * (x > 0)",
            "your function changed its argument `x` in place",
        ),
    ],
    "tanh_backward": [
        ("1 - tanh instead of 1 - tanh**2", "1 - t**2", "1 - t", "dout * (1 - tanh(x)):"),
        ("x used where tanh(x) belongs", "t = np.tanh(x)", "t = x", "dout * (1 - x**2)"),
        (
            "dout forgotten (no chain rule)",
            "dx = dout * (1 - t**2)",
            "dx = 1 - t**2",
            "you returned the derivative of tanh alone",
        ),
        ("(1 - tanh)**2", "(1 - t**2)", "(1 - t) ** 2", "dout * (1 - tanh(x))**2"),
        (
            "the forward value times dout",
            "dx = dout * (1 - t**2)",
            "dx = dout * t",
            "the forward value",
        ),
        (
            "sech instead of sech**2",
            "dx = dout * (1 - t**2)",
            "dx = dout / np.cosh(x)",
            "sech(x)**2",
        ),
        (
            "a flipped sign",
            "dx = dout * (1 - t**2)",
            "dx = dout * (t**2 - 1)",
            "the sign is flipped",
        ),
        (
            "tanh written into x in place",
            "t = np.tanh(x)",
            "t = np.tanh(x, out=x)",
            "your function changed its argument `x` in place",
        ),
    ],
    "sigmoid_backward": [
        (
            "the factor (1 - s) missing",
            "dout * s * (1 - s)",
            "dout * s",
            "the factor (1 - s) is missing",
        ),
        ("the factor s missing", "dout * s * (1 - s)", "dout * (1 - s)", "the factor s is missing"),
        (
            "dout forgotten (no chain rule)",
            "dx = dout * s * (1 - s)",
            "dx = s * (1 - s)",
            "you returned the derivative of the sigmoid alone",
        ),
        (
            "x used where sigmoid(x) belongs",
            "dout * s * (1 - s)",
            "dout * x * (1 - x)",
            "use s = sigmoid(x)",
        ),
        (
            "1 + s instead of 1 - s",
            "dout * s * (1 - s)",
            "dout * s * (1 + s)",
            "dout * s * (1 + s)",
        ),
        ("a flipped sign", "dout * s * (1 - s)", "dout * s * (s - 1)", "the sign is flipped"),
        (
            "the sigmoid written into x in place",
            "s = 1 / (1 + np.exp(-x))",
            "x *= -1\n    s = 1 / (1 + np.exp(x))",
            "your function changed its argument `x` in place",
        ),
    ],
    "numerical_gradient": [
        (
            "one-sided (forward) difference instead of central",
            "        x[i] = old - h\n"
            "        f_minus = f(x)\n"
            "        x[i] = old\n"
            "        grad[i] = (f_plus - f_minus) / (2 * h)",
            "        x[i] = old\n        f_minus = f(x)\n        grad[i] = (f_plus - f_minus) / h",
            "one-sided difference (f(x + h) - f(x)) / h",
        ),
        (
            "one-sided (backward) difference",
            "        x[i] = old + h\n"
            "        f_plus = f(x)\n"
            "        x[i] = old - h\n"
            "        f_minus = f(x)\n"
            "        x[i] = old\n"
            "        grad[i] = (f_plus - f_minus) / (2 * h)",
            "        f_plus = f(x)\n"
            "        x[i] = old - h\n"
            "        f_minus = f(x)\n"
            "        x[i] = old\n"
            "        grad[i] = (f_plus - f_minus) / h",
            "one-sided difference (f(x) - f(x - h)) / h",
        ),
        ("divided by h instead of 2h", "/ (2 * h)", "/ h", "divide by 2 h, not h"),
        ("divided by 4h", "/ (2 * h)", "/ (4 * h)", "divide by 2 h, not 4 h"),
        (
            "f(x - h) - f(x + h): flipped sign",
            "(f_plus - f_minus)",
            "(f_minus - f_plus)",
            "compute f(x + h) - f(x - h), in that order",
        ),
        (
            "x not restored",
            "        x[i] = old\n        grad[i]",
            "        grad[i]",
            "changed its argument `x` in place: after evaluating f",
        ),
        (
            "loop over the first axis only",
            "np.ndindex(x.shape)",
            "range(x.shape[0])",
            "your loop moved a row at a time",
        ),
        ("h ignored", "x[i] = old + h", "h = 1e-5\n        x[i] = old + h", "h is ignored"),
    ],
    "adam_step": [
        (
            "no bias correction",
            "m_hat = m / (1 - beta1**t)\n    v_hat = v / (1 - beta2**t)",
            "m_hat = m\n    v_hat = v",
            "Adam without bias correction",
        ),
        (
            "only m bias-corrected",
            "v_hat = v / (1 - beta2**t)",
            "v_hat = v",
            "only m is bias-corrected",
        ),
        (
            "only v bias-corrected",
            "m_hat = m / (1 - beta1**t)",
            "m_hat = m",
            "only v is bias-corrected",
        ),
        (
            "the square root missing",
            "np.sqrt(v_hat) + eps",
            "v_hat + eps",
            "the square root is missing",
        ),
        (
            "eps inside the square root",
            "np.sqrt(v_hat) + eps",
            "np.sqrt(v_hat + eps)",
            "eps is inside",
        ),
        (
            "v averages grad instead of grad**2",
            "(1 - beta2) * grad**2",
            "(1 - beta2) * grad",
            "v averages grad; it should average grad**2",
        ),
        (
            "beta1 and 1 - beta1 swapped",
            "beta1 * m + (1 - beta1) * grad",
            "(1 - beta1) * m + beta1 * grad",
            "m has beta1 and 1 - beta1 swapped",
        ),
        (
            "beta2 and 1 - beta2 swapped",
            "beta2 * v + (1 - beta2) * grad**2",
            "(1 - beta2) * v + beta2 * grad**2",
            "v has beta2 and 1 - beta2 swapped",
        ),
        (
            "m without its past",
            "m = beta1 * m + (1 - beta1) * grad",
            "m = (1 - beta1) * grad",
            "m forgets its past",
        ),
        ("the step uphill", "param = param - lr", "param = param + lr", "the step goes uphill"),
        (
            "the parameter updated in place",
            "param = param - lr",
            "param -= lr",
            "your function changed its argument `param` in place",
        ),
        (
            "the moments updated in place",
            "m = beta1 * m + (1 - beta1) * grad",
            "m *= beta1\n    m += (1 - beta1) * grad",
            "your function changed its argument `m` in place",
        ),
        (
            "lr ignored",
            "param = param - lr *",
            "param = param - 1e-3 *",
            "lr is ignored: the step is lr = 0.02",
        ),
        (
            "bias corrections swapped",
            "m_hat = m / (1 - beta1**t)\n    v_hat = v / (1 - beta2**t)",
            "m_hat = m / (1 - beta2**t)\n    v_hat = v / (1 - beta1**t)",
            "the bias corrections are swapped",
        ),
        (
            "the bias correction with t - 1",
            "m_hat = m / (1 - beta1**t)\n    v_hat = v / (1 - beta2**t)",
            "m_hat = m / (1 - beta1 ** (t - 1))\n    v_hat = v / (1 - beta2 ** (t - 1))",
            "beta**(t - 1) = 1 divides by 0",
        ),
        (
            "the bias correction with t + 1",
            "m_hat = m / (1 - beta1**t)\n    v_hat = v / (1 - beta2**t)",
            "m_hat = m / (1 - beta1 ** (t + 1))\n    v_hat = v / (1 - beta2 ** (t + 1))",
            "the bias correction is one step ahead",
        ),
    ],
}
