"""Planted mistakes for solutions/00_backprop.ipynb: each must make its exercise's graded test fail.

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new) triples;
``old`` is an exact substring of that solution cell and ``new`` the learner's typical slip.
"""

MISTAKES = {
    "linear_forward": [
        ("the bias is forgotten", "out = x @ W + b", "out = x @ W"),
        ("W transposed, as in PyTorch's layout", "out = x @ W + b", "out = x @ W.T + b"),
        ("the cache lacks b", "cache = (x, W, b)", "cache = (x, W)"),
    ],
    "linear_backward": [
        ("transposed weight gradient", "dW = x.T @ dout", "dW = dout.T @ x"),
        ("db as the mean over the batch", "db = dout.sum(axis=0)", "db = dout.mean(axis=0)"),
        ("dx with W instead of W.T", "dx = dout @ W.T", "dx = dout @ W"),
        ("db summed over every axis", "db = dout.sum(axis=0)", "db = dout.sum()"),
        ("db summed over the outputs", "db = dout.sum(axis=0)", "db = dout.sum(axis=1)"),
        ("db forgotten (left at zero)", "db = dout.sum(axis=0)", "db = np.zeros_like(b)"),
        ("dW divided by the batch size", "dW = x.T @ dout", "dW = x.T @ dout / len(x)"),
    ],
    "relu_backward": [
        ("mask taken from dout instead of x", "dout * (x > 0)", "dout * (dout > 0)"),
        ("the mask returned without dout", "dx = dout * (x > 0)", "dx = (x > 0) * 1.0"),
        ("gradient 1 at x == 0", "(x > 0)", "(x >= 0)"),
    ],
    "tanh_backward": [
        ("1 - tanh instead of 1 - tanh**2", "1 - t**2", "1 - t"),
        ("x used where tanh(x) belongs", "t = np.tanh(x)", "t = x"),
        ("dout forgotten (no chain rule)", "dx = dout * (1 - t**2)", "dx = 1 - t**2"),
        ("(1 - tanh)**2", "(1 - t**2)", "(1 - t) ** 2"),
    ],
    "sigmoid_backward": [
        ("the factor (1 - s) missing", "dout * s * (1 - s)", "dout * s"),
        ("dout forgotten (no chain rule)", "dx = dout * s * (1 - s)", "dx = s * (1 - s)"),
        ("x used where sigmoid(x) belongs", "dout * s * (1 - s)", "dout * x * (1 - x)"),
    ],
    "numerical_gradient": [
        (
            "one-sided (forward) difference instead of central",
            "        x[i] = old - h\n"
            "        f_minus = f(x)\n"
            "        x[i] = old\n"
            "        grad[i] = (f_plus - f_minus) / (2 * h)",
            "        x[i] = old\n        f_minus = f(x)\n        grad[i] = (f_plus - f_minus) / h",
        ),
        ("divided by h instead of 2h", "/ (2 * h)", "/ h"),
        ("f(x - h) - f(x + h): flipped sign", "(f_plus - f_minus)", "(f_minus - f_plus)"),
        ("x not restored", "        x[i] = old\n        grad[i]", "        grad[i]"),
        ("loop over the first axis only", "np.ndindex(x.shape)", "range(x.shape[0])"),
    ],
    "adam_step": [
        (
            "no bias correction",
            "m_hat = m / (1 - beta1**t)\n    v_hat = v / (1 - beta2**t)",
            "m_hat = m\n    v_hat = v",
        ),
        ("the square root missing", "np.sqrt(v_hat) + eps", "v_hat + eps"),
        ("eps inside the square root", "np.sqrt(v_hat) + eps", "np.sqrt(v_hat + eps)"),
        ("v averages grad instead of grad**2", "(1 - beta2) * grad**2", "(1 - beta2) * grad"),
        (
            "beta1 and 1 - beta1 swapped",
            "beta1 * m + (1 - beta1) * grad",
            "(1 - beta1) * m + beta1 * grad",
        ),
        ("parameter updated in place", "param = param - lr", "param -= lr"),
    ],
}
