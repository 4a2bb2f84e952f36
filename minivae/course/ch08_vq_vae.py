"""The graded checks of problem set 08 (the VQ-VAE), with the reference maths they compare with
and the usual slips they recognise.

``nearest_code`` and ``vq_terms_and_grads`` here have the exercises' signatures; the check of
exercise 3 gives them to the learner's code in place of the learner's own
(``feedback.call(..., using=...)``), so a blank or wrong exercise 1 or 2 never costs exercise 3
its points::

    from minivae.course import ch08_vq_vae as ch08
    ch08.check_nearest_code(nearest_code, z, codebook)
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable, Sequence

import numpy as np

from ..gradcheck import numerical_gradient
from .feedback import (
    ExerciseError,
    call,
    check_close,
    check_gradient,
    check_shape,
    check_type,
    unpack,
)

Array = np.ndarray
Params = dict[str, Array]


# ----------------------------------------------------------------------------- 1. nearest code


def nearest_code(z: Array, codebook: Array) -> Array:
    """argmin_j ||z_m||^2 + ||e_j||^2 - 2 z_m . e_j for each row: z (M, D), codebook (K, D) ->
    (M,) integers."""
    distances = (z * z).sum(axis=1, keepdims=True) + (codebook * codebook).sum(axis=1) \
        - 2.0 * z @ codebook.T
    return np.argmin(distances, axis=1)


def _same_codes(got: Array, candidate: Array) -> bool:
    return got.shape == candidate.shape and bool(np.array_equal(got, candidate))


def check_nearest_code(fn: Callable, z: Array, codebook: Array, *, memory: bool = True) -> Array:
    """The nearest code of every row (integers), the slips told apart by the codes they give,
    and (``memory``) no (M, K, D) array of differences on a larger input."""
    m, k = z.shape[0], codebook.shape[0]
    expected = nearest_code(z, codebook)
    distances = ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(axis=2)  # (M, K), reference
    codes = call(
        fn, z, codebook,
        advice=f"z is (M, D) = {z.shape} and codebook (K, D) = {codebook.shape}: z @ codebook.T "
               "is (M, K); ||z||^2 must be (M, 1) (keepdims=True) and ||e||^2 (K,) to broadcast "
               "against it.",
    )
    if isinstance(codes, (int, np.integer)) or (isinstance(codes, np.ndarray) and codes.ndim == 0):
        raise ExerciseError(
            f"codes is a single index ({int(codes)}): np.argmin without axis= takes the argmin of "
            "the whole flattened (M, K) table; use np.argmin(distances, axis=1), one per row"
        )
    check_type("codes", codes, np.ndarray)
    got_shape = np.shape(codes)
    if got_shape == (m, k):
        raise ExerciseError(
            f"codes has shape (M, K) = {got_shape}: these look like the distances (or a one-hot "
            "table); return the index of the nearest code of each row, np.argmin(..., axis=1)"
        )
    if got_shape == (k,):
        raise ExerciseError(
            f"codes has shape (K,) = {got_shape}: the argmin ran over axis 0, the rows of z; "
            "each row needs the index of its nearest code, np.argmin(distances, axis=1)"
        )
    if got_shape == z.shape:
        raise ExerciseError(
            f"codes has shape {got_shape}, the shape of z: these look like the code vectors "
            "themselves (codebook[k]); return the indices k"
        )
    check_shape("codes", codes, (m,))
    if np.asarray(codes).dtype.kind not in "iu":
        raise ExerciseError(
            f"codes must be integer indices into the codebook, got dtype {np.asarray(codes).dtype}"
            " (np.argmin returns integers)"
        )
    if _same_codes(codes, expected):
        pass
    elif _same_codes(codes, np.argmax(distances, axis=1)):
        raise ExerciseError(
            "codes: these are the farthest codes: argmax where argmin belongs (the nearest code "
            "has the smallest squared distance)"
        )
    elif _same_codes(codes, np.argmax(z @ codebook.T, axis=1)) or _same_codes(
        codes, np.argmin(-2.0 * z @ codebook.T, axis=1)
    ):
        raise ExerciseError(
            "codes: these maximise z . e_j alone — the term ||e_j||^2 is missing: without it "
            "codes with a large norm win (||z - e||^2 = ||z||^2 + ||e||^2 - 2 z . e)"
        )
    elif _same_codes(codes, np.argmin(distances + 4.0 * z @ codebook.T, axis=1)):
        raise ExerciseError(
            "codes: the cross term has the wrong sign: ||z - e||^2 = ||z||^2 + ||e||^2 - 2 z . e"
        )
    elif _same_codes(codes, np.argmin(distances - 2 * (codebook * codebook).sum(axis=1), axis=1)):
        raise ExerciseError(
            "codes: ||e_j||^2 enters with the wrong sign: ||z - e||^2 = ||z||^2 + ||e||^2 - 2 z . e"
        )
    else:
        wrong = np.flatnonzero(np.asarray(codes) != expected)
        first = int(wrong[0])
        k_got, k_best = int(np.asarray(codes)[first]), int(expected[first])
        raise ExerciseError(
            f"codes: {wrong.size} of {m} rows get a code that is not their nearest; row {first} "
            f"got code {k_got} at squared distance {distances[first, k_got]:.6g}, but code "
            f"{k_best} is at {distances[first, k_best]:.6g}"
        )
    if memory:
        _check_memory(fn)
    return codes


def _check_memory(fn: Callable) -> None:
    """On M = 600 rows, K = 128 codes, D = 32: the (M, K, D) differences would take 19.7 MB; the
    expansion needs the (M, K) table, 0.6 MB."""
    rng = np.random.default_rng(808)
    z, codebook = rng.standard_normal((600, 32)), rng.standard_normal((128, 32))
    expected = nearest_code(z, codebook)
    tracemalloc.start()
    try:
        codes = call(fn, z, codebook)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    check_close("codes on 600 rows and 128 codes", codes, expected, common_hints=False)
    full = 600 * 128 * 32 * 8
    if peak > full / 2:
        raise ExerciseError(
            f"nearest_code held {peak / 1e6:.1f} MB at its peak for 600 rows, 128 codes of 32 "
            f"dimensions: the (M, K, D) array of all differences z[:, None] - codebook[None] "
            f"({full / 1e6:.1f} MB) was built. Expand the square instead: "
            "||z||^2 + ||e||^2 - 2 z @ codebook.T needs only the (M, K) table"
        )


# ----------------------------------------------------------------------------- 2. VQ terms


def vq_terms_and_grads(
    z_e: Array, codebook: Array, codes: Array, beta: float
) -> tuple[float, float, Array, Array]:
    """codebook term, commitment term (both (1/B) sum (z_e - z_q)^2, unweighted), the commitment
    gradient 2 beta (z_e - z_q) / B for z_e, and the codebook term's gradient for the codebook."""
    batch, dim = z_e.shape[0], codebook.shape[1]
    z_q = codebook[codes]
    diff = z_e - z_q
    value = float(np.sum(diff**2)) / batch
    dz_e = 2.0 * beta * diff / batch
    dcodebook = np.zeros_like(codebook)
    np.add.at(dcodebook, codes.reshape(-1), (-2.0 / batch) * diff.reshape(-1, dim))
    return value, value, dz_e, dcodebook


