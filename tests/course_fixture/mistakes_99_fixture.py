"""Planted mistakes for the fixture problem set tests/course_fixture/solutions/99_fixture.ipynb.

Each entry is (description, old, new, expected): ``expected`` must occur in the message of the
graded cell that catches the mistake.
"""

MISTAKES = {
    "linear_forward": [
        ("the bias is forgotten", "out = x @ W + b", "out = x @ W", "the bias b is missing"),
        (
            "the output is transposed",
            "out = x @ W + b",
            "out = (x @ W + b).T",
            "expected shape (4, 2), got (2, 4) — looks transposed",
        ),
    ],
    "mse": [
        (
            "summed over the batch instead of averaged",
            "/ x_hat.shape[0]",
            "",
            "4 times too large — 4 is the batch size",
        ),
        (
            "mean over every entry",
            "np.sum((x_hat - x_true) ** 2) / x_hat.shape[0]",
            "np.mean((x_hat - x_true) ** 2)",
            "expected 1.18182, got 0.393939",
        ),
    ],
}
