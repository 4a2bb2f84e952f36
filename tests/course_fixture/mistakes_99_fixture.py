"""Planted mistakes for the fixture problem set tests/course_fixture/solutions/99_fixture.ipynb."""

MISTAKES = {
    "linear_forward": [
        ("the bias is forgotten", "out = x @ W + b", "out = x @ W"),
        ("the weight matrix is transposed", "out = x @ W + b", "out = (x @ W + b).T"),
    ],
    "mse": [
        ("summed over the batch instead of averaged", "/ x_hat.shape[0]", ""),
        (
            "mean over every entry",
            "np.sum((x_hat - x_true) ** 2) / x_hat.shape[0]",
            "np.mean((x_hat - x_true) ** 2)",
        ),
    ],
}