def _overwritten_codebook_grad(codebook: Array, codes: Array, diff: Array, batch: int) -> Array:
    """dcodebook[codes] += ... with repeated codes: each code gets ONE of its outputs' terms."""
    out = np.zeros_like(codebook)
    out[codes.reshape(-1)] += (-2.0 / batch) * diff.reshape(-1, codebook.shape[1])
    return out


def check_vq_terms_and_grads(
    fn: Callable, z_e: Array, codebook: Array, codes: Array, beta: float
) -> tuple:
    """Both terms, the encoder's and the codebook's gradients, each slip named."""
    batch, positions, dim = z_e.shape
    k = codebook.shape[0]
    ref_cb, ref_commit, ref_dz, ref_dcb = vq_terms_and_grads(z_e, codebook, codes, beta)
    diff = z_e - codebook[codes]
    result = call(fn, z_e, codebook, codes, beta)
    cb, commit, dz_e, dcb = unpack(
        result, ["codebook_term", "commitment_term", "dz_e", "dcodebook"],
        "vq_terms_and_grads(z_e, codebook, codes, beta)",
    )
    sizes = {"batch": batch, "positions": positions, "code dimensions": dim}
    per_entry = float(np.mean(diff**2))
    if (
        np.shape(dz_e) == ref_dz.shape and np.shape(dcb) == ref_dcb.shape
        and np.allclose(np.asarray(dz_e, float), ref_dz / beta, rtol=1e-8, atol=1e-12)
        and np.allclose(np.asarray(dcb, float), beta * ref_dcb, rtol=1e-8, atol=1e-12)
    ):
        raise ExerciseError(
            "dz_e and dcodebook: the stop-gradients are on the wrong side — z_e gets the codebook "
            "term's gradient 2 (z_e - z_q) / B and the codebook gets beta times its own. The "
            "codebook term ||sg[z_e] - z_q||^2 moves only the codebook; the commitment term "
            "beta ||z_e - sg[z_q]||^2 moves only z_e: dz_e = 2 beta (z_e - z_q) / B"
        )
    check_type("codebook_term", cb, float)
    check_close(
        "codebook_term", cb, ref_cb, sizes=sizes,
        hints=[
            (beta * ref_cb, "codebook_term is beta times the expected value: beta weighs the "
                            "commitment term only, not the codebook term"),
            (per_entry, "codebook_term is the mean over every entry: sum over positions and "
                        "code dimensions, average over the batch only"),
            (math.sqrt(ref_cb * batch) / batch, "codebook_term is a norm, not a squared norm"),
            (float(np.sum(np.sqrt((diff**2).sum(axis=2)))) / batch,
             "codebook_term sums the distances ||z_e - e||, not their squares"),
        ],
    )
    check_type("commitment_term", commit, float)
    check_close(
        "commitment_term", commit, ref_commit, sizes=sizes,
        hints=[
            (beta * ref_commit, "commitment_term is beta times the term: return it unweighted "
                                "(the loss multiplies it by beta; so does its gradient dz_e)"),
            (per_entry, "commitment_term is the mean over every entry: sum over positions and "
                        "code dimensions, average over the batch only"),
        ],
    )
    check_shape("dz_e", dz_e, z_e.shape)
    check_close(
        "dz_e", dz_e, ref_dz, sizes=sizes,
        hints=[
            (ref_dz / beta, "dz_e has no beta: the commitment term beta ||z_e - sg[z_q]||^2 "
                            "gives dz_e = 2 beta (z_e - z_q) / B — or did the codebook term's "
                            "gradient go to z_e? (its stop-gradient is on z_e)"),
            (ref_dz * (1 + beta) / beta,
             "dz_e also has the codebook term's gradient: ||sg[z_e] - z_q||^2 sends nothing to "
             "the encoder (the stop-gradient is on z_e); only beta ||z_e - sg[z_q]||^2 does"),
            (-ref_dz, "dz_e has the wrong sign: the commitment term pulls z_e towards z_q, "
                      "its gradient is +2 beta (z_e - z_q) / B"),
            (np.zeros_like(ref_dz), "dz_e is all zeros: the commitment term's gradient is "
                                    "2 beta (z_e - z_q) / B"),
            (ref_dz / batch, "dz_e is divided by the batch size twice"),
        ],
    )
    check_shape("dcodebook", dcb, codebook.shape)
    used = np.bincount(codes.reshape(-1), minlength=k)
    check_close(
        "dcodebook", dcb, ref_dcb, sizes=sizes,
        hints=[
            (beta * ref_dcb, "dcodebook is beta times the expected gradient: beta weighs the "
                             "commitment term; the codebook term ||sg[z_e] - z_q||^2 has "
                             "weight 1"),
            (-ref_dcb, "dcodebook has the wrong sign: the codebook term moves each code "
                       "towards its outputs, d/de_j = (2/B) sum (e_j - z_e)"),
            (_overwritten_codebook_grad(codebook, codes, diff, batch),
             "codes picked more than once got the gradient of only one of their outputs: "
             "dcodebook[codes] += ... does not add up repeated indices (NumPy writes each index "
             "once); use np.add.at(dcodebook, codes, ...) or a one-hot matrix product"),
            (ref_dcb / np.maximum(used, 1)[:, None],
             "dcodebook is averaged over each code's outputs: the loss sums over positions, "
             "so the gradient sums over the outputs assigned to each code"),
            (ref_dcb * (1 + beta),
             "dcodebook also has the commitment term's gradient: beta ||z_e - sg[z_q]||^2 "
             "sends nothing to the codebook (the stop-gradient is on z_q)"),
        ],
    )
    return cb, commit, dz_e, dcb


