"""Planted mistakes for solutions/01_autoencoders.ipynb: each makes its exercise's graded test fail.

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new) triples;
``old`` is an exact substring of that solution cell and ``new`` the learner's typical slip.
"""

MISTAKES = {
    "mse_loss": [
        (
            "the loss averaged over pixels too (np.mean)",
            "loss = float(np.sum(diff**2)) / batch",
            "loss = float(np.mean(diff**2))",
        ),
        (
            "the loss summed over the batch",
            "loss = float(np.sum(diff**2)) / batch",
            "loss = float(np.sum(diff**2))",
        ),
        (
            "the factor 2 missing in the gradient",
            "dx_hat = 2 * diff / batch",
            "dx_hat = diff / batch",
        ),
        (
            "the gradient's sign flipped",
            "dx_hat = 2 * diff / batch",
            "dx_hat = 2 * (x - x_hat) / batch",
        ),
        (
            "the gradient not divided by the batch size",
            "dx_hat = 2 * diff / batch",
            "dx_hat = 2 * diff",
        ),
    ],
    "bce_with_logits": [
        (
            "log(sigmoid(l)): -inf / NaN at logits of +-1e4",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "s = 1 / (1 + np.exp(-logits))\n"
            "    loss = float(np.sum(-x * np.log(s) - (1 - x) * np.log(1 - s))) / batch",
        ),
        (
            "softplus as log(1 + exp(l)): overflows at l = 1e4",
            "softplus = np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))",
            "softplus = np.log(1 + np.exp(logits))",
        ),
        (
            "probabilities clipped to avoid log(0)",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "s = np.clip(1 / (1 + np.exp(-logits)), 1e-7, 1 - 1e-7)\n"
            "    loss = float(np.sum(-x * np.log(s) - (1 - x) * np.log(1 - s))) / batch",
        ),
        (
            "the gradient's sign flipped",
            "dlogits = (sigmoid - x) / batch",
            "dlogits = (x - sigmoid) / batch",
        ),
        (
            "the gradient not divided by the batch size",
            "dlogits = (sigmoid - x) / batch",
            "dlogits = sigmoid - x",
        ),
        (
            "the loss averaged over pixels too",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "loss = float(np.mean(softplus - x * logits))",
        ),
        (
            "the x*l term with the wrong sign",
            "np.sum(softplus - x * logits)",
            "np.sum(softplus + x * logits)",
        ),
    ],
    "autoencoder_forward": [
        ("a ReLU after the last layer too", "if i < n - 1:", "if True:"),
        ("no ReLU at all (a linear network)", "if i < n - 1:", "if False:"),
        (
            "the decoder fed x instead of z",
            'mlp_forward(params, "decoder.", z)',
            'mlp_forward(params, "decoder.", x)',
        ),
        (
            "the first layer's weights used for every layer",
            'linear_forward(h, params[f"{prefix}W{i}"]',
            'linear_forward(h, params[f"{prefix}W0"]',
        ),
    ],
    "autoencoder_backward": [
        (
            "transposed weight gradient",
            'grads[f"{prefix}W{i}"] = h_in.T @ dh',
            'grads[f"{prefix}W{i}"] = dh.T @ h_in',
        ),
        ("the bias gradients forgotten", '        grads[f"{prefix}b{i}"] = dh.sum(axis=0)\n', ""),
        (
            "the bias gradient as a mean over the batch",
            'grads[f"{prefix}b{i}"] = dh.sum(axis=0)',
            'grads[f"{prefix}b{i}"] = dh.mean(axis=0)',
        ),
        (
            "the weight gradient divided by the batch size again",
            'grads[f"{prefix}W{i}"] = h_in.T @ dh',
            'grads[f"{prefix}W{i}"] = h_in.T @ dh / dh.shape[0]',
        ),
        (
            "the ReLU step skipped on the way down",
            "        if relu_cache is not None:\n            dh = relu_backward(dh, relu_cache)\n",
            "",
        ),
        ("dh passed down with W instead of W.T", "dh = dh @ W.T", "dh = dh @ W"),
        (
            "the encoder given dout instead of dz",
            'mlp_backward(dz, encoder_caches, "encoder.")',
            'mlp_backward(dout, encoder_caches, "encoder.")',
        ),
    ],
    "train_autoencoder": [
        ("no shuffling", "order = rng.permutation(n)", "order = np.arange(n)"),
        (
            "the minibatches sliced from the unshuffled data",
            "x_batch = x_train[order[start : start + batch_size]]",
            "x_batch = x_train[start : start + batch_size]",
        ),
        (
            "one permutation drawn before the loop and reused every epoch",
            "    for _epoch in range(epochs):\n        order = rng.permutation(n)\n",
            "    order = rng.permutation(n)\n    for _epoch in range(epochs):\n",
        ),
        (
            "not reproducible: a generator without the seed",
            "rng = np.random.default_rng(seed)",
            "rng = np.random.default_rng()",
        ),
        (
            "not reproducible: NumPy's global generator",
            "order = rng.permutation(n)",
            "order = np.random.permutation(n)",
        ),
        ("the optimizer step forgotten", "optimizer.step(grads)", "pass"),
        (
            "the mean of minibatch losses not weighted by size (last batch too heavy)",
            "total += loss * x_batch.shape[0]\n        losses.append(total / n)",
            "total += loss\n        losses.append(total / n)",
        ),
    ],
}
