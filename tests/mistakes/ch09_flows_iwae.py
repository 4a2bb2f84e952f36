"""Planted mistakes for solutions/09_flows_iwae.ipynb: each must fail its own exercise's graded test
with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

LOG_DET = "log_det = np.log(np.abs(1 + psi @ u_hat))"
PSI = "psi = (1 - h**2)[:, None] * w"
STEP = "z_new = z + h[:, None] * u_hat"
DDET = "ddet = dlog_det / det"
CORRECTION = "u_hat = u + (m - a) * w / (w @ w)"
SOFTPLUS = "m = -1 + np.logaddexp(0, a)"
BOUND = "bound = m + np.log(w.sum(axis=0)) - np.log(k)"

MISTAKES = {
    "planar_step": [
        (
            "tanh' written as 1 - tanh",
            PSI,
            "psi = (1 - h)[:, None] * w",
            "tanh′(s) is 1 − tanh²(s), not 1 − tanh(s)",
        ),
        (
            "psi with tanh instead of its derivative",
            PSI,
            "psi = h[:, None] * w",
            "ψ uses tanh(s) where its derivative belongs",
        ),
        (
            "the log forgotten",
            LOG_DET,
            "log_det = np.abs(1 + psi @ u_hat)",
            "this is the determinant itself",
        ),
        (
            "the log-det with a flipped sign",
            LOG_DET,
            "log_det = -np.log(np.abs(1 + psi @ u_hat))",
            "the log-det has the wrong sign",
        ),
        (
            "the 1 + of the determinant lemma forgotten",
            LOG_DET,
            "log_det = np.log(np.abs(psi @ u_hat))",
            "the 1 + is missing",
        ),
        (
            "the log-det summed over the batch",
            LOG_DET,
            "log_det = np.sum(np.log(np.abs(1 + psi @ u_hat)))",
            "one number per point",
        ),
        (
            "the log-det averaged over the batch",
            LOG_DET,
            "log_det = np.mean(np.log(np.abs(1 + psi @ u_hat)))",
            "log_det is a single number",
        ),
        (
            "the step along w instead of u_hat",
            STEP,
            "z_new = z + h[:, None] * w",
            "z_new moves along w",
        ),
        ("tanh forgotten", "h = np.tanh(s)", "h = s", "tanh is missing"),
        ("b forgotten", "s = z @ w + b  # (batch,)", "s = z @ w  # (batch,)", "b is missing"),
        (
            "psi dotted with w instead of u_hat",
            LOG_DET,
            "log_det = np.log(np.abs(1 + psi @ w))",
            "this uses wᵀw",
        ),
        (
            "z changed in place",
            STEP,
            "z += h[:, None] * u_hat\n    z_new = z",
            "changed its argument `z` in place",
        ),
        (
            "the Jacobian's ||w||^2 in the denominator",
            LOG_DET,
            "log_det = np.log(np.abs(1 + psi @ u_hat / (w @ w)))",
            "ûᵀψ is divided by ‖w‖²",
        ),
    ],
    "planar_step_backward": [
        (
            "the log-det path forgotten",
            DDET,
            "ddet = np.zeros_like(det)",
            "the log-det's gradient is missing",
        ),
        ("d log(det) taken as det", DDET, "ddet = dlog_det * det", "d log(det) / d det is 1 / det"),
        (
            "d(1 - h^2)/dh with the wrong sign",
            "dh = dh + dt * (-2 * h)",
            "dh = dh + dt * (2 * h)",
            "this uses +2h",
        ),
        (
            "the log-det's path through tanh' forgotten",
            "dh = dh + dt * (-2 * h)",
            "dh = dh",
            "the log-det's path through tanh′(s) is missing",
        ),
        (
            "dz_new not passed through to dz",
            "dz = dz_new + np.outer(ds, w)",
            "dz = np.outer(ds, w)",
            "dz misses dz_new",
        ),
        (
            "dw without its term through s",
            "dw = dw + ds @ z",
            "dw = dw",
            "dw misses the term through s",
        ),
        (
            "dw without its term through the log-det",
            "dw = duw * u_hat",
            "dw = np.zeros_like(w)",
            "dw misses the term through the log-det",
        ),
        (
            "du_hat without its term through the log-det",
            "du_hat = du_hat + duw * w",
            "du_hat = du_hat",
            "du_hat misses the term through the log-det",
        ),
        (
            "du_hat kept per point",
            "du_hat = h @ dz_new",
            "du_hat = h[:, None] * dz_new",
            "du_hat has shape (6, 3), one row per point",
        ),
        ("ds without tanh'", "ds = dh * t", "ds = dh", "ds misses tanh′(s)"),
        (
            "db averaged over the batch",
            "db = float(np.sum(ds))",
            "db = float(np.mean(ds))",
            "db is averaged over the batch",
        ),
        (
            "db kept per point",
            "db = float(np.sum(ds))",
            "db = ds",
            "db has shape (6,), one value per point",
        ),
        (
            "dh through w instead of u_hat",
            "dh = dz_new @ u_hat",
            "dh = dz_new @ w",
            "dh uses w where û belongs",
        ),
    ],
    "constrain_u": [
        (
            "||w|| for ||w||^2",
            CORRECTION,
            "u_hat = u + (m - a) * w / np.sqrt(w @ w)",
            "this divides by ‖w‖ where ‖w‖² belongs",
        ),
        (
            "||w|| by np.linalg.norm",
            CORRECTION,
            "u_hat = u + (m - a) * w / np.linalg.norm(w)",
            "this divides by ‖w‖ where ‖w‖² belongs",
        ),
        ("the -1 of m forgotten", SOFTPLUS, "m = np.logaddexp(0, a)", "the −1 is missing"),
        (
            "softplus written as log(1 + exp(a))",
            SOFTPLUS,
            "m = -1 + np.log(1 + np.exp(a))",
            "exp(800) overflows to inf",
        ),
        (
            "the correction with the wrong sign",
            CORRECTION,
            "u_hat = u - (m - a) * w / (w @ w)",
            "the correction has the wrong sign",
        ),
        ("the - a forgotten", CORRECTION, "u_hat = u + m * w / (w @ w)", "the − wᵀu is missing"),
        (
            "no division by ||w||^2",
            CORRECTION,
            "u_hat = u + (m - a) * w",
            "the division by ‖w‖² is missing",
        ),
        ("a from u^T u", "a = w @ u", "a = u @ u", "a is uᵀu"),
        ("m(a) with exp instead of softplus", SOFTPLUS, "m = -1 + np.exp(a)", "m(a) uses exp(a)"),
        (
            "u changed in place",
            CORRECTION,
            "u += (m - a) * w / (w @ w)\n    u_hat = u",
            "changed its argument `u` in place",
        ),
    ],
    "iwae_loss_and_dlogw": [
        (
            "the maximum not subtracted",
            "w = np.exp(log_w - m)  # (k, batch), the largest is 1\n    " + BOUND,
            "w = np.exp(log_w)\n    bound = np.log(w.sum(axis=0)) - np.log(k)",
            "underflows to 0",
        ),
        (
            "one maximum for the whole batch",
            "m = log_w.max(axis=0)",
            "m = log_w.max()",
            "examples' log-weights differ by up to",
        ),
        (
            "the maximum not added back",
            BOUND,
            "bound = np.log(w.sum(axis=0)) - np.log(k)",
            "the maximum is subtracted but not added back",
        ),
        (
            "the - log k forgotten",
            BOUND,
            "bound = m + np.log(w.sum(axis=0))",
            "the − log k is missing",
        ),
        (
            "log k subtracted twice",
            BOUND,
            "bound = m + np.log(w.mean(axis=0)) - np.log(k)",
            "log k is subtracted twice",
        ),
        (
            "the mean of the log-weights (the ELBO) as the bound",
            BOUND,
            "bound = log_w.mean(axis=0)",
            "this is the mean of the log-weights",
        ),
        (
            "the loss summed over the batch",
            "loss = float(-bound.mean())",
            "loss = float(-bound.sum())",
            "summed over the batch: the loss is a mean",
        ),
        (
            "uniform weights 1/k",
            "dlog_w = -w_tilde / batch",
            "dlog_w = -np.ones_like(log_w) / (k * batch)",
            "every sample gets the same weight 1/k",
        ),
        (
            "unnormalised weights",
            "dlog_w = -w_tilde / batch",
            "dlog_w = -w / batch",
            "the weights are not normalised",
        ),
        (
            "weights normalised over the batch",
            "w_tilde = w / w.sum(axis=0)",
            "w_tilde = w / w.sum(axis=1, keepdims=True)",
            "normalised over the batch (axis 1)",
        ),
        (
            "the 1/batch of dlog_w forgotten",
            "dlog_w = -w_tilde / batch",
            "dlog_w = -w_tilde",
            "the 1/batch is missing",
        ),
        (
            "dlog_w with a flipped sign",
            "dlog_w = -w_tilde / batch",
            "dlog_w = w_tilde / batch",
            "the sign is flipped",
        ),
        (
            "dlog_w divided by k",
            "dlog_w = -w_tilde / batch",
            "dlog_w = -w_tilde / (k * batch)",
            "the normalised weights already sum to 1",
        ),
        (
            "log_w changed in place",
            "w = np.exp(log_w - m)",
            "log_w -= m\n    w = np.exp(log_w)",
            "changed its argument `log_w` in place",
        ),
    ],
}