# ----------------------------------------------------------------------------- 3. the VQ-VAE


def vqvae_loss_and_grads(
    params: Params, x: Array, positions: int, beta: float, *, codes: Array | None = None,
    slips: Sequence[str] = (),
) -> tuple[dict, Params, Array]:
    """Loss terms, every gradient and the codes of the one-hidden-layer tanh VQ-VAE with a
    Bernoulli decoder (exercise 3). ``codes`` fixes the assignment (finite differences);
    ``slips`` model the usual mistakes: 'decoder_to_codebook', 'no_straight_through',
    'no_commitment', 'codebook_to_encoder'."""
    batch = x.shape[0]
    codebook = params["codebook"]
    n_codes, dim = codebook.shape
    h1 = np.tanh(x @ params["encoder.W0"] + params["encoder.b0"])
    z_e = (h1 @ params["encoder.W1"] + params["encoder.b1"]).reshape(batch, positions, dim)
    if codes is None:
        codes = nearest_code(z_e.reshape(-1, dim), codebook).reshape(batch, positions)
    z_q = codebook[codes]
    h2 = np.tanh(z_q.reshape(batch, -1) @ params["decoder.W0"] + params["decoder.b0"])
    logits = h2 @ params["decoder.W1"] + params["decoder.b1"]
    recon = float(np.sum(np.logaddexp(0, logits) - x * logits)) / batch
    cb, commit, dz_e_commit, dcodebook = vq_terms_and_grads(z_e, codebook, codes, beta)
    grads: Params = {}
    dlogits = (0.5 * (1 + np.tanh(0.5 * logits)) - x) / batch
    grads["decoder.W1"] = h2.T @ dlogits
    grads["decoder.b1"] = dlogits.sum(axis=0)
    da2 = (dlogits @ params["decoder.W1"].T) * (1 - h2**2)
    grads["decoder.W0"] = z_q.reshape(batch, -1).T @ da2
    grads["decoder.b0"] = da2.sum(axis=0)
    dz_q = da2 @ params["decoder.W0"].T  # (B, P * D)
    dz_e = dz_e_commit.reshape(batch, -1)
    if "no_straight_through" not in slips:
        dz_e = dz_e + dz_q
    if "no_commitment" in slips:
        dz_e = dz_e - dz_e_commit.reshape(batch, -1)
    if "codebook_to_encoder" in slips:
        dz_e = dz_e + dz_e_commit.reshape(batch, -1) / beta
    grads["encoder.W1"] = h1.T @ dz_e
    grads["encoder.b1"] = dz_e.sum(axis=0)
    da1 = (dz_e @ params["encoder.W1"].T) * (1 - h1**2)
    grads["encoder.W0"] = x.T @ da1
    grads["encoder.b0"] = da1.sum(axis=0)
    if "decoder_to_codebook" in slips:
        onehot = np.eye(n_codes)[codes.reshape(-1)]
        dcodebook = dcodebook + onehot.T @ dz_q.reshape(-1, dim)
    grads["codebook"] = dcodebook
    terms = {"loss": recon + cb + beta * commit, "recon": recon, "codebook": cb,
             "commitment": commit}
    return terms, grads, codes


