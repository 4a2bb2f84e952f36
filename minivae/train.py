"""The training loop: shuffled minibatches, an optimizer, a history, a progress bar.

    history = fit(model, x_train, x_val, epochs=20, batch_size=128, seed=0)

Works for any model of the protocol (:mod:`minivae.models.base`): ``prepare`` checks the data
once, then every step calls ``objective`` on a minibatch of it with fresh noise from
``draw_eps``; ``loss`` gives the held-out terms (``loss``, ``recon`` and, for a VAE, ``kl``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import backend
from .accel import blas
from .backend import Array
from .models.base import Model
from .optim import Adam
from .validation import (
    NotFiniteError,
    all_finite,
    check_positive_int,
    check_seed,
    largest_magnitude,
)


class TrainingDiverged(FloatingPointError):
    """Raised when a loss term or a gradient stops being finite during training."""


@dataclass
class History:
    """Per-epoch means of every loss term: ``history.train["kl"][epoch]``, same for ``val``."""

    train: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    beta: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train.get("loss", []))

    def append(self, split: str, terms: dict[str, float]) -> None:
        table = self.train if split == "train" else self.val
        for key, value in terms.items():
            table.setdefault(key, []).append(float(value))


def evaluate(
    model: Model, x: Array, batch_size: int = 1024, seed: int = 0, *, labels: Array | None = None
) -> dict[str, float]:
    """Mean of every loss term over x, with a fixed seed for eps so repeated calls agree.

    Each term is a one-sample estimate (the ELBO needs a sampled z), averaged over all rows.
    x: (n, x_dim) or a Batch the model prepared; labels: (n,) for a model that takes them.
    Returns term name -> mean over the n rows.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    data = model.prepare(x, labels=labels)
    rng = backend.generator(seed, model.xp)
    totals: dict[str, float] = {}
    n = len(data)
    if n == 0:  # a Batch with no rows (arrays are refused by prepare): no mean to take
        raise ValueError("x is an empty batch (0 rows); evaluate needs at least one row")
    for start in range(0, n, batch_size):
        rows = data.rows(slice(start, start + batch_size))
        eps = model.draw_eps(len(rows), rng)
        for key, value in model.loss(rows, eps).items():
            totals[key] = totals.get(key, 0.0) + value * len(rows)
    return {key: value / n for key, value in totals.items()}


