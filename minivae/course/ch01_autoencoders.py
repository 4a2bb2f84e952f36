"""The graded checks of problem set 01 (autoencoders), with the reference maths they compare with
and the usual slips they recognise.

The references here have the names and signatures of the exercises (``mse_loss``,
``bce_with_logits``, ``mlp_forward``, ``autoencoder_forward``, ``mlp_backward``,
``autoencoder_backward``), built from ``minivae.layers`` and ``minivae.losses``. The checks of
the later exercises use them in place of the learner's earlier ones (``feedback.call(...,
using=...)``), so a wrong forward pass never costs the backward pass or the training loop its
points::

    from minivae.course import ch01_autoencoders as ch01
    ch01.check_autoencoder_backward(autoencoder_backward, params, x)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import layers, losses
from ..gradcheck import numerical_gradient
from ..models import Autoencoder
from ..optim import Adam
from .feedback import (
    ExerciseError,
    call,
    check_close,
    check_finite,
    check_gradient,
    check_shape,
    check_type,
    unpack,
)

Array = np.ndarray
Params = dict[str, Array]


# ----------------------------------------------------------------------------- the reference


def n_layers(params: Params, prefix: str) -> int:
    """The number of linear layers of the MLP whose weights are named prefix + "W0", "W1", ..."""
    n = 0
    while f"{prefix}W{n}" in params:
        n += 1
    return n


def make_model(
    x_dim: int, z_dim: int, hidden: tuple[int, ...], loss: str = "mse", seed: int = 0
) -> tuple[Autoencoder, Params]:
    """A float64 minivae Autoencoder and a dict with a copy of its parameters."""
    model = Autoencoder(x_dim, z_dim, hidden=hidden, loss=loss, dtype="float64", seed=seed)
    return model, {name: np.array(value) for name, value in model.params.items()}


def mse_loss(x_hat: Array, x: Array) -> tuple[float, Array]:
    """loss = (1/B) sum (x_hat - x)**2, dx_hat = 2 (x_hat - x) / B; x_hat, x: (B, D)."""
    batch = x.shape[0]
    diff = x_hat - x
    return float(np.sum(diff**2)) / batch, 2 * diff / batch


def bce_with_logits(logits: Array, x: Array) -> tuple[float, Array]:
    """loss = (1/B) sum [softplus(l) - x l], dlogits = (sigmoid(l) - x) / B; logits, x: (B, D)."""
    batch = x.shape[0]
    loss = float(np.sum(np.logaddexp(0.0, logits) - x * logits)) / batch
    return loss, (layers.sigmoid(logits) - x) / batch


def mlp_forward(
    params: Params, prefix: str, x: Array, *, activation: str = "relu", relu_last: bool = False
) -> tuple[Array, list]:
    """x -> [Linear -> activation] * (n - 1) -> Linear; caches[i] = ((h_in, W), act_cache).

    ``activation`` ('relu', 'tanh' or 'identity') and ``relu_last`` model the usual slips.
    """
    n = n_layers(params, prefix)
    caches = []
    h = x
    for i in range(n):
        h, linear_cache = layers.linear_forward(h, params[f"{prefix}W{i}"], params[f"{prefix}b{i}"])
        act_cache = None
        if (i < n - 1 or relu_last) and activation != "identity":
            h, act_cache = (layers.relu_forward if activation == "relu" else layers.tanh_forward)(h)
        caches.append((linear_cache, act_cache))
    return h, caches


def autoencoder_forward(params: Params, x: Array, **variant: Any) -> tuple[Array, Array, tuple]:
    """z = encoder(x), out = decoder(z); cache = (encoder caches, decoder caches)."""
    z, encoder_caches = mlp_forward(params, "encoder.", x, **variant)
    out, decoder_caches = mlp_forward(params, "decoder.", z, **variant)
    return z, out, (encoder_caches, decoder_caches)


def mlp_backward(
    dout: Array, caches: list, prefix: str, *, relu_step: bool = True
) -> tuple[Array, Params]:
    """Backward through mlp_forward: (dx, {prefix W_i: h_in.T @ dh, prefix b_i: dh summed}).

    ``relu_step=False`` models a usual slip: the ReLU's mask skipped on the way down.
    """
    grads = {}
    dh = dout
    for i in reversed(range(len(caches))):
        (h_in, W), relu_cache = caches[i]
        if relu_cache is not None and relu_step:
            dh = layers.relu_backward(dh, relu_cache)
        grads[f"{prefix}W{i}"] = h_in.T @ dh
        grads[f"{prefix}b{i}"] = dh.sum(axis=0)
        dh = dh @ W.T
    return dh, grads


def autoencoder_backward(dout: Array, cache: tuple, **variant: Any) -> Params:
    """The gradient of every parameter from dout = dL/dout, through the decoder then the encoder."""
    encoder_caches, decoder_caches = cache
    dz, grads = mlp_backward(dout, decoder_caches, "decoder.", **variant)
    _, encoder_grads = mlp_backward(dz, encoder_caches, "encoder.", **variant)
    grads.update(encoder_grads)
    return grads


REFERENCES = {
    "mse_loss": mse_loss,
    "bce_with_logits": bce_with_logits,
    "mlp_forward": mlp_forward,
    "autoencoder_forward": autoencoder_forward,
    "mlp_backward": mlp_backward,
    "autoencoder_backward": autoencoder_backward,
}


def _shapes(params: Params) -> str:
    return ", ".join(f"{name} {tuple(value.shape)}" for name, value in params.items())


# ----------------------------------------------------------------------------- 1. squared error


def check_mse_loss(mse_fn: Callable, x_hat: Array, x: Array) -> float:
    """loss summed over pixels and averaged over the batch, dx_hat = 2 (x_hat - x) / B."""
    batch, pixels = x.shape
    loss_ref, dx_ref = losses.mse(x_hat, x)
    diff = x_hat - x
    result = call(mse_fn, x_hat, x)
    loss, dx_hat = unpack(result, ["loss", "dx_hat"], "mse_loss(x_hat, x)")
    check_type("loss", loss, float)
    check_close(
        "loss",
        loss,
        loss_ref,
        rtol=1e-10,
        hints=[
            (
                loss_ref * batch,
                "your loss is summed over the batch as well: the convention sums "
                "over the pixels but AVERAGES over the batch, so divide the total "
                "by B",
            ),
            (
                loss_ref / pixels,
                "your loss is averaged over the pixels as well (np.mean over "
                "every entry?): the convention SUMS over the D pixels and "
                "averages over the batch only",
            ),
            (loss_ref / 2, "your loss is half the squared error: this loss has no factor 1/2"),
            (
                float(np.sqrt(loss_ref)),
                "you took a square root: the loss is the squared error itself",
            ),
            (
                float(np.sum(np.abs(diff))) / batch,
                "this is the absolute error |x_hat - x|: the loss squares the difference",
            ),
        ],
    )
    check_shape("dx_hat", dx_hat, x.shape)
    check_close(
        "dx_hat",
        dx_hat,
        dx_ref,
        rtol=1e-10,
        common_hints=False,
        hints=[
            (
                dx_ref / 2,
                "your gradient is half the right one: the derivative of (x_hat - x)**2 "
                "is 2 (x_hat - x), so the factor 2 is missing",
            ),
            (
                -dx_ref,
                "the sign of your gradient is flipped: d/dx_hat (x_hat - x)**2 = "
                "+2 (x_hat - x), not 2 (x - x_hat)",
            ),
            (
                -dx_ref / 2,
                "the sign is flipped AND the factor 2 is missing: dx_hat = 2 (x_hat - x) / B",
            ),
            (
                dx_ref * batch,
                "your gradient is not divided by the batch size: the loss is a mean "
                "over the batch, so every entry of dx_hat carries a 1/B",
            ),
            (
                dx_ref * batch / 2,
                "the factor 2 and the 1/B are both missing: dx_hat = 2 (x_hat - x) / B",
            ),
            (
                dx_ref / pixels,
                "your gradient is divided by the number of pixels as well: the "
                "loss sums over the pixels, so only 1/B belongs in the gradient",
            ),
        ],
    )
    return loss


# ----------------------------------------------------------------------------- 2. cross-entropy


def check_bce_with_logits(bce_fn: Callable, logits: Array, x: Array) -> float:
    """softplus(l) - x l summed over pixels, batch mean; exact and finite for logits of +-1e4."""
    batch, pixels = x.shape
    loss_ref, dlogits_ref = bce_with_logits(logits, x)
    softplus = np.logaddexp(0.0, logits)
    s = layers.sigmoid(logits)
    result = call(bce_fn, logits, x)
    loss, dlogits = unpack(result, ["loss", "dlogits"], "bce_with_logits(logits, x)")
    check_type("loss", loss, float)
    check_close(
        "loss",
        loss,
        loss_ref,
        rtol=1e-9,
        common_hints=False,
        hints=[
            (loss_ref * batch, "your loss is summed over the batch as well: divide the total by B"),
            (
                loss_ref / pixels,
                "your loss is averaged over the pixels as well: sum over the "
                "pixels, average over the batch only",
            ),
            (
                loss_ref * batch / pixels,
                "your loss is summed over the batch and averaged over "
                "the pixels: the axes are swapped (sum over axis 1, the "
                "pixels; average over axis 0, the batch)",
            ),
            (
                -loss_ref,
                "your loss has the wrong sign: it is MINUS the log-likelihood, "
                "softplus(l) - x*l, which is never negative",
            ),
            (
                float(np.sum(softplus + x * logits)) / batch,
                "the sign of the x*l term is wrong: the loss is softplus(l) - x*l",
            ),
            (
                float(np.sum(np.logaddexp(0.0, -logits) - x * logits)) / batch,
                "you used softplus(-l) where softplus(l) belongs: loss = log(1 + exp(l)) - x*l",
            ),
            (
                float(np.sum(s - x * logits)) / batch,
                "you used sigmoid(l) where softplus(l) = log(1 + exp(l)) belongs",
            ),
        ],
    )
    check_shape("dlogits", dlogits, x.shape)
    check_close(
        "dlogits",
        dlogits,
        dlogits_ref,
        rtol=1e-9,
        common_hints=False,
        hints=[
            (
                -dlogits_ref,
                "the sign of your gradient is flipped: d/dl [softplus(l) - x*l] = "
                "sigmoid(l) - x, not x - sigmoid(l)",
            ),
            (
                dlogits_ref * batch,
                "your gradient is not divided by the batch size: the loss is a "
                "mean over the batch, so dlogits = (sigmoid(l) - x) / B",
            ),
            (
                dlogits_ref / pixels,
                "your gradient is divided by the number of pixels as well: only 1/B belongs in it",
            ),
            (
                s * (1 - s) / batch,
                "this is the derivative of sigmoid itself; the gradient of "
                "the loss is (sigmoid(l) - x) / B",
            ),
            (
                (logits - x) / batch,
                "this is (l - x) / B: logits where probabilities belong — "
                "the gradient is (sigmoid(l) - x) / B",
            ),
            (
                (1 - s - x) / batch,
                "this uses 1 - sigmoid(l) = sigmoid(-l) where sigmoid(l) "
                "belongs: check the sign inside exp",
            ),
        ],
    )
    # extreme logits: the stable form is exact here, log(sigmoid(l)) is not
    logits_big = np.array([[1e4, -1e4, 1e4, -1e4, 0.0, 30.0]])
    x_big = np.array([[1.0, 0.0, 0.0, 1.0, 0.5, 1.0]])
    loss_big_ref, dlogits_big_ref = bce_with_logits(logits_big, x_big)
    loss_big, dlogits_big = unpack(
        call(bce_fn, logits_big, x_big), ["loss", "dlogits"], "bce_with_logits(logits, x)"
    )
    if not np.isfinite(loss_big):
        raise ExerciseError(
            f"for logits of +-1e4 your loss is {loss_big}, but the exact value is finite "
            f"({loss_big_ref:.6g}). log(sigmoid(l)), log(1 - sigmoid(l)) and log(1 + exp(l)) "
            "overflow or hit log(0) in floating point: use the stable form softplus(l) - x*l with "
            "softplus(l) = max(l, 0) + log1p(exp(-|l|))"
        )
    if not np.isclose(loss_big, loss_big_ref, rtol=1e-9, atol=0):
        raise ExerciseError(
            f"for logits of +-1e4 your loss is {loss_big:.6g}, but the exact value is "
            f"{loss_big_ref:.6g}: clipping the logits or the probabilities changes the loss. "
            "Use the exact stable form softplus(l) - x*l with "
            "softplus(l) = max(l, 0) + log1p(exp(-|l|))"
        )
    if not np.all(np.isfinite(dlogits_big)):
        raise ExerciseError(
            f"for logits of +-1e4 your gradient is {dlogits_big}: compute sigmoid(l) without "
            "overflow (1 / (1 + exp(-l)) for l >= 0, exp(l) / (1 + exp(l)) for l < 0)"
        )
    check_close("dlogits for logits of +-1e4", dlogits_big, dlogits_big_ref, rtol=1e-9, atol=1e-12)
    return loss


# ----------------------------------------------------------------------------- 3. forward


def check_autoencoder_forward(
    forward: Callable, params: Params, x: Array, model: Autoencoder | None = None
) -> None:
    """z = encoder(x), out = decoder(z) and the caches the backward pass reads."""
    z_ref, out_ref, cache_ref = autoencoder_forward(params, x)
    batch = x.shape[0]
    z_dim = params[f"encoder.W{n_layers(params, 'encoder.') - 1}"].shape[1]
    x_dim = x.shape[1]
    advice = (
        f"x is (batch, D) = {x.shape}; the encoder turns it into z (batch, z_dim) = "
        f"({batch}, {z_dim}), and the decoder takes z and turns it back into ({batch}, {x_dim}). "
        f"Layer i of each MLP computes h @ params[prefix + 'W' + str(i)] + params[prefix + 'b' "
        f"+ str(i)], with the shapes {_shapes(params)}"
    )
    result = call(forward, params, x, advice=advice)
    z, out, cache = unpack(result, ["z", "out", "cache"], "autoencoder_forward(params, x)")
    if np.shape(z) == out_ref.shape and np.shape(out) == z_ref.shape and z_dim != x_dim:
        raise ExerciseError("z and out are swapped: return (z, out, cache), the code first")
    z_relu_last, out_relu_last, _ = autoencoder_forward(params, x, relu_last=True)
    z_linear, out_linear, _ = autoencoder_forward(params, x, activation="identity")
    z_tanh, out_tanh, _ = autoencoder_forward(params, x, activation="tanh")
    check_shape("z", z, z_ref.shape)
    check_close(
        "z",
        z,
        z_ref,
        rtol=1e-10,
        hints=[
            (
                z_relu_last,
                "your code z has gone through a ReLU (it has no negative entries): the "
                "encoder's LAST layer has no activation",
            ),
            (z_linear, "your encoder looks linear: put a ReLU after every layer except the last"),
            (z_tanh, "your encoder uses tanh where the ReLU belongs (relu_forward)"),
        ],
    )
    check_shape("out", out, out_ref.shape)
    check_close(
        "out",
        out,
        out_ref,
        rtol=1e-10,
        hints=[
            (
                out_relu_last,
                "your decoder's output has gone through a ReLU: the decoder's LAST "
                "layer has no activation (its output is a raw value or a logit per "
                "pixel)",
            ),
            (out_linear, "your decoder looks linear: put a ReLU after every layer except the last"),
            (out_tanh, "your MLP uses tanh where the ReLU belongs (relu_forward)"),
        ],
    )
    if model is not None:
        model_out = model.decoder.forward(model.params, model.encode(x))[0]
        check_close("out compared with minivae.Autoencoder", out, model_out, rtol=1e-10)
    _check_caches(cache, cache_ref)


def _check_caches(cache: Any, cache_ref: tuple) -> None:
    """cache = (encoder caches, decoder caches), each a list of ((h_in, W), relu_cache)."""
    if cache is None:
        raise ExerciseError(
            "cache is None: return the caches of both MLPs, the backward pass needs them"
        )
    if not (isinstance(cache, tuple | list) and len(cache) == 2):
        raise ExerciseError(
            "cache should be the pair (encoder caches, decoder caches) that mlp_forward returned "
            f"for each MLP; got {type(cache).__name__}"
            + (f" of length {len(cache)}" if hasattr(cache, "__len__") else "")
        )
    for part, got, want in zip(("encoder", "decoder"), cache, cache_ref, strict=True):
        if not isinstance(got, list | tuple) or len(got) != len(want):
            length = len(got) if hasattr(got, "__len__") else "no"
            raise ExerciseError(
                f"the {part}'s caches should hold one entry per layer ({len(want)}), got "
                f"{length}: append (linear_cache, relu_cache) for every layer"
            )
        for i, (entry, (linear_want, relu_want)) in enumerate(zip(got, want, strict=True)):
            if not (isinstance(entry, tuple | list) and len(entry) == 2):
                raise ExerciseError(
                    f"the {part}'s cache of layer {i} should be (linear_cache, relu_cache) with "
                    "linear_cache = (h_in, W) from linear_forward"
                )
            linear_got, relu_got = entry
            h_in_ok = (
                isinstance(linear_got, tuple | list)
                and len(linear_got) == 2
                and np.shape(linear_got[0]) == linear_want[0].shape
                and np.allclose(linear_got[0], linear_want[0], rtol=1e-10, atol=1e-12)
            )
            if not h_in_ok:
                raise ExerciseError(
                    f"the {part}'s cache of layer {i} should start with linear_forward's cache "
                    "(h_in, W): the layer's input and its weight matrix"
                )
            if (relu_want is None) != (relu_got is None):
                which = "has none" if relu_want is None else "needs relu_forward's cache"
                raise ExerciseError(
                    f"the {part}'s cache of layer {i}: relu_cache should be "
                    f"{'None' if relu_want is None else 'the ReLU output'} (this layer {which})"
                )


# ----------------------------------------------------------------------------- 4. backward


def check_autoencoder_backward(
    backward: Callable, model: Autoencoder, params: Params, x: Array
) -> Params:
    """Every gradient of the model's loss (squared error or cross-entropy), from the caches of
    the reference forward pass (so a wrong forward pass costs this exercise nothing)."""
    batch = x.shape[0]
    loss_fn = mse_loss if model.loss_name == "mse" else bce_with_logits
    _, out, cache = autoencoder_forward(params, x)  # the reference caches, not the learner's
    _, dout = loss_fn(out, x)
    _, grads_ref = model.loss_and_grads(x)
    no_relu = autoencoder_backward(dout, cache, relu_step=False)
    widths = [params[f"decoder.W{i}"].shape for i in range(n_layers(params, "decoder."))]
    grads = call(
        backward,
        dout,
        cache,
        advice=f"dout is (batch, D) = {dout.shape}. Going down through layer i, dh is (batch, "
        "n_out of layer i) and dh @ W.T is (batch, n_in), the dh of the layer below; the "
        f"decoder's weights are {widths}, and the decoder's input gradient dz is the encoder's "
        "dout",
    )
    check_type("autoencoder_backward(dout, cache)", grads, dict)
    missing = [name for name in params if name not in grads]
    if missing:
        if all(".b" in name for name in missing):
            raise ExerciseError(
                f"no gradient for the biases {missing}: every layer's bias needs one too, "
                "db = dh.sum(axis=0), stored under the bias's name"
            )
        raise ExerciseError(
            f"grads has no entry for {missing}; it needs one for every key of params "
            f"({list(params)})"
        )
    extra = [name for name in grads if name not in params]
    if extra:
        raise ExerciseError(
            f"grads has entries {extra} that are not parameters; use the names of params"
        )
    # check from the output back to the input, so the first wrong one is where the error enters
    order = []
    for part in ("decoder.", "encoder."):
        for i in reversed(range(n_layers(params, part))):
            order += [f"{part}b{i}", f"{part}W{i}"]
    correct: list[str] = []
    for name in order:
        got = np.asarray(grads[name], dtype=np.float64)
        want = np.asarray(grads_ref[name])
        if want.ndim == 2 and got.shape == want.T.shape and want.shape != want.T.shape:
            raise ExerciseError(
                f"{name}: your gradient looks transposed: shape {got.shape}, but {name} is "
                f"{want.shape}. dW = h_in.T @ dh is (n_in, batch) @ (batch, n_out) = "
                "(n_in, n_out)"
            )
        check_shape(name, got, want.shape)
        if ".b" in name and not np.any(got) and np.any(want):
            raise ExerciseError(f"{name}: your bias gradient is all zeros: db = dh.sum(axis=0)")
        try:
            check_close(
                name,
                got,
                want,
                rtol=1e-8,
                atol=1e-12,
                hints=[
                    (
                        no_relu[name],
                        "the ReLU step is skipped on the way down: before dW and db of a layer "
                        "with a ReLU, dh = relu_backward(dh, relu_cache)",
                    ),
                    (
                        want / batch,
                        "divided by the batch size once more (a mean over the batch "
                        "where a sum belongs?): dout already carries the 1/B of the "
                        "loss, and parameter gradients are SUMMED over the batch",
                    ),
                    (
                        want * batch,
                        f"{batch} times too large: is dout multiplied by the batch size somewhere?",
                    ),
                ],
            )
        except ExerciseError as err:
            where = ""
            layer = name.replace(".W", ".").replace(".b", ".")
            done_layers = {c.replace(".W", ".").replace(".b", ".") for c in correct}
            if correct and layer not in done_layers and "entries differ" in str(err):
                where = (
                    f" The gradients of {', '.join(correct)} are right, so the error enters "
                    f"between those and {name}: check the ReLU step (dh * (relu out > 0)) and "
                    "dh = dh @ W.T on the way down"
                )
            raise ExerciseError(f"{err}.{where}") from None
        correct.append(name)

    # and by central finite differences of the loss, in float64 (a right one gives ~1e-7 or less)
    def loss_of_params() -> float:
        return loss_fn(autoencoder_forward(params, x)[1], x)[0]

    for name in order:
        numeric = numerical_gradient(loss_of_params, params[name])
        check_gradient(f"{name} against finite differences", grads[name], numeric, tol=1e-6)
    return grads


# ----------------------------------------------------------------------------- 5. training loop


def _replay(
    params_init: Params,
    batches: list[Array],
    lr: float,
    epoch_of: list[int],
    reset_every_epoch: bool = False,
) -> tuple[Params, list[float]]:
    """minivae's Adam on the reference gradients of the given minibatches, in order; returns the
    weights and each minibatch's loss."""
    params = {name: value.copy() for name, value in params_init.items()}
    optimizer = Adam(params, lr=lr)
    current = 0
    batch_losses = []
    for x_batch, epoch in zip(batches, epoch_of, strict=True):
        if reset_every_epoch and epoch != current:
            optimizer, current = Adam(params, lr=lr), epoch
        _, logits, cache = autoencoder_forward(params, x_batch)
        loss, dlogits = bce_with_logits(logits, x_batch)
        batch_losses.append(loss)
        optimizer.step(autoencoder_backward(dlogits, cache))
    return params, batch_losses