def loss_with_stop_gradients(
    params: Params, x: Array, positions: int, beta: float, codes: Array, frozen: Params
) -> float:
    """The loss with every sg[.] a constant taken from ``frozen`` (the parameters at which the
    gradient is wanted) and the codes fixed: its gradient is the VQ-VAE's gradient."""
    batch = x.shape[0]
    dim = params["codebook"].shape[1]

    def encode(p: Params) -> Array:
        h1 = np.tanh(x @ p["encoder.W0"] + p["encoder.b0"])
        return (h1 @ p["encoder.W1"] + p["encoder.b1"]).reshape(batch, positions, dim)

    z_e, z_e0 = encode(params), encode(frozen)
    z_q, z_q0 = params["codebook"][codes], frozen["codebook"][codes]
    h2 = np.tanh((z_e + (z_q0 - z_e0)).reshape(batch, -1) @ params["decoder.W0"]
                 + params["decoder.b0"])
    logits = h2 @ params["decoder.W1"] + params["decoder.b1"]
    recon = float(np.sum(np.logaddexp(0, logits) - x * logits)) / batch
    return recon + float(np.sum((z_e0 - z_q) ** 2)) / batch \
        + beta * float(np.sum((z_e - z_q0) ** 2)) / batch


def _dlogits(params: Params, x: Array, codes: Array) -> Array:
    """(sigmoid(logits) - x) / B of the decoder fed z_q = codebook[codes]."""
    batch = x.shape[0]
    h2 = np.tanh(params["codebook"][codes].reshape(batch, -1) @ params["decoder.W0"]
                 + params["decoder.b0"])
    logits = h2 @ params["decoder.W1"] + params["decoder.b1"]
    return (0.5 * (1 + np.tanh(0.5 * logits)) - x) / batch


