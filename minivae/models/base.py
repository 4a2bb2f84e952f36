"""The model protocol: the public methods that training, evaluation, imputation, anomaly scores,
metrics and checkpoints call. Every model of the library implements it; a new model is one new
file in this folder that does too, and nothing outside a model's module calls its underscore
names.

Every model (:class:`Model`):

    prepare(x, mask=None, labels=None)   -> Batch     check data once, move it to the backend
    loss_and_grads(batch, eps=None)      -> (terms, grads)   the training objective, all gradients
    loss(batch, eps=None)                -> terms     the same terms without gradients
    draw_eps(n, rng=None)                -> eps | None   the noise one evaluation of the loss needs
    config()                             -> dict      constructor arguments (checkpoints)
    state() / load_state(state)          -> dict      what else behaviour depends on (checkpoints):
                                                      the generator, beta, the regularizer
    params, grads, xp, dtype, rng, x_dim               parameters, gradients, backend, generator

Latent-variable models with a Gaussian posterior add (:class:`LatentVariableModel`):

    posterior(x)                 -> (mu, logvar)   q(z|x), each (batch, z_dim)
    decoder_output(z)            -> out            the decoder's raw output for z
    likelihood                                     p(x|z): nll / log_prob (with masks), mean, sample
    importance_samples(x, k)     -> ImportanceSamples   log p(x|z_i), log p(z_i), log q(z_i|x)

``terms`` is a dict of floats: ``loss`` (what is minimised), ``recon`` and, for models with a
KL term, ``kl``. A :class:`Batch` is data a model has checked and moved: every method above takes
a Batch or a raw array, and a raw array is checked (once) through ``prepare``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend
from ..backend import Array
from ..importance import ImportanceSamples
from ..masks import check_mask
from ..params import Parameters
from ..validation import (
    NotFiniteError,
    all_finite,
    check_data,
    check_dtype,
    check_rng,
    check_seed,
    explain_overflow,
)

__all__ = ["UNLABELLED", "Batch", "LatentVariableModel", "Model", "check_class_labels"]

#: For the public methods whose results are checked for NaN and inf (``check_terms``,
#: ``check_result``): NumPy's overflow warnings are silenced there, as in ``fit``, so that the
#: error that names the cause is what a user sees (and what tests see under ``-W error``).
#: A decorator only: a decorating np.errstate is re-entrant, a ``with`` of one instance is not.
checked_overflow = np.errstate(over="ignore", invalid="ignore", divide="ignore")


@dataclass(frozen=True)
class Batch:
    """Data a model has checked and moved to its backend and dtype.

    x:      (n, x_dim); where ``mask`` is False the entry is 0 (zero-filled, never read).
    mask:   (n, x_dim) booleans, True = observed, or None for complete data.
    labels: (n,) integer class labels for models that take them, or None.
    """

    x: Array
    mask: Array | None = None
    labels: Array | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def rows(self, index: Array) -> Batch:
        """The rows ``index`` (a slice or an integer array) of every field, still checked."""
        return Batch(
            self.x[index],
            None if self.mask is None else self.mask[index],
            None if self.labels is None else self.labels[index],
        )


class Model:
    """Base of every model: one Parameters mapping, its gradients, a backend, a generator.

    Attributes:
        params: name -> array, every weight of the model (see :mod:`minivae.params`).
        grads:  the same names; filled by ``loss_and_grads`` (overwritten by each call).
        xp:     the array module (NumPy or CuPy) that holds the parameters.
        rng:    the model's seeded generator, used for eps when none is passed in.
    """

    x_dim: int
    #: Whether ``prepare`` accepts class labels (conditional and semi-supervised models do).
    takes_labels = False

    # ---------------------------------------------------------------------------------------
    # Construction
    # ---------------------------------------------------------------------------------------

    def _setup(
        self, shapes: dict, seed: int | None, dtype: Any, backend_name: str | None
    ) -> None:
        dtype = check_dtype(dtype, "dtype")
        seed = check_seed(seed, "seed")
        check = _parameter_check.get()
        if check is not None:  # checkpoint.load: the file's arrays and a size limit, before memory
            check(dict(shapes), dtype)
        self.dtype = dtype
        self.backend_name = backend.default_name() if backend_name is None else backend_name
        self.xp = backend.get(self.backend_name)
        self.seed = seed
        self.params = Parameters.zeros(shapes, dtype, self.xp)
        self.grads = self.params.zeros_like()
        # Weights are drawn with NumPy's generator on the host, whatever the backend, so the same
        # seed gives the same initial weights on the CPU and on the GPU.
        init_rng = np.random.default_rng(seed)
        host = Parameters.zeros(shapes, dtype)
        for mlp in self.networks():
            mlp.init_params(host, init_rng)
        self.params.flat[...] = backend.to_device(host.flat, self.xp)
        self.rng = backend.default_rng(None if seed is None else seed + 1, self.xp)

    def networks(self) -> list:
        """The MLPs whose parameters the model holds, in the order they are initialised."""
        raise NotImplementedError

    def config(self) -> dict:
        """The constructor arguments, enough to build the same model again (for save/load)."""
        raise NotImplementedError

    def state(self) -> dict:
        """What the model's behaviour depends on besides ``config()`` and ``params``, JSON-able.

        A checkpoint stores it and :meth:`load_state` restores it, so a loaded model computes
        the same loss for the same eps and draws the same ``sample()`` as the saved one:

        - ``"rng"``: the state of the model's generator when it is NumPy's; None for a device
          generator (CuPy, the stand-in), whose state cannot be read back (see
          :mod:`minivae.checkpoint`);
        - ``"beta"``: for a model with a ``beta`` (set after construction by schedules, notebooks);
        - ``"regularizer"``: for a model with a ``regularizer``, its config
          (:func:`minivae.regularizers.regularizer_config`: a TypeError for one that cannot be
          stored, rather than a checkpoint that silently loads back another objective).

        A model with more such state extends both methods:
        ``return {**super().state(), "tau": self.tau}`` here, and in ``load_state``
        ``state = dict(state); self.tau = state.pop("tau"); super().load_state(state)``.
        """
        out: dict[str, Any] = {"rng": _generator_state(self.rng)}
        if hasattr(self, "beta"):
            out["beta"] = float(self.beta)
        if hasattr(self, "regularizer"):
            from ..regularizers import regularizer_config

            out["regularizer"] = regularizer_config(self.regularizer)
        return out

    def load_state(self, state: dict) -> None:
        """Restore what :meth:`state` returned; a key this model does not know is refused."""
        from ..regularizers import regularizer_from_config

        if not isinstance(state, dict):
            raise ValueError(f"a model state must be a dict, got {type(state).__name__}")
        for key in state:
            if key != "rng" and (key not in ("beta", "regularizer") or not hasattr(self, key)):
                raise ValueError(
                    f"{type(self).__name__} has no state {key!r}; it stores "
                    f"{sorted(self.state())}"
                )
        if "beta" in state:
            self.beta = state["beta"]  # checked by the model's property
        if "regularizer" in state:
            self.regularizer = regularizer_from_config(state["regularizer"])
        if state.get("rng") is not None:
            self.rng = _restore_generator(state["rng"], self.rng)

    # ---------------------------------------------------------------------------------------
    # Data
    # ---------------------------------------------------------------------------------------

    def prepare(
        self, x: Any, name: str = "x", *, mask: Any = None, labels: Any = None
    ) -> Batch:
        """Check a batch once and move it to this model's backend and dtype.

        x: (n, x_dim) floats. mask: (n, x_dim) booleans, True = observed; missing entries are
        never read (they may hold NaN) and are zero-filled. labels: (n,) class labels, for models
        that take them. A :class:`Batch` is returned as it is.
        """
        if isinstance(x, Batch):
            return x
        if mask is None:
            x = self._to_model_dtype(check_data(x, name, dim=self.x_dim), name)
        else:
            if not hasattr(x, "shape") or not hasattr(x, "dtype"):
                raise TypeError(
                    f"{name} must be an array of shape (batch, {self.x_dim}), "
                    f"got {type(x).__name__}"
                )
            if len(x.shape) != 2 or x.shape[1] != self.x_dim:
                raise ValueError(
                    f"{name} must have shape (batch, {self.x_dim}), got {tuple(x.shape)}"
                )
            mask = check_mask(mask, x.shape)
            if np.dtype(str(x.dtype)).kind != "f":
                raise TypeError(f"{name} must hold floating-point numbers, got dtype {x.dtype}")
            # data and mask may come from the host (a NumPy mask with CuPy data...)
            x, mask = backend.to_device(x, self.xp), backend.to_device(mask, self.xp)
            filled = self.xp.where(mask, x, 0).astype(x.dtype)
            filled = check_data(filled, f"{name} (observed entries)", dim=self.x_dim)
            x = self._to_model_dtype(filled, name)
        self.check_values(x, name)
        return Batch(x, mask, self.check_labels(labels, x.shape[0]))

    def _to_model_dtype(self, x: Array, name: str) -> Array:
        x = backend.to_device(x, self.xp)
        if x.dtype != self.dtype:
            with np.errstate(over="ignore"):  # an overflow is reported just below
                x = x.astype(self.dtype)
            # finite float64 data can overflow float32 (1e300 -> inf): stop it here, not as a
            # NaN loss many steps later
            if not all_finite(x):
                raise ValueError(
                    f"{name} holds values too large for the model's dtype {self.dtype} "
                    f"(they overflow to inf when cast); rescale the data or use dtype='float64'"
                )
        return x

    def check_values(self, x: Array, name: str = "x") -> None:
        """Check that the values of a checked batch suit the loss (e.g. [0, 1] for a Bernoulli)."""
        likelihood = getattr(self, "likelihood", None)
        if likelihood is not None:
            likelihood.check_data(x, name)

    def check_labels(self, labels: Any, n: int) -> Array | None:
        """Labels for a batch of n rows: refused by a model that takes none."""
        if labels is not None:
            raise TypeError(f"{type(self).__name__} takes no labels, got labels={labels!r:.60}")
        return None

    #: What the noise's last axis is called in messages ("eps must be (batch, z_dim) = ...").
    eps_axis_name = "z_dim"

    def check_eps(self, eps: Any, batch: int) -> Array | None:
        """Check noise for ``batch`` rows, shaped as :meth:`draw_eps` draws it, and move it.

        A deterministic model (no noise: :meth:`eps_shape` is ()) ignores it and returns None.
        """
        shape = self.eps_shape(batch)
        if not shape:
            return None
        eps = check_data(eps, "eps", dim=shape[-1], ndim=len(shape))
        if tuple(eps.shape) != shape:
            raise ValueError(
                f"eps must be (batch, {self.eps_axis_name}) = {shape}, got {tuple(eps.shape)}"
            )
        return self._to_model_dtype(eps, "eps")  # finite after the cast too

    def eps_shape(self, batch: int) -> tuple[int, ...]:
        """The shape of the noise one loss evaluation needs for ``batch`` rows; () for none."""
        return ()

    def draw_eps(self, batch: int, rng: Any = None) -> Array | None:
        """eps ~ N(0, I) of :meth:`eps_shape`, from ``rng`` or the model's own generator.

        None for a deterministic model (an Autoencoder needs no noise).
        """
        shape = self.eps_shape(batch)
        if not shape:
            return None
        rng = self.rng if rng is None else check_rng(rng, "rng")
        # to_device: a NumPy generator may drive a CuPy model (the draws are then copied over)
        eps = backend.to_device(rng.standard_normal(shape), self.xp)
        return eps.astype(self.dtype, copy=False)

    # ---------------------------------------------------------------------------------------
    # The objective
    # ---------------------------------------------------------------------------------------

    @checked_overflow
    def loss_and_grads(
        self, x: Any, eps: Array | None = None, *, mask: Any = None, labels: Any = None
    ) -> tuple[dict, Parameters]:
        """The minibatch loss, its parts, and the gradient of the loss for every parameter.

        x: a Batch or (batch, x_dim) data (checked by :meth:`prepare`, with ``mask`` and
        ``labels``); eps: noise of :meth:`eps_shape`, drawn when None. Returns ``(terms, grads)``
        with ``grads`` this model's own ``self.grads`` (overwritten by the next call).
        """
        batch = self.prepare(x, mask=mask, labels=labels)
        eps = self.draw_eps(len(batch)) if eps is None else self.check_eps(eps, len(batch))
        terms, grads = self.objective(batch, eps, need_grads=True)
        return self.check_terms(terms, batch, "the loss"), grads

    @checked_overflow
    def loss(
        self, x: Any, eps: Array | None = None, *, mask: Any = None, labels: Any = None
    ) -> dict:
        """The loss and its parts for x, without gradients (one sampled z per example, if any).

        This is a stochastic estimate, like the training loss: the ELBO needs a sample of z,
        and using z = mu instead would not be the ELBO.
        """
        batch = self.prepare(x, mask=mask, labels=labels)
        eps = self.draw_eps(len(batch)) if eps is None else self.check_eps(eps, len(batch))
        return self.check_terms(self.objective(batch, eps, need_grads=False)[0], batch, "the loss")

    def check_terms(self, terms: dict, batch: Batch, what: str) -> dict:
        """``terms`` if every one is finite; else a NotFiniteError saying what overflowed."""
        bad = {key: value for key, value in terms.items() if not math.isfinite(value)}
        if bad:
            shown = ", ".join(f"{key} = {value}" for key, value in bad.items())
            raise NotFiniteError(self.explain_overflow(f"{what} ({shown})", x=batch.x))
        return terms

    def check_result(self, value: Array, what: str, **inputs: Array) -> Array:
        """``value`` if it is finite; else a NotFiniteError naming the extreme input, if any."""
        if not all_finite(value):
            raise NotFiniteError(self.explain_overflow(what, **inputs))
        return value

    def explain_overflow(self, what: str, **inputs: Any) -> str:
        """Why ``what`` is NaN or inf from finite inputs: their and the parameters' magnitudes.

        inputs: name -> the data (an array, a list or a Batch) that went in.
        """
        arrays = {
            name: value.x if isinstance(value, Batch)
            else value if hasattr(value, "shape") else np.asarray(value, dtype=np.float64)
            for name, value in inputs.items()
        }
        return explain_overflow(what, {**arrays, "parameter": self.params.flat}, self.dtype)

    def objective(self, batch: Batch, eps: Array | None, need_grads: bool) -> tuple[dict, Any]:
        """The loss terms for a checked batch and checked noise, and (if asked) the gradients.

        The one method a model writes for its objective; ``loss_and_grads`` and ``loss`` check
        their arguments and call it. Returns ``(terms, self.grads or None)``.
        """
        raise NotImplementedError

    def n_params(self) -> int:
        """The number of scalar parameters."""
        return int(self.params.flat.size)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "class")
        return f"{type(self).__name__}({args})  # {self.n_params():,} parameters"


class LatentVariableModel(Model):
    """A model with a Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))) and a decoder p(x|z).

    Implements the latent-variable half of the protocol on top of four things a subclass gives:
    ``z_dim``, ``likelihood``, ``posterior(x)`` and ``decoder_output(z)``; the defaults below
    (prior N(0, I), importance sampling, sampling from the prior) then hold for it. A model with
    another posterior or prior (a flow, a conditional model) overrides the pieces that change.
    """

    z_dim: int
    likelihood: Any

    def posterior(self, x: Any) -> tuple[Array, Array]:
        """q(z|x): mu, logvar, each (batch, z_dim), for x (batch, x_dim) or a Batch."""
        raise NotImplementedError

    def decoder_output(self, z: Array) -> Array:
        """The decoder's raw output for z (batch, z_dim): logits, a mean, or [mean, logvar]."""
        raise NotImplementedError

    def posterior_sampler(self, batch: Batch) -> Callable[[Array], tuple[Array, Array]]:
        """q(z|x) for the rows of ``batch`` as a sampler: eps (m, batch, z_dim) -> (z, log q(z|x)),
        z = mu + exp(0.5 * logvar) * eps, log q of shape (m, batch). Importance sampling draws
        through it; a richer posterior (a flow) overrides this and nothing else."""
        from ..importance import gaussian_log_density

        mu, logvar = self.posterior(batch)
        with np.errstate(over="ignore"):  # reported just below
            std = self.xp.exp(0.5 * logvar)
        if not (all_finite(mu) and all_finite(std)):  # else z = mu + std * eps is inf or NaN
            raise NotFiniteError(self.explain_overflow("q(z|x) (its mu or std)", x=batch))

        def draw(eps: Array) -> tuple[Array, Array]:
            return mu + std * eps, gaussian_log_density(eps, logvar)

        return draw

    def decoder_output_for(self, z: Array, batch: Batch, repeats: int) -> Array:
        """The decoder's output for ``repeats`` samples of z per row of ``batch``, sample-major
        (z: (repeats * batch, z_dim)), as importance sampling needs it. A conditional model
        overrides this to pass every sample its row's label."""
        return self.decoder_output(z)

    def check_z(self, z: Any, name: str = "z") -> Array:
        """Check latent codes (batch, z_dim) and move them to this model's backend and dtype."""
        return self._to_model_dtype(check_data(z, name, dim=self.z_dim), name)

    @checked_overflow
    def decode(self, z: Any) -> Array:
        """The mean of p(x|z), (batch, x_dim), for z (batch, z_dim): probabilities or means."""
        return self.check_result(self.likelihood.mean(self.decoder_output(z)), "decode(z)", z=z)

    @checked_overflow
    def encode(self, x: Any) -> tuple[Array, Array]:
        """q(z|x): mu, logvar (the same as :meth:`posterior`, the name the lectures use)."""
        mu, logvar = self.posterior(x)
        self.check_result(mu, "encode(x)'s mu", x=x)
        self.check_result(logvar, "encode(x)'s logvar", x=x)
        return mu, logvar

    @checked_overflow
    def reconstruct(self, x: Any) -> Array:
        """x_hat = mean of p(x | z = mu(x)), the posterior-mean reconstruction: (batch, x_dim)."""
        mu, _ = self.encode(x)  # checked: an overflow is named here, not as a bad z in decode
        return self.decode(mu)

    def sample(self, n: int, rng: Any = None) -> Array:
        """n images decoded from the prior: z ~ N(0, I), returns the mean of p(x|z), (n, x_dim)."""
        from ..validation import check_positive_int

        n = check_positive_int(n, "n")
        rng = self.rng if rng is None else check_rng(rng, "rng")
        z = rng.standard_normal((n, self.z_dim))
        return self.decode(backend.to_device(z, self.xp).astype(self.dtype))

    def eps_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.z_dim)

    def kl_per_latent(self, x: Any) -> Array:
        """The KL of each latent dimension averaged over x: (z_dim,). Near 0: an inactive unit."""
        from ..kl import kl_standard_normal_elementwise

        mu, logvar = self.posterior(x)
        return kl_standard_normal_elementwise(mu, logvar).mean(axis=0)

    def importance_samples(
        self,
        x: Any,
        k: int,
        rng: Any = None,
        *,
        eps: Array | None = None,
        keep_mean: bool = False,
        max_chunk: int = 2**22,
    ) -> ImportanceSamples:
        """k samples z_i ~ q(z|x) per example and the three log-densities importance sampling needs.

            log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x),     z_i = mu + std * eps_i

        x: (batch, x_dim) or a Batch; with a mask, log p(x|z_i) counts the observed entries
        only (and q sees the zero-filled rows). eps (k, batch, z_dim) fixes the draws; otherwise
        they come from ``rng`` (default: the model's generator), k at a time or in chunks of at
        most ``max_chunk`` decoder outputs, so memory stays bounded for large k. With
        ``keep_mean``, the mean of p(x|z_i) of every sample is kept: (k, batch, x_dim).
        Returns each log-density as (k, batch) float64.
        """
        from ..importance import standard_normal_log_density
        from ..validation import check_positive_int

        batch = self.prepare(x)
        xp, n = self.xp, len(batch)
        if eps is not None:
            if len(getattr(eps, "shape", ())) != 3 or tuple(eps.shape[1:]) != (n, self.z_dim):
                raise ValueError(
                    f"eps must be (K, batch, z_dim) = (K, {n}, {self.z_dim}), "
                    f"got {tuple(getattr(eps, 'shape', ()))}"
                )
            eps = self._to_model_dtype(check_data(eps, "eps", dim=self.z_dim, ndim=3), "eps")
            k = int(eps.shape[0])
        else:
            k = check_positive_int(k, "k")
            rng = self.rng if rng is None else check_rng(rng, "rng")
        draw = self.posterior_sampler(batch)
        log_px_z = xp.empty((k, n), dtype=np.float64)
        log_pz = xp.empty((k, n), dtype=np.float64)
        log_qz = xp.empty((k, n), dtype=np.float64)
        means = xp.empty((k, n, self.x_dim), dtype=self.dtype) if keep_mean else None
        out_width = self.likelihood.outputs_per_pixel * self.x_dim
        chunk = max(1, min(k, max_chunk // max(1, n * out_width)))  # bounds memory
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            if eps is None:
                e = rng.standard_normal((m, n, self.z_dim))
                e = backend.to_device(e, xp).astype(self.dtype, copy=False)
            else:
                e = eps[start : start + m]
            z, log_q = draw(e)  # (m, batch, z_dim) and log q(z|x): (m, batch)
            out = self.decoder_output_for(z.reshape(m * n, self.z_dim), batch, m)
            x_rep = _repeat(batch.x, m)
            mask_rep = None if batch.mask is None else _repeat(batch.mask, m)
            rows = slice(start, start + m)
            log_px_z[rows] = self.likelihood.log_prob(out, x_rep, mask_rep).reshape(m, n)
            log_pz[rows] = standard_normal_log_density(z)
            log_qz[rows] = log_q
            if keep_mean:
                means[rows] = self.likelihood.mean(out).reshape(m, n, self.x_dim)
        return ImportanceSamples(log_px_z, log_pz, log_qz, means)

    @checked_overflow
    def log_likelihood(
        self, x: Any, k: int = 100, rng: Any = None, max_chunk: int = 2**22
    ) -> Array:
        """Importance-sampled estimate of log p(x) with k samples (IWAE bound, Burda et al. 2016).

            log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

        computed as logsumexp_i(log w_i) - log k with the maximum subtracted first, so no weight
        overflows. k = 1 is the ELBO (in expectation); the bound tightens as k grows.
        x: (batch, x_dim) -> (batch,) in nats, float64.
        """
        from ..importance import log_mean_exp

        samples = self.importance_samples(x, k, rng, max_chunk=max_chunk)
        return self.check_result(log_mean_exp(samples.log_w, axis=0), "log_likelihood(x)", x=x)


def _repeat(a: Array, k: int) -> Array:
    """(batch, d) -> (k * batch, d): k copies of every row block, sample-major."""
    xp = backend.array_module(a)
    return xp.broadcast_to(a, (k, *a.shape)).reshape(k * a.shape[0], *a.shape[1:])


#: A check every model runs on its parameter shapes before allocating them (see below).
_parameter_check: contextvars.ContextVar[Callable[[dict, np.dtype], None] | None] = (
    contextvars.ContextVar("minivae_parameter_check", default=None)
)


@contextlib.contextmanager
def checking_parameters(check: Callable[[dict, np.dtype], None]) -> Iterator[None]:
    """While the block runs, a model being built calls ``check(shapes, dtype)`` (name -> shape)
    before it allocates or initialises any parameter: :func:`minivae.checkpoint.load` compares a
    file's arrays and a size limit with what its configuration asks for before spending memory.
    """
    token = _parameter_check.set(check)
    try:
        yield
    finally:
        _parameter_check.reset(token)


#: NumPy bit generators whose state a checkpoint may restore.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _generator_state(rng: Any) -> dict | None:
    """A NumPy generator's state as JSON-able values; None for a device generator."""
    if not isinstance(rng, np.random.Generator):
        return None

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(v) for key, v in value.items()}
        if isinstance(value, np.ndarray):
            return {"dtype": value.dtype.name, "values": value.tolist()}
        return value.item() if isinstance(value, np.generic) else value

    return plain(rng.bit_generator.state)


def _restore_generator(saved: Any, current: Any) -> Any:
    """A NumPy generator in the ``saved`` state; ``current`` unchanged when it is a device one.

    A model on CuPy (or the stand-in) keeps its own backend's generator, freshly seeded as at
    construction: a NumPy generator would copy every draw to the device.
    """
    if not isinstance(current, np.random.Generator):
        return current
    name = saved.get("bit_generator") if isinstance(saved, dict) else None
    if name not in _BIT_GENERATORS:
        raise ValueError(
            f"the stored generator state names bit generator {name!r}; expected one of "
            f"{list(_BIT_GENERATORS)}"
        )

    def arrays(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"dtype", "values"}:
            return np.asarray(value["values"], dtype=np.dtype(value["dtype"]))
        if isinstance(value, dict):
            return {key: arrays(v) for key, v in value.items()}
        return value

    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = arrays(saved)
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise ValueError(f"the stored {name} generator state is invalid ({err})") from None
    return np.random.Generator(bit_generator)


def stack_shapes(*parts: dict) -> dict:
    """Merge the name -> shape mappings of several networks, refusing a name used twice."""
    shapes: dict[str, tuple[int, ...]] = {}
    for part in parts:
        clash = set(shapes) & set(part)
        if clash:
            raise ValueError(f"parameter names used twice: {sorted(clash)}")
        shapes.update(part)
    return shapes


def check_hidden(hidden: Any) -> tuple[int, ...]:
    """Hidden layer widths as a tuple of positive ints (``(256,)``; an int is refused clearly)."""
    from ..validation import check_positive_int

    if isinstance(hidden, (int, np.integer, str)) or not isinstance(hidden, Sequence):
        raise TypeError(
            f"hidden must be a sequence of layer widths such as (256,) or (512, 256), "
            f"got {hidden!r}"
        )
    return tuple(check_positive_int(h, "each hidden width") for h in hidden)


#: The label of an unlabelled example, for semi-supervised models.
UNLABELLED = -1


def check_class_labels(
    labels: Any, n: int, n_classes: int, xp: Any, *, allow_unlabelled: bool = False,
    name: str = "labels",
) -> Array:
    """Check class labels for n rows and move them to ``xp`` as int64: (n,).

    Labels are integers in [0, n_classes); with ``allow_unlabelled``, :data:`UNLABELLED` (-1)
    marks an example without a label. Floats, booleans, one-hot rows and out-of-range values are
    refused with a message that names what was given.
    """
    if labels is None:
        raise TypeError(f"{name} are required: an integer array of shape ({n},)")
    if not hasattr(labels, "shape") or not hasattr(labels, "dtype"):
        if isinstance(labels, (list, tuple)):
            labels = np.asarray(labels)
        else:
            raise TypeError(f"{name} must be an integer array of shape ({n},), got {labels!r:.60}")
    kind = np.dtype(str(labels.dtype)).kind
    if kind not in "iu":
        raise TypeError(
            f"{name} must hold integer class indices 0..{n_classes - 1}, got dtype {labels.dtype}"
            + ("; pass labels.argmax(axis=1) instead of one-hot rows" if labels.ndim == 2 else "")
        )
    if tuple(labels.shape) != (n,):
        raise ValueError(f"{name} must have shape ({n},), one per row of x, got {labels.shape}")
    host = backend.to_numpy(labels)
    low = UNLABELLED if allow_unlabelled else 0
    bad = (host < low) | (host >= n_classes)
    if bad.any():
        allowed = f"0..{n_classes - 1}" + (" or -1 (unlabelled)" if allow_unlabelled else "")
        raise ValueError(
            f"{name} must be in {allowed}, got {sorted(set(host[bad].tolist()))[:5]}"
        )
    return backend.to_device(host.astype(np.int64), xp)
