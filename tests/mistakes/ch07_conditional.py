"""Planted mistakes for solutions/07_conditional.ipynb: each must fail its own exercise's graded
test with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

ONE_HOT = "c = np.eye(n_classes)[labels]"
ENCODER = "encoder_input = np.concatenate([x, c], axis=1)"
DECODER = "decoder_input = np.concatenate([z, c], axis=1)"
SLICE = "dz = d_decoder_input[:, :z_dim]"
SHIFT = "shifted = logits - logits.max(axis=1, keepdims=True)"
LOG_PI = "log_pi = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))"
U = "u = np.sum(pi * bounds, axis=1) - entropy"
G = "g = bounds + log_pi + 1"
SOFTMAX_BACKWARD = "dlogits = pi * (g - np.sum(pi * g, axis=1, keepdims=True))"
TOTAL = "loss = float(labelled_sum + unlabelled_sum + alpha * classification_sum) / batch"
CE = "classification_sum = -np.sum(log_pi[rows, y])"
ENCODE = "mu, logvar = vae.encode(x[start:start + batch_size])"
LOOP = "for start in range(0, len(x), batch_size):"

MISTAKES = {
    "label_inputs": [
        (
            "the label missing from the encoder",
            ENCODER,
            "encoder_input = x",
            "the label is missing from the encoder q(z | x, y)'s input",
        ),
        (
            "the label missing from the decoder",
            DECODER,
            "decoder_input = z",
            "the label is missing from the decoder p(x | z, y)'s input",
        ),
        (
            "the integer label appended as one column",
            ONE_HOT,
            "c = labels[:, None].astype(float)",
            "one extra column, the integer label itself",
        ),
        (
            "the one-hot rows shifted by one (labels - 1)",
            ONE_HOT,
            "c = np.eye(n_classes)[labels - 1]",
            "one column too far left",
        ),
        (
            "the one-hot label put first",
            ENCODER,
            "encoder_input = np.concatenate([c, x], axis=1)",
            "the one-hot label comes first",
        ),
        (
            "the one-hot rows inverted",
            ONE_HOT,
            "c = 1 - np.eye(n_classes)[labels]",
            "the one-hot rows are inverted",
        ),
        (
            "one-hot rows one column too narrow",
            ONE_HOT,
            "c = np.eye(n_classes - 1)[np.minimum(labels, n_classes - 2)]",
            "one too few; np.eye(n_classes) has one column per class",
        ),
    ],
    "decoder_input_backward": [
        (
            "the label columns' gradient kept",
            SLICE,
            "dz = d_decoder_input",
            "the label columns' gradient is still in it",
        ),
        (
            "the label columns returned instead of z's",
            SLICE,
            "dz = d_decoder_input[:, z_dim:]",
            "these are the label columns' gradients",
        ),
        (
            "the last z_dim columns",
            SLICE,
            "dz = d_decoder_input[:, -z_dim:]",
            "these are the last 3 columns of d[z, c]: z comes first",
        ),
        (
            "the sign flipped",
            SLICE,
            "dz = -d_decoder_input[:, :z_dim]",
            "the sign is flipped: slicing a gradient keeps its sign",
        ),
        (
            "one column too few",
            SLICE,
            "dz = d_decoder_input[:, :z_dim - 1]",
            "one column too few",
        ),
        (
            "one column too many",
            SLICE,
            "dz = d_decoder_input[:, :z_dim + 1]",
            "one column too many",
        ),
    ],
    "unlabelled_bound": [
        (
            "the entropy with the wrong sign",
            U,
            "u = np.sum(pi * bounds, axis=1) + entropy",
            "the entropy enters with the wrong sign",
        ),
        (
            "the entropy term forgotten",
            U,
            "u = np.sum(pi * bounds, axis=1)",
            "the entropy term is missing",
        ),
        (
            "L(x, y) not weighted by q(y|x) (a plain mean over labels)",
            U,
            "u = np.mean(bounds, axis=1) - entropy",
            "averaged over the labels with equal weights: weight it by the classifier's",
        ),
        (
            "L(x, y) summed over labels without weights",
            U,
            "u = np.sum(bounds, axis=1) - entropy",
            "summed over the labels without weights",
        ),
        (
            "the smallest bound instead of the expectation",
            U,
            "u = np.min(bounds, axis=1)",
            "this is the smallest L(x, y) over the labels",
        ),
        (
            "softmax without the maximum subtracted (overflow)",
            SHIFT,
            "shifted = logits",
            "np.exp of large logits overflows",
        ),
        (
            "log of the softmax (0 * log 0 = NaN)",
            LOG_PI,
            "log_pi = np.log(np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True))",
            "take log pi from the log-softmax",
        ),
        (
            "the softmax over the batch axis",
            SHIFT + "  # every exp() in (0, 1]\n    " + LOG_PI,
            "shifted = logits - logits.max(axis=0, keepdims=True)\n"
            "    log_pi = shifted - np.log(np.sum(np.exp(shifted), axis=0, keepdims=True))",
            "the softmax runs over the batch (axis 0)",
        ),
        (
            "the entropy in bits",
            "entropy = -np.sum(pi * log_pi, axis=1)",
            "entropy = -np.sum(pi * log_pi, axis=1) / np.log(2)",
            "the entropy is in bits",
        ),
        (
            "one number for the whole batch",
            U,
            "u = np.sum(pi * bounds) - np.sum(entropy)",
            "U is a single number: return one value per row",
        ),
        (
            "the logits shifted in place",
            SHIFT,
            "logits -= logits.max(axis=1, keepdims=True)\n    shifted = logits",
            "your function changed its argument `logits` in place",
        ),
    ],
    "unlabelled_bound_backward": [
        (
            "dU/dpi returned without the softmax backward",
            SOFTMAX_BACKWARD,
            "dlogits = g",
            "this is dU/dpi = L + log pi + 1, the gradient for the probabilities",
        ),
        (
            "the softmax backward without its second term",
            SOFTMAX_BACKWARD,
            "dlogits = pi * g",
            "the softmax backward is missing its second term",
        ),
        (
            "only the diagonal of the softmax Jacobian",
            SOFTMAX_BACKWARD,
            "dlogits = pi * (1 - pi) * g",
            "only the diagonal of the softmax Jacobian is used",
        ),
        ("the entropy's part forgotten", G, "g = bounds", "the entropy's part is missing"),
        (
            "the entropy's part with the wrong sign",
            G,
            "g = bounds - log_pi - 1",
            "the entropy's part has the wrong sign",
        ),
        (
            "the sum of the softmax backward over the batch axis",
            SOFTMAX_BACKWARD,
            "dlogits = pi * (g - np.sum(pi * g, axis=0, keepdims=True))",
            "the sum in the softmax backward runs over the batch",
        ),
        (
            "softmax without the maximum subtracted (overflow)",
            SHIFT,
            "shifted = logits",
            "dlogits has NaN or infinite values for large logits",
        ),
        (
            "divided by the batch size",
            SOFTMAX_BACKWARD,
            SOFTMAX_BACKWARD + " / len(logits)",
            "5 times too small — 5 is the batch size",
        ),
    ],
    "m2_loss": [
        (
            "alpha applied to the unlabelled term",
            TOTAL,
            "loss = float(labelled_sum + alpha * (unlabelled_sum + classification_sum)) / batch",
            "alpha multiplies the unlabelled term",
        ),
        (
            "alpha applied to the labelled bound",
            TOTAL,
            "loss = float(alpha * (labelled_sum + classification_sum) + unlabelled_sum) / batch",
            "alpha multiplies the labelled bound L(x, y) too",
        ),
        (
            "the classification term forgotten",
            TOTAL,
            "loss = float(labelled_sum + unlabelled_sum) / batch",
            "the classification term alpha * sum_labelled -log q(y | x) is missing",
        ),
        (
            "the cross-entropy with the wrong sign",
            CE,
            "classification_sum = np.sum(log_pi[rows, y])",
            "the classification term has the wrong sign",
        ),
        (
            "pi_y where log pi_y belongs",
            CE,
            "classification_sum = -np.sum(np.exp(log_pi[rows, y]))",
            "the classification term uses pi_y instead of log pi_y",
        ),
        (
            "the label -1 used as an index (every row treated as labelled)",
            "rows, y = np.flatnonzero(labelled), labels[labelled]",
            "rows, y = np.arange(batch), labels",
            "indexing with -1 picks the last column",
        ),
        (
            "U(x) for the labelled rows too",
            "np.sum(unlabelled_bound(bounds[~labelled], logits[~labelled]))",
            "np.sum(unlabelled_bound(bounds, logits))",
            "the labelled rows get U(x) as well as L(x, y)",
        ),
        (
            "each term averaged over its own rows",
            TOTAL,
            "loss = float(labelled_sum / len(rows) + unlabelled_sum / (batch - len(rows))"
            " + alpha * classification_sum / len(rows))",
            "each term is averaged over its own rows",
        ),
        (
            "summed over the batch instead of averaged",
            TOTAL,
            "loss = float(labelled_sum + unlabelled_sum + alpha * classification_sum)",
            "6 times too large — 6 is the batch size",
        ),
        (
            "softmax without the maximum subtracted (overflow)",
            SHIFT,
            "shifted = logits",
            "np.exp of large logits overflows",
        ),
    ],
    "m1_features": [
        (
            "the log-variances as features",
            "chunks.append(mu)",
            "chunks.append(logvar)",
            "these are the log-variances",
        ),
        (
            "the standard deviations as features",
            "chunks.append(mu)",
            "chunks.append(np.exp(0.5 * logvar))",
            "these are the standard deviations",
        ),
        (
            "a sampled z instead of the mean",
            "chunks.append(mu)",
            "chunks.append(mu + np.exp(0.5 * logvar) * np.random.standard_normal(mu.shape))",
            "two calls gave different features: a sampled z",
        ),
        (
            "mu and logvar both",
            "chunks.append(mu)",
            "chunks.append(np.concatenate([mu, logvar], axis=1))",
            "both mu and logvar?",
        ),
        (
            "the last, shorter chunk dropped",
            LOOP,
            "for start in range(0, len(x) - batch_size, batch_size):",
            "the last, shorter chunk is missing",
        ),
        (
            "the whole data set encoded at once",
            ENCODE,
            "mu, logvar = vae.encode(x)",
            "vae.encode was given 23 rows at once",
        ),
        (
            "overlapping chunks",
            LOOP,
            "for start in range(0, len(x), batch_size // 2):",
            "the chunks overlap",
        ),
        (
            "reconstructions instead of codes",
            ENCODE,
            "mu = vae.reconstruct(x[start:start + batch_size])",
            "m1_features called vae.reconstruct",
        ),
        (
            "only the first chunk returned",
            "features = np.concatenate(chunks)",
            "features = chunks[0]",
            "only the first chunk's means",
        ),
    ],
}