def _progress(total: int, enabled: bool, desc: str) -> Any:
    """A notebook-aware tqdm bar, or None when disabled or tqdm is not installed."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a course dependency, not the library's
        return None
    return tqdm(total=total, desc=desc, unit="epoch", leave=True)


# A diverging run overflows (exp of a huge logvar) before its loss is inf; _check_finite then stops
# it with a TrainingDiverged naming the step and the term, so NumPy's overflow warnings (errors
# under `-W error`) are silenced during training rather than pre-empting that message.
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def fit(
    model: Model,
    x_train: Array,
    x_val: Array | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: Any = None,
    lr: float = 1e-3,
    seed: int = 0,
    beta_schedule: Callable[[int], float] | None = None,
    on_epoch_end: Callable[[int, Any, History], None] | None = None,
    progress: bool = True,
    history: History | None = None,
    mask: Array | None = None,
    labels: Array | None = None,
    val_labels: Array | None = None,
    blas_threads: int | str | None = blas.AUTO,
) -> History:
    """Train ``model`` on ``x_train`` (n, x_dim) and return the per-epoch :class:`History`.

    Args:
        x_val: held-out data, evaluated after every epoch (same terms as training); complete
            rows, also when training with a ``mask``.
        optimizer: any object with ``step(grads)`` over ``model.params``; default Adam(lr).
        seed: seeds the shuffling of minibatches (the model's own seed fixes weights and eps).
        beta_schedule: ``step -> beta``, called before every optimizer step with the global
            step count (0, 1, ...); sets ``model.beta``, e.g. for a KL warm-up.
        on_epoch_end: called as ``on_epoch_end(epoch, model, history)`` after each epoch.
        progress: show a progress bar (tqdm, notebook-aware) with the latest losses.
        history: continue an earlier run's History instead of starting a new one.
        mask: (n, x_dim) booleans, True = observed, to train on incomplete data: the likelihood
            counts observed entries only and the encoder sees zero-filled rows (see
            :mod:`minivae.masks`); its rows are shuffled with those of ``x_train``.
        labels, val_labels: (n,) class labels of ``x_train`` and ``x_val``, for a model that
            takes them (conditional and semi-supervised models); shuffled with their rows.
            ``x_train`` and ``x_val`` may also be Batches from ``model.prepare``.
        blas_threads: 'auto' (default): one BLAS thread for a small model, where more threads
            only wait for each other (:mod:`minivae.accel.blas`); an int sets the count; None
            leaves BLAS as it is.

    Raises:
        TrainingDiverged: at the first step where a loss term or gradient is not finite, naming it.
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(seed, np.random.Generator):  # a NumPy generator may drive the shuffling
        seed = check_seed(seed, "seed")
    if beta_schedule is not None and not hasattr(model, "beta"):
        # an Autoencoder has no KL term: the schedule would be set and silently ignored
        raise TypeError(
            f"beta_schedule needs a model with a KL weight (a VAE); {type(model).__name__} has none"
        )
    train_data = model.prepare(x_train, "x_train", mask=mask, labels=labels)
    val_data = None if x_val is None else model.prepare(x_val, "x_val", labels=val_labels)
    optimizer = Adam(model.params, lr=lr) if optimizer is None else optimizer
    # the weights this run starts from: when it diverges, the failing minibatch is scored on
    # them to tell extreme data (not finite there either) from too large a step (finite there)
    start_flat = model.params.flat.copy()
    history = History() if history is None else history
    shuffle_rng = np.random.default_rng(seed)
    n = len(train_data)
    step = sum(math.ceil(n / batch_size) for _ in range(history.epochs))
    bar = _progress(epochs, progress, type(model).__name__)
    blas_limit = blas.limited(blas.threads_for(model, batch_size, blas_threads))
    try:
        with blas_limit:
            for epoch in range(history.epochs, history.epochs + epochs):
                _train_epoch(model, train_data, batch_size, optimizer, shuffle_rng, epoch, step,
                             beta_schedule, history, start_flat)
                step += math.ceil(n / batch_size)
                history.beta.append(float(getattr(model, "beta", 1.0)))
                if val_data is not None:
                    history.append("val", _validation_terms(model, val_data, epoch))
                if bar is not None:
                    shown = history.val if val_data is not None else history.train
                    bar.set_postfix({("val " if val_data is not None else "") + k: f"{v[-1]:.2f}"
                                     for k, v in shown.items()})
                    bar.update(1)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, model, history)
    finally:
        if bar is not None:
            bar.close()
    return history


def _train_epoch(
    model: Any,
    data: Any,
    batch_size: int,
    optimizer: Any,
    shuffle_rng: np.random.Generator,
    epoch: int,
    step: int,
    beta_schedule: Callable[[int], float] | None,
    history: History,
    start_flat: Array | None = None,
) -> None:
    """One pass over ``data`` in shuffled minibatches; appends the epoch's mean terms."""
    n = len(data)
    # the permutation is drawn on the host so the same seed shuffles alike on any backend
    order = backend.to_device(shuffle_rng.permutation(n), model.xp)
    sums: dict[str, float] = {}
    for start in range(0, n, batch_size):
        if beta_schedule is not None:
            _set_scheduled_beta(model, beta_schedule, step)
        rows = order[start : start + batch_size]
        minibatch = data.rows(rows)
        eps = model.draw_eps(len(minibatch))
        terms, grads = model.objective(minibatch, eps, need_grads=True)
        # the diagnosis runs only when a term or gradient is not finite
        _check_finite(terms, grads, epoch, step,
                      functools.partial(_diagnose, model, minibatch, eps, start_flat))
        optimizer.step(grads)
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value * len(minibatch)
        step += 1
    history.append("train", {key: value / n for key, value in sums.items()})