def check_train_autoencoder(
    train: Callable,
    params_init: Params,
    x_train: Array,
    x_test: Array,
    *,
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 3e-3,
    target: float | None = 24.0,
    seeds: bool = True,
) -> tuple[float, float]:
    """Train copies of params_init with the learner's loop and the course's forward, loss and
    backward (so only the loop is graded); check order, reproducibility, the reported losses and
    the weights against a replay. ``target``: the held-out loss to beat (None: no check of
    progress); ``seeds``: check that the seed decides the run (it cannot where one minibatch
    holds the whole data). Returns the held-out loss before and after."""
    n = x_train.shape[0]

    def held_out_loss(params: Params) -> float:
        return bce_with_logits(autoencoder_forward(params, x_test)[1], x_test)[0]

    def train_copy(seed: int, n_epochs: int, spy: list | None = None) -> tuple[Params, Any]:
        params = {name: value.copy() for name, value in params_init.items()}

        def recording_forward(params: Params, x: Array) -> tuple:
            if spy is not None:
                spy.append(np.array(x, copy=True))
            return autoencoder_forward(params, x)

        using = dict(REFERENCES, autoencoder_forward=recording_forward)
        result = call(
            train,
            params,
            x_train,
            n_epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            mutates=("params",),
            using=using,
        )
        return params, result

    loss_before = held_out_loss(params_init)
    batches: list[Array] = []
    params_a, losses_a = train_copy(seed=0, n_epochs=epochs, spy=batches)
    if not isinstance(losses_a, list | tuple | np.ndarray) or len(losses_a) != epochs:
        got = "None" if losses_a is None else type(losses_a).__name__
        if hasattr(losses_a, "__len__"):
            got += f" of length {len(losses_a)}"
        raise ExerciseError(
            f"train_autoencoder should return a list with one mean loss per epoch ({epochs} for "
            f"epochs={epochs}), got {got}"
        )
    check_finite("the per-epoch losses", np.asarray(losses_a, dtype=np.float64))
    if all(np.array_equal(params_a[name], params_init[name]) for name in params_a):
        raise ExerciseError(
            "after training, params are exactly as they were: is optimizer.step(grads) called "
            "for every minibatch? (Adam updates the arrays of params in place)"
        )
    epoch_of: list[int] = []
    if batches:
        sizes = [len(b) for b in batches]
        if sum(sizes) != epochs * n:
            raise ExerciseError(
                f"in {epochs} epochs your loop fed {sum(sizes)} examples to the forward pass; "
                f"expected {epochs} x {n} = {epochs * n}: every epoch visits every example once "
                "(the last minibatch may be smaller: range(0, n, batch_size))"
            )
        if max(sizes) > batch_size:
            raise ExerciseError(f"a minibatch of {max(sizes)} examples; batch_size is {batch_size}")
        seen = np.concatenate(batches)
        epochs_seen = seen.reshape(epochs, n, -1)
        for e in range(epochs):
            if not np.allclose(np.sort(epochs_seen[e].sum(axis=1)), np.sort(x_train.sum(axis=1))):
                raise ExerciseError(
                    f"epoch {e} did not visit each training example exactly once: index x_train "
                    "with a permutation of all n rows"
                )
        if np.array_equal(epochs_seen[0], x_train):
            raise ExerciseError(
                "your loop visits the examples in their original order: shuffle them every "
                "epoch with order = rng.permutation(n) and x_train[order[...]]"
            )
        if epochs > 1 and np.array_equal(epochs_seen[0], epochs_seen[1]):
            raise ExerciseError(
                "every epoch visits the examples in the same order: draw a NEW permutation at "
                "the start of each epoch, not once before the loop"
            )
        count = 0
        for b in batches:
            epoch_of.append(count // n)
            count += len(b)
        replayed, batch_losses = _replay(params_init, batches, lr, epoch_of)
        if not all(np.allclose(params_a[k], replayed[k], rtol=1e-7, atol=1e-10) for k in params_a):
            reset, _ = _replay(params_init, batches, lr, epoch_of, reset_every_epoch=True)
            if all(np.allclose(params_a[k], reset[k], rtol=1e-7, atol=1e-10) for k in params_a):
                raise ExerciseError(
                    "your weights are those of an Adam that starts afresh every epoch: create "
                    "the optimizer once, before the loop (its moments carry over between epochs)"
                )
            raise ExerciseError(
                "your weights differ from one Adam step per minibatch on that minibatch's "
                "gradients, in the order your loop visited them: call optimizer.step(grads) "
                "exactly once per minibatch, with the gradients of THIS minibatch"
            )
        # the reported loss of each epoch: the size-weighted mean of its minibatches' losses
        first = [i for i, e in enumerate(epoch_of) if e == 0]
        losses0 = np.array([batch_losses[i] for i in first])
        sizes0 = np.array([len(batches[i]) for i in first])
        check_close(
            "the mean training loss of the first epoch",
            float(losses_a[0]),
            float(np.dot(losses0, sizes0)) / n,
            rtol=1e-6,
            common_hints=False,
            hints=[
                (
                    float(np.mean(losses0)),
                    "this is the plain mean of the minibatch losses; the "
                    "last minibatch is smaller, so weight each minibatch's loss by its size and "
                    "divide by the number of examples",
                ),
                (
                    float(np.sum(losses0)) / n,
                    "you added up the minibatch losses (each already a "
                    "mean) and divided by the number of examples: multiply each by its minibatch "
                    "size first",
                ),
                (
                    float(np.sum(losses0)),
                    "this is the sum of the minibatch losses; report their "
                    "mean over the epoch, each weighted by its minibatch size",
                ),
                (
                    float(np.dot(losses0, sizes0)),
                    "divide the epoch's total by the number of examples",
                ),
                (
                    float(losses0[-1]),
                    "this is the loss of the epoch's last minibatch; report the "
                    "mean over the whole epoch (each minibatch weighted by its size)",
                ),
            ],
        )
    loss_after = held_out_loss(params_a)
    if target is not None and not loss_after < target:
        raise ExerciseError(
            f"after {epochs} epochs the held-out loss is {loss_after:.2f} (it was "
            f"{loss_before:.2f} before training); a working loop gets it below {target:g}. Per "
            f"epoch your training losses were "
            f"{np.round(np.asarray(losses_a, dtype=float), 2).tolist()}. Is optimizer.step(grads) "
            "called for every minibatch, with the gradients of THIS minibatch?"
        )
    if target is not None and not losses_a[-1] < losses_a[0]:
        raise ExerciseError(f"the training loss should go down over the epochs; it went {losses_a}")
    if not seeds:
        return loss_before, loss_after
    params_b, _ = train_copy(seed=0, n_epochs=epochs)
    if not all(np.array_equal(params_a[name], params_b[name]) for name in params_a):
        raise ExerciseError(
            "two runs with the same seed ended with different weights, so your loop is not "
            "reproducible: create rng = np.random.default_rng(seed) inside the function and draw "
            "every permutation from it (np.random.shuffle / np.random.permutation use NumPy's "
            "global generator, which `seed` does not control)"
        )
    params_c, _ = train_copy(seed=1, n_epochs=epochs)
    if all(np.array_equal(params_a[name], params_c[name]) for name in params_a):
        raise ExerciseError(
            "seed 0 and seed 1 gave exactly the same weights: your loop ignores the seed. Are "
            "the examples shuffled with a generator made from `seed`?"
        )
    return loss_before, loss_after