_TANH = (
    "\nThis layer sits behind a tanh: its gradient is multiplied by 1 - h**2, where "
    "h = tanh(...) is the layer's output (not its input)."
)


def check_vqvae_loss_and_grads(
    fn: Callable, params: Params, x: Array, positions: int, beta: float
) -> tuple[dict, Params]:
    """The four terms and all 9 gradients, with the course's nearest_code and vq_terms_and_grads
    in place of the learner's (exercises 1 and 2 are graded apart), then every gradient against
    finite differences of the loss with its stop-gradients written out. Returns the learner's
    (terms, grads)."""
    batch = x.shape[0]
    terms_ref, grads_ref, codes = vqvae_loss_and_grads(params, x, positions, beta)
    using = {"nearest_code": nearest_code, "vq_terms_and_grads": vq_terms_and_grads}
    shapes = ", ".join(f"{name} is {tuple(value.shape)}" for name, value in params.items())
    result = call(
        fn, params, x, positions, beta, using=using,
        advice=f"x is {x.shape}, positions = {positions}; {shapes}. z_e is (B, P * D) out of the "
               "encoder and (B, P, D) for the codebook. Write the shape next to each line.",
    )
    terms, grads = unpack(result, ["terms", "grads"], "vqvae_loss_and_grads(params, x, positions, "
                                                      "beta)")
    check_type("terms", terms, dict)
    check_type("grads", grads, dict)
    for key in ("loss", "recon", "codebook", "commitment"):
        if key not in terms:
            raise ExerciseError(
                f"terms has no {key!r}: return {{'loss', 'recon', 'codebook', 'commitment'}}"
            )
    h1 = np.tanh(x @ params["encoder.W0"] + params["encoder.b0"])
    z_e_flat = h1 @ params["encoder.W1"] + params["encoder.b1"]  # (B, P * D)
    h2_ze = np.tanh(z_e_flat @ params["decoder.W0"] + params["decoder.b0"])
    logits_ze = h2_ze @ params["decoder.W1"] + params["decoder.b1"]
    recon_ze = float(np.sum(np.logaddexp(0, logits_ze) - x * logits_ze)) / batch
    check_close("recon", terms["recon"], terms_ref["recon"],
                sizes={"batch": batch, "pixels": x.shape[1]},
                hints=[(recon_ze, "the decoder reads z_e: it must read the quantised "
                                  "z_q = codebook[codes], reshaped to (B, P * D)")])
    check_close("codebook", terms["codebook"], terms_ref["codebook"], sizes={"batch": batch})
    check_close("commitment", terms["commitment"], terms_ref["commitment"],
                sizes={"batch": batch},
                hints=[(beta * terms_ref["commitment"],
                        "terms['commitment'] is beta times the term: report it unweighted, "
                        "beta enters the loss")])
    ref = terms_ref
    check_close(
        "loss", terms["loss"], ref["loss"],
        hints=[
            (ref["recon"] + beta * (ref["codebook"] + ref["commitment"]),
             "loss = recon + beta * (codebook + commitment): beta weighs the commitment term only"),
            (ref["recon"] + ref["codebook"] + ref["commitment"],
             "loss = recon + codebook + commitment: the commitment term is weighted by beta"),
            (ref["recon"], "the loss is recon alone: add codebook + beta * commitment"),
            (ref["recon"] + beta * ref["commitment"],
             "the codebook term is missing from the loss: loss = recon + codebook + beta * "
             "commitment"),
        ],
    )
    missing = sorted(set(grads_ref) - set(grads))
    if missing:
        raise ExerciseError(f"grads has no entry for {missing}: it needs all 9 names of params")

    def check_layer(name: str, extra: str = "", hints: list | None = None) -> None:
        check_shape(f'grads["{name}"]', grads[name], params[name].shape)
        try:
            check_close(
                f'grads["{name}"]', grads[name], grads_ref[name],
                hints=[*(hints or []),
                       (grads_ref[name] * batch, "summed over the batch where the loss takes a "
                                                 "mean: divide by the batch size once"),
                       (grads_ref[name] / batch, "averaged over the batch: a parameter gradient "
                                                 "SUMS over the examples (the 1/B is already in "
                                                 "dlogits and in the VQ gradients)")],
            )
        except ExerciseError as err:
            raise ExerciseError(str(err) + extra) from None

    for name in ("decoder.b1", "decoder.W1"):
        check_layer(name)
    h2 = np.tanh(params["codebook"][codes].reshape(batch, -1) @ params["decoder.W0"]
                 + params["decoder.b0"])
    da2 = (_dlogits(params, x, codes) @ params["decoder.W1"].T) * (1 - h2**2)
    check_layer("decoder.b0", _TANH)
    check_layer("decoder.W0", _TANH, hints=[
        (z_e_flat.T @ da2, "the decoder's input is z_q, not z_e: dW0 = z_q.T @ da2 with "
                           "z_q = codebook[codes] reshaped to (B, P * D)")])

    def slip(*names: str) -> Params:
        return vqvae_loss_and_grads(params, x, positions, beta, slips=names)[1]

    decoder_in = slip("decoder_to_codebook")["codebook"]
    check_layer(
        "codebook",
        hints=[
            (decoder_in, "the decoder's gradient reached the codebook: with the straight-through "
                         "estimator z_q = z_e + sg[z_q - z_e] the decoder's gradient goes to z_e "
                         "only; the codebook learns from the codebook term alone"),
            (decoder_in - grads_ref["codebook"],
             "the codebook gets the decoder's gradient instead of the codebook term's: the "
             "decoder's dz_q goes to z_e (straight through), the codebook learns from "
             "||sg[z_e] - z_q||^2 alone"),
            (np.zeros_like(grads_ref["codebook"]),
             "the codebook's gradient is all zeros: it is the codebook term's dcodebook"),
        ],
    )
    no_st = slip("no_straight_through")
    check_layer(
        "encoder.b1",
        hints=[
            (no_st["encoder.b1"], "the decoder's gradient does not reach the encoder: copy "
                                  "dz_q onto z_e (straight through, dz_e = dz_q + the "
                                  "commitment gradient)"),
            (slip("no_commitment")["encoder.b1"],
             "the commitment gradient is missing from dz_e: add 2 beta (z_e - z_q) / B to the "
             "decoder's gradient before the encoder"),
            (slip("codebook_to_encoder")["encoder.b1"],
             "the codebook term's gradient reached the encoder: its stop-gradient is on z_e, "
             "only the commitment term's 2 beta (z_e - z_q) / B goes there"),
        ],
    )
    check_layer("encoder.W1")
    for name in ("encoder.b0", "encoder.W0"):
        check_layer(name, _TANH)

    # every gradient is the gradient of the loss with its stop-gradients written out (the codes
    # fixed: the test's inputs sit far enough from every tie that no perturbation changes one)
    params64 = {name: np.array(value, dtype=np.float64) for name, value in params.items()}
    frozen = {name: value.copy() for name, value in params64.items()}

    def loss_of_params() -> float:
        return loss_with_stop_gradients(params64, x, positions, beta, codes, frozen)

    for name in params64:
        numeric = numerical_gradient(loss_of_params, params64[name])
        check_gradient(f'grads["{name}"]', grads[name], numeric, tol=1e-6)
    return terms, grads


