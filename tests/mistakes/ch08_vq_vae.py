"""Planted mistakes for solutions/08_vq_vae.ipynb: each must fail its own exercise's graded test
with the message that names it (and no other exercise's tests).

MISTAKES maps an exercise id (the solution cell's grade_id) to (description, old, new, expected)
tuples: ``old`` is an exact substring of that solution cell, ``new`` the learner's slip, and
``expected`` a substring (or regular expression) of the message the graded cell must give.
"""

DISTANCES = "distances = z_sq + e_sq - 2 * z @ codebook.T"
ARGMIN = "codes = np.argmin(distances, axis=1)"
DZ_E = "dz_e = 2 * beta * diff / batch"
ADD_AT = "np.add.at(dcodebook, codes.reshape(-1), (-2 / batch) * diff.reshape(-1, dim))"
TERM = "codebook_term = float(np.sum(diff**2)) / batch"
STRAIGHT = "dz_e = dz_q + dz_e_vq.reshape(batch, positions * dim)"
CODEBOOK_GRAD = 'grads["codebook"] = dcodebook'
ONE_HOT_DZ_Q = "np.eye(len(codebook))[codes.reshape(-1)].T @ dz_q.reshape(-1, dim)"
LOSS = "recon + codebook_term + beta * commitment_term"
COUNTS = (
    "    counts = np.zeros(n_codes, dtype=np.int64)\n"
    "    for codes in code_batches:\n"
    "        counts += np.bincount(codes.reshape(-1), minlength=n_codes)\n"
)
PERPLEXITY = "perplexity = float(np.exp(-np.sum(p * np.log(p))))"