def _set_scheduled_beta(model: Any, beta_schedule: Callable[[int], float], step: int) -> None:
    """model.beta = beta_schedule(step), with an error that names the schedule when it is bad."""
    value = beta_schedule(step)
    try:
        model.beta = value
    except (TypeError, ValueError) as err:
        raise type(err)(f"beta_schedule({step}) returned {value!r}: {err}") from None


def _check_finite(
    terms: dict[str, float], grads: Any, epoch: int, step: int,
    diagnose: Callable[[], str] | None = None,
) -> None:
    """Stop training with a clear message at the first non-finite loss term or gradient.

    ``diagnose()`` says whether the data or the step size is at fault (see :func:`_diagnose`).
    """
    for key, value in terms.items():
        if not math.isfinite(value):
            others = ", ".join(f"{k} = {v:.4g}" for k, v in terms.items() if k != key)
            cause = diagnose() if diagnose else "try a smaller learning rate or check the data"
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}, step {step}: the {key!r} term became "
                f"{value} ({others}); {cause}"
            )
    if not all_finite(grads.flat):  # one sum over all gradients, on the flat buffer
        bad = [name for name, g in grads.items() if not all_finite(g)]
        cause = diagnose() if diagnose else "try a smaller learning rate"
        raise TrainingDiverged(
            f"training diverged at epoch {epoch}, step {step}: the gradient of {bad} is not "
            f"finite; {cause}"
        )


@np.errstate(over="ignore", invalid="ignore", divide="ignore")  # it scores what overflowed
def _diagnose(model: Any, minibatch: Any, eps: Any, start_flat: Array | None) -> str:
    """Whether the data or the step size made this minibatch's loss or gradient non-finite.

    The same minibatch and eps are scored again on the weights the run started from: if the
    loss and gradients are finite there, the updates walked the weights somewhere they overflow
    (the step size is at fault); if not, the data are (no learning rate helps).
    """
    data_size = largest_magnitude(minibatch.x)
    if start_flat is None:
        return f"try a smaller learning rate or check the data (largest |x| = {data_size:.3g})"
    current = model.params.flat.copy()
    try:
        model.params.flat[...] = start_flat
        terms, grads = model.objective(minibatch, eps, need_grads=True)
        finite_at_start = all(math.isfinite(v) for v in terms.values()) and all_finite(grads.flat)
    finally:
        model.params.flat[...] = current  # leave the model as training left it
    if finite_at_start:
        return (
            "the step size is at fault: this minibatch's loss and gradients were finite at the "
            f"weights the run started from (largest |x| = {data_size:.3g}); try a smaller "
            "learning rate"
        )
    return (
        "the data are at fault: this minibatch's loss or gradient is not finite even at the "
        f"weights the run started from (largest |x| = {data_size:.3g}), so no learning rate "
        "helps; rescale or standardize the data (minivae.data.standardize) or use "
        "dtype='float64'"
    )


def _validation_terms(model: Any, val_data: Any, epoch: int) -> dict[str, float]:
    """evaluate() on the held-out data, with a TrainingDiverged when a term is not finite."""
    train_ok = "the training terms are finite, so x_val holds what the model cannot score"
    try:
        terms = evaluate(model, val_data, seed=epoch)
    except NotFiniteError as err:
        raise TrainingDiverged(
            f"the validation terms after epoch {epoch} are not finite ({train_ok}): {err}"
        ) from None
    bad = {key: value for key, value in terms.items() if not math.isfinite(value)}
    if bad:  # a model whose own loss() does not check its terms
        raise TrainingDiverged(
            f"the validation terms after epoch {epoch} are not finite ({train_ok}): {bad}"
        )
    return terms