# ----------------------------------------------------------------------------- 4. code usage


def code_usage(code_batches: Sequence[Array], n_codes: int) -> tuple[float, Array]:
    """Perplexity exp(-sum p log p) of the codes pooled over all batches, and the dead codes."""
    counts = np.zeros(n_codes, dtype=np.int64)
    for codes in code_batches:
        counts += np.bincount(np.asarray(codes).reshape(-1), minlength=n_codes)
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-np.sum(p * np.log(p)))), np.flatnonzero(counts == 0)


def _entropy(counts: Array) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p)))


def check_code_usage(fn: Callable, code_batches: Sequence[Array], n_codes: int) -> tuple:
    """Perplexity over the epoch and the dead codes, with the per-batch, log2/exp, entropy, 0 log 0
    and bincount slips named."""
    ref_ppl, ref_dead = code_usage(code_batches, n_codes)
    counts = sum(np.bincount(b.reshape(-1), minlength=n_codes) for b in code_batches)
    entropy = _entropy(counts)
    per_batch = [np.bincount(b.reshape(-1), minlength=n_codes) for b in code_batches]
    result = call(fn, code_batches, n_codes)
    ppl, dead = unpack(result, ["perplexity", "dead"], "code_usage(code_batches, n_codes)")
    if ppl is not None and not np.isfinite(np.asarray(ppl, dtype=float)).all() \
            and ref_dead.size:
        raise ExerciseError(
            f"perplexity is {ppl}: codes that are never used give 0 * log 0 = nan in NumPy; sum "
            "p log p over the codes that are used (p > 0) only — their limit is 0"
        )
    check_type("perplexity", ppl, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        unnormalised = float(np.exp(-np.sum(counts[counts > 0] * np.log(counts[counts > 0]))))
    check_close(
        "perplexity", ppl, ref_ppl, common_hints=False,
        hints=[
            (float(np.mean([math.exp(_entropy(c)) for c in per_batch])),
             "this is the mean of each batch's perplexity: count the codes over the whole epoch "
             "(all batches) first, then compute one perplexity — a batch sees too few "
             "assignments to measure the usage of many codes"),
            (math.exp(_entropy(per_batch[-1])), "only the last batch's codes were counted: add up "
                                                "the counts of every batch"),
            (math.exp(_entropy(per_batch[0])), "only the first batch's codes were counted: add up "
                                               "the counts of every batch"),
            (2.0 ** entropy, "2 ** (entropy in nats): log and 2 ** mixed — use exp with the "
                             "natural log (or 2 ** with log2)"),
            (math.exp(entropy / math.log(2)), "exp(entropy in bits): log2 and exp mixed — use "
                                              "exp with the natural log (or 2 ** with log2)"),
            (entropy, "this is the entropy -sum p log p; the perplexity is its exp"),
            (entropy / math.log(2), "this is the entropy in bits; the perplexity is "
                                    "exp(-sum p log p)"),
            (math.exp(-entropy), "exp(+sum p log p): the sign is flipped, the perplexity is "
                                 "exp(-sum p log p) >= 1"),
            (unnormalised, "p must be the counts divided by their total (a distribution that "
                           "sums to 1)"),
        ],
    )
    check_type("dead", dead, np.ndarray)
    dead = np.asarray(dead)
    if dead.dtype == bool:
        raise ExerciseError(
            "dead is a boolean mask; return the indices of the dead codes (np.flatnonzero)"
        )
    if dead.shape != ref_dead.shape or not np.array_equal(np.sort(dead), ref_dead):
        seen = np.unique(np.concatenate([b.reshape(-1) for b in code_batches]))
        without_minlength = np.flatnonzero(np.bincount(seen) == 0)
        if np.array_equal(np.sort(dead), without_minlength):
            raise ExerciseError(
                f"dead is {dead.tolist()}, expected {ref_dead.tolist()}: the codes after the "
                f"largest one used ({int(seen.max())}) are missing — np.bincount(..., "
                "minlength=n_codes) counts codes that never occur as 0"
            )
        if np.array_equal(np.sort(dead), np.flatnonzero(per_batch[-1] == 0)):
            raise ExerciseError(
                f"dead is {dead.tolist()}, expected {ref_dead.tolist()}: these are the codes the "
                "last batch did not use; a code is dead when no batch of the epoch used it"
            )
        raise ExerciseError(
            f"dead is {dead.tolist()}, expected {ref_dead.tolist()} (the codes no batch used)"
        )
    return ppl, dead