MISTAKES = {
    "nearest_code": [
        ("argmax instead of argmin", ARGMIN, "codes = np.argmax(distances, axis=1)",
         "argmax where argmin belongs"),
        ("||e||^2 left out", DISTANCES, "distances = z_sq - 2 * z @ codebook.T",
         "the term ||e_j||^2 is missing"),
        ("the cross term with a plus", DISTANCES, "distances = z_sq + e_sq + 2 * z @ codebook.T",
         "the cross term has the wrong sign"),
        ("||e||^2 subtracted", DISTANCES, "distances = z_sq - e_sq - 2 * z @ codebook.T",
         "||e_j||^2 enters with the wrong sign"),
        ("the argmin over axis 0", ARGMIN, "codes = np.argmin(distances, axis=0)",
         "the argmin ran over axis 0"),
        ("the argmin of the flattened table", ARGMIN, "codes = np.argmin(distances)",
         "np.argmin without axis= takes the argmin of the whole flattened"),
        ("the distances returned", ARGMIN, "codes = distances", "these look like the distances"),
        ("the code vectors returned", ARGMIN, "codes = codebook[np.argmin(distances, axis=1)]",
         "these look like the code vectors themselves"),
        ("codes as floats", ARGMIN, "codes = np.argmin(distances, axis=1).astype(float)",
         "codes must be integer indices"),
        ("the (M, K, D) differences built", DISTANCES,
         "distances = np.sum((z[:, None, :] - codebook[None, :, :]) ** 2, axis=2)",
         "the (M, K, D) array of all differences"),
        ("||z||^2 without keepdims", "z_sq = np.sum(z**2, axis=1, keepdims=True)",
         "z_sq = np.sum(z**2, axis=1)", "must be (M, 1) (keepdims=True)"),
        ("the codebook not transposed", "- 2 * z @ codebook.T", "- 2 * z @ codebook",
         "z @ codebook.T is (M, K)"),
        ("z squared in place", "z_sq = np.sum(z**2, axis=1, keepdims=True)",
         "z **= 2\n    z_sq = np.sum(z, axis=1, keepdims=True)",
         "your function changed its argument `z` in place"),
    ],
    "vq_terms_and_grads": [
        ("beta on the codebook term's gradient", ADD_AT,
         "np.add.at(dcodebook, codes.reshape(-1), (-2 * beta / batch) * diff.reshape(-1, dim))",
         "beta weighs the commitment term; the codebook term"),
        ("beta on the codebook term", TERM, "codebook_term = beta * float(np.sum(diff**2)) / batch",
         "codebook_term is beta times the expected value"),
        ("the stop-gradients swapped",
         DZ_E + "  # from the commitment term only\n    dcodebook = np.zeros_like(codebook)\n"
         "    np.add.at(dcodebook, codes.reshape(-1), (-2 / batch)",
         "dz_e = 2 * diff / batch\n    dcodebook = np.zeros_like(codebook)\n"
         "    np.add.at(dcodebook, codes.reshape(-1), (-2 * beta / batch)",
         "the stop-gradients are on the wrong side"),
        ("no beta in dz_e", DZ_E, "dz_e = 2 * diff / batch", "dz_e has no beta"),
        ("the codebook term's gradient sent to z_e too", DZ_E,
         "dz_e = 2 * (1 + beta) * diff / batch", "dz_e also has the codebook term's gradient"),
        ("dz_e with the wrong sign", DZ_E, "dz_e = -2 * beta * diff / batch",
         "dz_e has the wrong sign"),
        ("dz_e without the 2", DZ_E, "dz_e = beta * diff / batch", "off by a factor 2"),
        ("repeated codes overwritten by fancy-index +=", ADD_AT,
         "dcodebook[codes.reshape(-1)] += (-2 / batch) * diff.reshape(-1, dim)",
         "does not add up repeated indices"),
        ("the codebook gradient with the wrong sign", "(-2 / batch)", "(2 / batch)",
         "dcodebook has the wrong sign"),
        ("the codebook gradient averaged per code", ADD_AT,
         ADD_AT + "\n    dcodebook /= np.maximum(np.bincount(codes.reshape(-1), "
                  "minlength=len(codebook)), 1)[:, None]",
         "averaged over each code's outputs"),
        ("the commitment gradient sent to the codebook too", ADD_AT,
         "np.add.at(dcodebook, codes.reshape(-1), (-2 * (1 + beta) / batch) * "
         "diff.reshape(-1, dim))",
         "dcodebook also has the commitment term's gradient"),
        ("the mean over every entry", TERM, "codebook_term = float(np.mean(diff**2))",
         "the mean over every entry"),
        ("averaged over the positions too", TERM,
         "codebook_term = float(np.sum(diff**2)) / (batch * positions)",
         "3 is the number of positions"),
        ("the commitment term weighted", "commitment_term = codebook_term",
         "commitment_term = beta * codebook_term", "commitment_term is beta times the term"),
        ("z_e changed in place", "diff = z_e - z_q", "z_e -= z_q\n    diff = z_e",
         "your function changed its argument `z_e` in place"),
    ],
    "vqvae_loss_and_grads": [
        ("the decoder's gradient sent into the codebook", CODEBOOK_GRAD,
         CODEBOOK_GRAD + " + " + ONE_HOT_DZ_Q, "the decoder's gradient reached the codebook"),
        ("the codebook learning from the decoder only", CODEBOOK_GRAD,
         'grads["codebook"] = ' + ONE_HOT_DZ_Q, "instead of the codebook term's"),
        ("no straight-through copy", STRAIGHT,
         "dz_e = dz_e_vq.reshape(batch, positions * dim)",
         "the decoder's gradient does not reach the encoder"),
        ("the commitment gradient left out", STRAIGHT, "dz_e = dz_q",
         "the commitment gradient is missing from dz_e"),
        ("the codebook term's gradient sent to the encoder", STRAIGHT,
         STRAIGHT + " * (1 + 1 / beta)", "the codebook term's gradient reached the encoder"),
        ("beta on both VQ terms in the loss", LOSS,
         "recon + beta * (codebook_term + commitment_term)",
         "beta weighs the commitment term only"),
        ("the commitment term unweighted in the loss", LOSS,
         "recon + codebook_term + commitment_term", "the commitment term is weighted by beta"),
        ("the decoder fed z_e", "h2 = np.tanh(z_q @",
         "h2 = np.tanh(z_e.reshape(batch, positions * dim) @", "the decoder reads z_e"),
        ("dW0 of the decoder from z_e", 'grads["decoder.W0"] = z_q.T @ da2',
         'grads["decoder.W0"] = z_e.reshape(batch, -1).T @ da2',
         "the decoder's input is z_q, not z_e"),
        ("the tanh derivative from the pre-activation", "* (1 - h1**2)",
         "* (1 - np.tanh(h1)**2)", "This layer sits behind a tanh"),
        ("dlogits not averaged over the batch", "(0.5 * (1 + np.tanh(0.5 * logits)) - x) / batch",
         "(0.5 * (1 + np.tanh(0.5 * logits)) - x)", "summed over the batch where the loss"),
        ("the commitment reported weighted", '"commitment": commitment_term}',
         '"commitment": beta * commitment_term}', "report it unweighted"),
    ],
    "code_usage": [
        ("perplexity per batch, averaged", COUNTS + "    p = counts[counts > 0] / counts.sum()\n"
         "    " + PERPLEXITY,
         COUNTS + "    per_batch = []\n    for codes in code_batches:\n"
         "        c = np.bincount(codes.reshape(-1), minlength=n_codes)\n"
         "        q = c[c > 0] / c.sum()\n"
         "        per_batch.append(np.exp(-np.sum(q * np.log(q))))\n"
         "    perplexity = float(np.mean(per_batch))",
         "the mean of each batch's perplexity"),
        ("log2 with exp", "np.log(p)", "np.log2(p)", "log2 and exp mixed"),
        ("2 ** with the natural log", PERPLEXITY,
         "perplexity = float(2 ** (-np.sum(p * np.log(p))))", "log and 2 \\*\\* mixed"),
        ("the entropy returned", PERPLEXITY, "perplexity = float(-np.sum(p * np.log(p)))",
         "this is the entropy -sum p log p"),
        ("0 log 0 left in", "p = counts[counts > 0] / counts.sum()", "p = counts / counts.sum()",
         "0 \\* log 0 = nan"),
        ("the sign of the entropy flipped", "np.exp(-np.sum", "np.exp(np.sum",
         "the sign is flipped"),
        ("counts not normalised", "p = counts[counts > 0] / counts.sum()",
         "p = counts[counts > 0]", "divided by their total"),
        ("only the last batch counted", "counts += np.bincount", "counts = np.bincount",
         "only the last batch's codes were counted"),
        ("bincount without minlength", COUNTS,
         "    counts = np.bincount(np.concatenate([codes.reshape(-1) for codes in "
         "code_batches]))\n",
         "minlength=n_codes"),
        ("dead as a boolean mask", "dead = np.flatnonzero(counts == 0)", "dead = counts == 0",
         "boolean mask"),
        ("dead codes of the last batch only", "dead = np.flatnonzero(counts == 0)",
         "dead = np.flatnonzero(np.bincount(code_batches[-1].reshape(-1), "
         "minlength=n_codes) == 0)",
         "the codes the last batch did not use"),
    ],
}
