"""Planted mistakes for solutions/01_autoencoders.ipynb: each must fail its own exercise's graded
test with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

MISTAKES = {
    "mse_loss": [
        (
            "the loss averaged over pixels too (np.mean)",
            "loss = float(np.sum(diff**2)) / batch",
            "loss = float(np.mean(diff**2))",
            "your loss is averaged over the pixels as well",
        ),
        (
            "the loss summed over the batch",
            "loss = float(np.sum(diff**2)) / batch",
            "loss = float(np.sum(diff**2))",
            "your loss is summed over the batch as well",
        ),
        (
            "a factor 1/2 in the loss",
            "loss = float(np.sum(diff**2)) / batch",
            "loss = 0.5 * float(np.sum(diff**2)) / batch",
            "this loss has no factor 1/2",
        ),
        (
            "the square root of the loss",
            "loss = float(np.sum(diff**2)) / batch",
            "loss = float(np.sqrt(np.sum(diff**2) / batch))",
            "you took a square root",
        ),
        (
            "the absolute error",
            "loss = float(np.sum(diff**2)) / batch",
            "loss = float(np.sum(np.abs(diff))) / batch",
            "this is the absolute error",
        ),
        (
            "the loss left as an array per example",
            "loss = float(np.sum(diff**2)) / batch",
            "loss = np.sum(diff**2, axis=1) / batch",
            "loss: expected a single number (float), got an array of shape (5,)",
        ),
        (
            "the factor 2 missing in the gradient",
            "dx_hat = 2 * diff / batch",
            "dx_hat = diff / batch",
            "the factor 2 is missing",
        ),
        (
            "the gradient's sign flipped",
            "dx_hat = 2 * diff / batch",
            "dx_hat = 2 * (x - x_hat) / batch",
            "the sign of your gradient is flipped",
        ),
        (
            "the gradient not divided by the batch size",
            "dx_hat = 2 * diff / batch",
            "dx_hat = 2 * diff",
            "your gradient is not divided by the batch size",
        ),
        (
            "the gradient divided by the number of pixels too",
            "dx_hat = 2 * diff / batch",
            "dx_hat = 2 * diff / diff.size",
            "your gradient is divided by the number of pixels as well",
        ),
        (
            "x_hat overwritten in place",
            "diff = x_hat - x",
            "x_hat -= x\n    diff = x_hat",
            "your function changed its argument `x_hat` in place",
        ),
    ],
    "bce_with_logits": [
        (
            "log(sigmoid(l)): -inf / NaN at logits of +-1e4",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "s = 1 / (1 + np.exp(-logits))\n"
            "    loss = float(np.sum(-x * np.log(s) - (1 - x) * np.log(1 - s))) / batch",
            "for logits of +-1e4 your loss is nan",
        ),
        (
            "softplus as log(1 + exp(l)): overflows at l = 1e4",
            "softplus = np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))",
            "softplus = np.log(1 + np.exp(logits))",
            "for logits of +-1e4 your loss is inf",
        ),
        (
            "probabilities clipped to avoid log(0)",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "s = np.clip(1 / (1 + np.exp(-logits)), 1e-7, 1 - 1e-7)\n"
            "    loss = float(np.sum(-x * np.log(s) - (1 - x) * np.log(1 - s))) / batch",
            "clipping the logits or the probabilities changes the loss",
        ),
        (
            "the gradient's sign flipped",
            "dlogits = (sigmoid - x) / batch",
            "dlogits = (x - sigmoid) / batch",
            "the sign of your gradient is flipped",
        ),
        (
            "the gradient not divided by the batch size",
            "dlogits = (sigmoid - x) / batch",
            "dlogits = sigmoid - x",
            "your gradient is not divided by the batch size",
        ),
        (
            "the loss averaged over pixels too",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "loss = float(np.mean(softplus - x * logits))",
            "your loss is averaged over the pixels as well",
        ),
        (
            "the loss summed over the batch",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "loss = float(np.sum(softplus - x * logits))",
            "your loss is summed over the batch as well",
        ),
        (
            "summed over the batch and averaged over the pixels (axes swapped)",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "loss = float(np.mean(np.sum(softplus - x * logits, axis=0)))",
            "the axes are swapped",
        ),
        (
            "the x*l term with the wrong sign",
            "np.sum(softplus - x * logits)",
            "np.sum(softplus + x * logits)",
            "the sign of the x*l term is wrong",
        ),
        (
            "softplus(-l) where softplus(l) belongs",
            "softplus = np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))",
            "softplus = np.maximum(-logits, 0) + np.log1p(np.exp(-np.abs(logits)))",
            "you used softplus(-l) where softplus(l) belongs",
        ),
        (
            "the loss with the wrong sign",
            "loss = float(np.sum(softplus - x * logits)) / batch",
            "loss = float(np.sum(x * logits - softplus)) / batch",
            "your loss has the wrong sign",
        ),
        (
            "the derivative of the sigmoid as the gradient",
            "dlogits = (sigmoid - x) / batch",
            "dlogits = sigmoid * (1 - sigmoid) / batch",
            "this is the derivative of sigmoid itself",
        ),
        (
            "logits where probabilities belong in the gradient",
            "dlogits = (sigmoid - x) / batch",
            "dlogits = (logits - x) / batch",
            "logits where probabilities belong",
        ),
        (
            "sigmoid(-l) in the gradient",
            "sigmoid = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))",
            "sigmoid = np.where(logits >= 0, e / (1 + e), 1 / (1 + e))",
            "1 - sigmoid(l) = sigmoid(-l)",
        ),
        (
            "the logits clipped in place",
            "    batch = x.shape[0]\n",
            "    batch = x.shape[0]\n    np.clip(logits, -50, 50, out=logits)\n",
            "your function changed its argument `logits` in place",
        ),
    ],
    "autoencoder_forward": [
        (
            "a ReLU after the last layer too",
            "if i < n - 1:",
            "if True:",
            "the encoder's LAST layer",
        ),
        (
            "no ReLU at all (a linear network)",
            "if i < n - 1:",
            "if False:",
            "your encoder looks linear",
        ),
        (
            "tanh in place of the ReLU",
            "h, relu_cache = relu_forward(h)",
            "h = np.tanh(h)\n            relu_cache = h",
            "your encoder uses tanh where the ReLU belongs",
        ),
        (
            "the decoder fed x instead of z",
            'mlp_forward(params, "decoder.", z)',
            'mlp_forward(params, "decoder.", x)',
            "the decoder takes z",
        ),
        (
            "the first layer's weights used for every layer",
            'linear_forward(h, params[f"{prefix}W{i}"]',
            'linear_forward(h, params[f"{prefix}W0"]',
            "Layer i of each MLP computes",
        ),
        (
            "z and out returned in the wrong order",
            "return z, out, cache",
            "return out, z, cache",
            "z and out are swapped",
        ),
        (
            "only the last layer's cache kept",
            "        caches.append((linear_cache, relu_cache))",
            "        caches = [(linear_cache, relu_cache)]",
            "the encoder's caches should hold one entry per layer (3), got 1",
        ),
        (
            "the linear cache alone, without the ReLU's",
            "        caches.append((linear_cache, relu_cache))",
            "        caches.append(linear_cache)",
            "the encoder's cache of layer 0 should start with linear_forward's cache",
        ),
        (
            "the encoder's caches only",
            "cache = (encoder_caches, decoder_caches)",
            "cache = encoder_caches",
            "cache should be the pair (encoder caches, decoder caches)",
        ),
        (
            "the ReLU computed but its cache dropped",
            "h, relu_cache = relu_forward(h)",
            "h, _ = relu_forward(h)",
            "relu_cache should be the ReLU output",
        ),
    ],
    "autoencoder_backward": [
        (
            "transposed weight gradient",
            'grads[f"{prefix}W{i}"] = h_in.T @ dh',
            'grads[f"{prefix}W{i}"] = dh.T @ h_in',
            "your gradient looks transposed",
        ),
        (
            "the bias gradients forgotten",
            '        grads[f"{prefix}b{i}"] = dh.sum(axis=0)\n',
            "",
            "no gradient for the biases",
        ),
        (
            "the bias gradient as a mean over the batch",
            'grads[f"{prefix}b{i}"] = dh.sum(axis=0)',
            'grads[f"{prefix}b{i}"] = dh.mean(axis=0)',
            "divided by the batch size once more",
        ),
        (
            "the weight gradient divided by the batch size again",
            'grads[f"{prefix}W{i}"] = h_in.T @ dh',
            'grads[f"{prefix}W{i}"] = h_in.T @ dh / dh.shape[0]',
            "decoder.W2: divided by the batch size once more",
        ),
        (
            "the ReLU step skipped on the way down",
            "        if relu_cache is not None:\n            dh = relu_backward(dh, relu_cache)\n",
            "",
            "decoder.b1: the ReLU step is skipped on the way down",
        ),
        (
            "dh passed down with W instead of W.T",
            "dh = dh @ W.T",
            "dh = dh @ W",
            "autoencoder_backward raised ValueError (in mlp_backward)",
        ),
        (
            "the encoder given dout instead of dz",
            'mlp_backward(dz, encoder_caches, "encoder.")',
            'mlp_backward(dout, encoder_caches, "encoder.")',
            "raised ValueError",
        ),
        (
            "the encoder's gradients not merged",
            "    grads.update(encoder_grads)\n",
            "",
            "grads has no entry for ['encoder.W0'",
        ),
        (
            "the ReLU's cache turned into a mask in place",
            "            dh = relu_backward(dh, relu_cache)",
            "            relu_cache[relu_cache > 0] = 1\n            dh = dh * relu_cache",
            "an array inside its argument `cache`, in place",
        ),
        (
            "the ReLU mask from the layer's input instead of its output",
            "dh = relu_backward(dh, relu_cache)",
            "dh = relu_backward(dh, h_in)",
            "Going down through layer i, dh is (batch, n_out of layer i)",
        ),
        (
            "the gradients stored under other names",
            'grads[f"{prefix}W{i}"] = h_in.T @ dh',
            'grads[f"W{i}"] = h_in.T @ dh',
            "grads has no entry for",
        ),
    ],
    "train_autoencoder": [
        ("no shuffling", "order = rng.permutation(n)", "order = np.arange(n)", "original order"),
        (
            "the minibatches sliced from the unshuffled data",
            "x_batch = x_train[order[start : start + batch_size]]",
            "x_batch = x_train[start : start + batch_size]",
            "original order",
        ),
        (
            "one permutation drawn before the loop and reused every epoch",
            "    for _epoch in range(epochs):\n        order = rng.permutation(n)\n",
            "    order = rng.permutation(n)\n    for _epoch in range(epochs):\n",
            "every epoch visits the examples in the same order",
        ),
        (
            "not reproducible: a generator without the seed",
            "rng = np.random.default_rng(seed)",
            "rng = np.random.default_rng()",
            "your loop is not reproducible",
        ),
        (
            "not reproducible: NumPy's global generator",
            "order = rng.permutation(n)",
            "order = np.random.permutation(n)",
            "your loop is not reproducible",
        ),
        (
            "the seed ignored: a fixed seed",
            "rng = np.random.default_rng(seed)",
            "rng = np.random.default_rng(0)",
            "your loop ignores the seed",
        ),
        (
            "the optimizer step forgotten",
            "optimizer.step(grads)",
            "pass",
            "params are exactly as they were",
        ),
        (
            "the mean of minibatch losses not weighted by size (last batch too heavy)",
            "total += loss * x_batch.shape[0]\n        losses.append(total / n)",
            "total += loss\n        losses.append(total / n)",
            "multiply each by its minibatch size first",
        ),
        (
            "the last minibatch's loss reported for the epoch",
            "losses.append(total / n)",
            "losses.append(loss)",
            "this is the loss of the epoch's last minibatch",
        ),
        (
            "the last, smaller minibatch dropped",
            "for start in range(0, n, batch_size):",
            "for start in range(0, n - batch_size + 1, batch_size):",
            "every epoch visits every example once",
        ),
        (
            "the optimizer re-created every epoch",
            "        order = rng.permutation(n)\n",
            "        order = rng.permutation(n)\n        optimizer = Adam(params, lr=lr)\n",
            "an Adam that starts afresh every epoch",
        ),
        (
            "two optimizer steps per minibatch",
            "optimizer.step(grads)",
            "optimizer.step(grads)\n            optimizer.step(grads)",
            "call optimizer.step(grads) exactly once per minibatch",
        ),
        (
            "the data normalised in place",
            "    n = x_train.shape[0]\n",
            "    n = x_train.shape[0]\n    x_train -= x_train.mean(axis=0)\n",
            "your function changed its argument `x_train` in place",
        ),
        (
            "the losses returned as one number",
            "losses.append(total / n)",
            "losses = total / n",
            "should return a list with one mean loss per epoch",
        ),
    ],
}
