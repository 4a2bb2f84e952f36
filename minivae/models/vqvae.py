"""The Vector-Quantised VAE (van den Oord, Vinyals & Kavukcuoglu 2017), every gradient by hand.

The latent is discrete. An MLP encoder maps x to z_e(x), ``z_dim`` numbers read as P positions
(``positions``) of D = z_dim / P dimensions each. Every position is replaced by its nearest of K
codebook vectors e_1..e_K (a parameter ``codebook`` of shape (K, D)),

    k_p = argmin_j ||z_e,p - e_j||^2 = argmin_j ( ||z_e,p||^2 + ||e_j||^2 - 2 z_e,p . e_j ),

and the decoder sees z_q = (e_{k_1}, ..., e_{k_P}). An image is thus described by P integers in
0..K-1: P log2 K bits. The loss, per example, is

    loss(x) = -log p(x | z_q)  +  ||sg[z_e] - z_q||^2  +  beta ||z_e - sg[z_q]||^2
              reconstruction      codebook term            commitment term

where sg[.] is the stop-gradient (the identity forward, zero gradient backward). As everywhere in
the library the squared norms are **summed over positions and code dimensions, averaged over the
batch**, in nats for the reconstruction. The codebook and commitment terms have the same value;
they differ in where their gradient goes: the codebook term moves the chosen codes towards the
encoder outputs (the encoder gets nothing from it), the commitment term pulls the encoder's
outputs towards their codes (the codebook gets nothing from it), with weight beta (0.25 default;
the paper reports 0.1 to 2.0 working).

argmin has no gradient, so the decoder's gradient dL/dz_q is copied to z_e unchanged (the
straight-through estimator, z_q = z_e + sg[z_q - z_e]). With B examples per batch:

    dL/dz_e = dL/dz_q + 2 beta (z_e - z_q) / B                            (B, P, D)
    dL/de_j = (2 / B) sum_{(b, p): k_bp = j} (e_j - z_e,bp)               (K, D)

and no decoder gradient reaches the codebook. The per-code sum is a one-hot product,
onehot(k)^T @ (e_k - z_e), which runs on NumPy, CuPy and the strict stand-in alike.

Code usage: a code no encoder output picks gets no gradient and stays where it is, dead.
:func:`code_perplexity` of the usage counts (between 1 and K) says how many codes are in effect
used; :class:`CodeUsage` records it per epoch for ``fit(..., on_epoch_end=...)`` and can restart
dead codes at encoder outputs (:meth:`VQVAE.restart_dead_codes`); :meth:`VQVAE.kmeans_init`
starts the codebook from k-means of the encoder's outputs; ``ema_decay`` replaces the codebook
term's gradient by moving averages. :class:`CodePrior` is a learned autoregressive prior over the
P codes, to sample new examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import Array, array_module, to_device, to_numpy
from ..layers import init_linear, linear_backward, linear_forward, relu_backward, relu_forward
from ..likelihoods import make_likelihood
from ..mlp import MLP
from ..validation import check_data, check_finite_scalar, check_positive_int
from .base import Batch, Model, check_hidden, stack_shapes

__all__ = [
    "VQVAE", "CodePrior", "CodeUsage", "code_perplexity", "codes_to_one_hot", "nearest_code",
    "one_hot",
]


def nearest_code(z: Array, codebook: Array) -> Array:
    """The index of the nearest codebook vector for each row of z: (M,) integers in 0..K-1.

        k_m = argmin_j ||z_m||^2 + ||e_j||^2 - 2 z_m . e_j          z: (M, D), codebook: (K, D)

    The (M, K) table of squared distances comes from one matrix product; the (M, K, D) array of
    all differences z_m - e_j is never made. Ties go to the lowest index.
    """
    xp = array_module(z)
    z_sq = (z * z).sum(axis=1, keepdims=True)  # (M, 1)
    e_sq = (codebook * codebook).sum(axis=1)  # (K,)
    distances = z_sq + e_sq[None, :] - 2.0 * (z @ codebook.T)  # (M, K)
    return xp.argmin(distances, axis=1)


def one_hot(index: Array, n: int, dtype: Any) -> Array:
    """(M,) integers in 0..n-1 -> (M, n) rows of zeros with a one at ``index``, in ``dtype``."""
    xp = array_module(index)
    return (index[:, None] == xp.arange(n)[None, :]).astype(dtype)


def code_perplexity(counts: Any) -> float:
    """exp(entropy) of the code usage: exp(-sum_j p_j log p_j), p_j = counts_j / sum(counts).

    counts: (K,) how often each code was picked (over an epoch, not one batch: a batch of 128
    examples x 16 positions sees too few assignments to measure a 512-code usage). 0 log 0 = 0.
    Returns a float in [1, K]: 1 when one code takes every assignment, K when all are used
    equally; in nats inside the exp (with log2, use 2 ** entropy; mixing the two is wrong).
    """
    counts = to_numpy(counts).astype(np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"counts must be a non-empty (K,) array, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or (counts < 0).any():
        raise ValueError("counts must be finite and >= 0")
    total = counts.sum()
    if total <= 0:
        raise ValueError("counts are all zero: no assignment was counted")
    p = counts[counts > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


class VQVAE(Model):
    """A VQ-VAE with MLP encoder and decoder and a codebook of K vectors of D dimensions.

    Args:
        x_dim: pixels per example.
        n_codes: K, the number of codebook vectors.
        z_dim: the encoder's output width P * D.
        positions: P, how many codes describe one example; must divide ``z_dim``.
        hidden: hidden widths of the encoder; the decoder mirrors them.
        likelihood: 'bernoulli' (logits), 'gaussian' (fixed variance ``obs_var``) or
            'gaussian_learned', as for the VAE (:mod:`minivae.likelihoods`).
        beta: the commitment weight (0.25 default). ``fit``'s ``beta_schedule`` would schedule it.
        activation: hidden activation.
        codebook_scale: the codebook starts as N(0, scale^2) draws (PyTorch's nn.Embedding with
            scale 1). Codes far outside the encoder's outputs are never picked (dead codes):
            restart them (:class:`CodeUsage`) or start from :meth:`kmeans_init`.
        ema_decay: None (default) learns the codebook from the codebook term's gradient; a
            decay g in [0, 1) instead sets each code to a moving average of the encoder outputs
            assigned to it (the paper's appendix; 0.99 is usual), updated by every
            ``loss_and_grads`` call (a training step); the codebook's gradient is then 0. The
            averages (``ema_counts``, ``ema_sums``) are not parameters: a checkpoint does not
            keep them, and a loaded model starts them afresh.
        seed, dtype, backend: as for the VAE.

    Parameters: ``encoder.W0, ..., decoder.W0, ..., codebook`` (K, D). Deterministic: no noise
    (``eps_shape`` is ()), so ``loss(x)`` is the same number every time.
    """

    def __init__(
        self,
        x_dim: int,
        n_codes: int = 32,
        z_dim: int = 128,
        positions: int = 16,
        hidden: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        beta: float = 0.25,
        activation: str = "relu",
        obs_var: float = 1.0,
        codebook_scale: float = 1.0,
        ema_decay: float | None = None,
        seed: int | None = 0,
        dtype: Any = "float32",
        backend: str | None = None,
    ):
        self.x_dim = check_positive_int(x_dim, "x_dim")
        self.n_codes = check_positive_int(n_codes, "n_codes (K, the number of codebook vectors)")
        self.z_dim = check_positive_int(z_dim, "z_dim (the encoder's output width P * D)")
        self.positions = check_positive_int(positions, "positions (P)")
        if self.z_dim % self.positions:
            raise ValueError(
                f"positions={self.positions} must divide z_dim={self.z_dim}: the encoder's "
                f"{self.z_dim} outputs are read as positions x code_dim (P x D); try "
                f"positions in {[p for p in range(1, self.z_dim + 1) if self.z_dim % p == 0]}"
            )
        self.code_dim = self.z_dim // self.positions
        self.hidden = check_hidden(hidden)
        self.likelihood = make_likelihood(likelihood, var=obs_var) if likelihood == "gaussian" \
            else make_likelihood(likelihood)
        self.obs_var = float(obs_var)
        self.beta = beta  # checked by the property
        self.activation = activation
        self.codebook_scale = check_finite_scalar(codebook_scale, "codebook_scale", minimum=0.0)
        if ema_decay is not None:
            ema_decay = check_finite_scalar(ema_decay, "ema_decay", minimum=0.0)
            if ema_decay >= 1.0:
                raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.ema_decay = ema_decay
        self.encoder = MLP([self.x_dim, *self.hidden, self.z_dim], activation, "encoder.")
        out_dim = self.likelihood.outputs_per_pixel * self.x_dim
        self.decoder = MLP([self.z_dim, *reversed(self.hidden), out_dim], activation, "decoder.")
        shapes = stack_shapes(
            self.encoder.param_shapes(),
            self.decoder.param_shapes(),
            {"codebook": (self.n_codes, self.code_dim)},
        )
        self._setup(shapes, seed, dtype, backend)
        # the codebook is drawn on the host from its own stream of the seed, so the MLPs' weights
        # are those of the same seed without a codebook, on every backend
        rng = np.random.default_rng(None if seed is None else [int(seed), 8])
        host = self.codebook_scale * rng.standard_normal((self.n_codes, self.code_dim))
        self.params["codebook"] = to_device(host.astype(self.dtype), self.xp)
        self.reset_ema()

    def reset_ema(self, codes: Array | None = None) -> None:
        """Forget the EMA statistics (all codes, or the integer array ``codes``): a code keeps
        its value until an encoder output is assigned to it again. A no-op without ``ema_decay``.
        """
        if self.ema_decay is None:
            return
        if codes is None or not hasattr(self, "ema_counts"):
            #: EMA state (not parameters, not in checkpoints): N_j and m_j of the module docstring
            self.ema_counts = self.xp.zeros(self.n_codes, dtype=self.dtype)
            self.ema_sums = self.xp.zeros((self.n_codes, self.code_dim), dtype=self.dtype)
        else:
            self.ema_counts[codes] = 0
            self.ema_sums[codes] = 0

    @property
    def beta(self) -> float:
        """The commitment weight: a finite float >= 0."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        self._beta = check_finite_scalar(value, "beta (the commitment weight)", minimum=0.0)

    @property
    def bits(self) -> float:
        """What one example's code can hold: P log2 K bits."""
        return self.positions * math.log2(self.n_codes)

    def networks(self) -> list:
        return [self.encoder, self.decoder]

    def config(self) -> dict:
        return {
            "class": "VQVAE",
            "x_dim": self.x_dim,
            "n_codes": self.n_codes,
            "z_dim": self.z_dim,
            "positions": self.positions,
            "hidden": list(self.hidden),
            "likelihood": self.likelihood.name,
            "beta": self.beta,
            "activation": self.activation,
            "obs_var": self.obs_var,
            "codebook_scale": self.codebook_scale,
            "ema_decay": self.ema_decay,
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    # -------------------------------------------------------------------------------------
    # The pieces
    # -------------------------------------------------------------------------------------

    def encode(self, x: Any) -> Array:
        """z_e(x): the encoder's output as (batch, P, D), before quantisation."""
        batch = self.prepare(x)
        h, _ = self.encoder.forward(self.params, batch.x)
        return h.reshape(len(batch), self.positions, self.code_dim)

    def quantize(self, z_e: Array) -> tuple[Array, Array]:
        """(codes, z_q) for encoder outputs z_e (batch, P, D): codes (batch, P), z_q like z_e."""
        n = z_e.shape[0]
        codebook = self.params["codebook"]
        codes = nearest_code(z_e.reshape(n * self.positions, self.code_dim), codebook)
        return codes.reshape(n, self.positions), codebook[codes].reshape(z_e.shape)

    def codes(self, x: Any, batch_size: int = 1024) -> Array:
        """The code of every position of every example: (n, P) integers in 0..K-1."""
        batch = self.prepare(x)
        parts = [
            self.quantize(self.encode(batch.rows(slice(start, start + batch_size))))[0]
            for start in range(0, len(batch), batch_size)
        ]
        return parts[0] if len(parts) == 1 else self.xp.concatenate(parts, axis=0)

    def check_codes(self, codes: Any, name: str = "codes") -> Array:
        """Check integer codes (n, P) in 0..K-1 and move them to this model's backend."""
        if not hasattr(codes, "shape") or not hasattr(codes, "dtype"):
            if not isinstance(codes, (list, tuple)):
                raise TypeError(
                    f"{name} must be an integer array of shape (n, {self.positions}), "
                    f"got {type(codes).__name__}"
                )
            codes = np.asarray(codes)
        if np.dtype(str(codes.dtype)).kind not in "iu":
            raise TypeError(f"{name} must hold integer code indices, got dtype {codes.dtype}")
        if len(codes.shape) != 2 or codes.shape[1] != self.positions or codes.shape[0] == 0:
            raise ValueError(
                f"{name} must have shape (n, {self.positions}) (one code per position), "
                f"got {tuple(codes.shape)}"
            )
        host = to_numpy(codes)
        if host.min() < 0 or host.max() >= self.n_codes:
            raise ValueError(
                f"{name} must be in 0..{self.n_codes - 1}, got values in "
                f"[{host.min()}, {host.max()}]"
            )
        return to_device(host.astype(np.int64), self.xp)

    def decoder_output_codes(self, codes: Any) -> Array:
        """The decoder's raw output (logits, a mean...) for codes (n, P): (n, outputs)."""
        codes = self.check_codes(codes)
        z_q = self.params["codebook"][codes.reshape(-1)].reshape(codes.shape[0], self.z_dim)
        return self.decoder.forward(self.params, z_q)[0]

    def decode_codes(self, codes: Any) -> Array:
        """The mean of p(x | z_q) for codes (n, P): (n, x_dim), e.g. pixel probabilities."""
        return self.likelihood.mean(self.decoder_output_codes(codes))

    def reconstruct(self, x: Any) -> Array:
        """x_hat = mean of p(x | z_q(x)): (batch, x_dim)."""
        _, z_q = self.quantize(self.encode(x))
        out = self.decoder.forward(self.params, z_q.reshape(z_q.shape[0], self.z_dim))[0]
        return self.likelihood.mean(out)

    # -------------------------------------------------------------------------------------
    # The objective and its gradients
    # -------------------------------------------------------------------------------------

    def objective(self, batch: Batch, eps: None, need_grads: bool) -> tuple[dict, Any]:
        """loss = recon + codebook + beta * commitment, and every gradient (see the module).

        recon      = -log p(x | z_q) averaged over the batch (observed entries with a mask);
        codebook   = (1/B) sum_{b,p,d} (sg[z_e] - z_q)^2;  commitment = (1/B) sum (z_e - sg[z_q])^2
        (the same number; they differ in where the gradient goes).
        Returns ``({"loss", "recon", "codebook", "commitment"}, grads or None)``.
        """
        params, grads = self.params, self.grads
        n, beta = len(batch), self.beta

        # forward: x -> z_e (B*P, D) -> nearest codes -> z_q -> decoder -> -log p(x|z_q)
        h, enc_cache = self.encoder.forward(params, batch.x)
        z_e = h.reshape(n * self.positions, self.code_dim)
        codebook = params["codebook"]
        codes = nearest_code(z_e, codebook)
        z_q = codebook[codes]  # (B*P, D), a gather: a copy, not a view
        out, dec_cache = self.decoder.forward(params, z_q.reshape(n, self.z_dim))
        recon, dout = self.likelihood.nll(out, batch.x, batch.mask)
        diff = z_e - z_q
        squared = float((diff * diff).sum()) / n
        terms = {
            "loss": recon + (1.0 + beta) * squared,
            "recon": recon,
            "codebook": squared,
            "commitment": squared,
        }
        if not need_grads:
            return terms, None

        # backward. decoder: dL/dz_q; straight-through: the same gradient lands on z_e, plus the
        # commitment term's 2 beta (z_e - z_q) / B (its sg[z_q] sends nothing to the codebook)
        dz_q, _ = self.decoder.backward(dout, dec_cache, grads)
        dz_e = dz_q + (2.0 * beta / n) * diff.reshape(n, self.z_dim)
        self.encoder.backward(dz_e, enc_cache, grads, need_dx=False)
        # codebook term: d/de_j = (2/B) sum over the positions assigned to j of (e_j - z_e); its
        # sg[z_e] sends nothing to the encoder, and dz_q does not reach the codebook
        assigned = one_hot(codes, self.n_codes, self.dtype)  # (B*P, K)
        if self.ema_decay is None:
            grads["codebook"][...] = assigned.T @ (diff * (-2.0 / n))
        else:
            grads["codebook"][...] = 0.0
            self._ema_update(assigned, z_e)
        return terms, grads

    def _ema_update(self, assigned: Array, z_e: Array) -> None:
        """The codebook as moving averages of its encoder outputs (van den Oord et al. 2017,
        appendix A.1), in place of the codebook term's gradient:

            N_j <- g N_j + (1 - g) n_j,   m_j <- g m_j + (1 - g) sum_{assigned to j} z_e,
            e_j <- m_j / N_j   where N_j > 0 (a code never assigned keeps its value)

        n_j: how many of the batch's outputs picked code j. The bias of the averages' zero start
        cancels in the ratio.
        """
        xp, g = self.xp, self.ema_decay
        self.ema_counts *= g
        self.ema_counts += (1.0 - g) * assigned.sum(axis=0)
        self.ema_sums *= g
        self.ema_sums += (1.0 - g) * (assigned.T @ z_e)
        codebook = self.params["codebook"]
        alive = (self.ema_counts > 1e-6)[:, None]
        counts = xp.maximum(self.ema_counts, 1e-6)[:, None]
        codebook[...] = xp.where(alive, self.ema_sums / counts, codebook)

    # -------------------------------------------------------------------------------------
    # Code usage
    # -------------------------------------------------------------------------------------

    def code_counts(self, x: Any, batch_size: int = 1024) -> np.ndarray:
        """How often each code is picked over all positions of all rows of x: (K,) int64 (host)."""
        codes = self.codes(x, batch_size).reshape(-1)
        counts = self.xp.bincount(codes, minlength=self.n_codes)
        return to_numpy(counts).astype(np.int64)

    def restart_dead_codes(
        self, x: Any, counts: Any = None, min_count: int = 1, seed: Any = None
    ) -> np.ndarray:
        """Move every code picked fewer than ``min_count`` times onto an encoder output of x.

        Each dead code e_j is set to z_e of a different (example, position) of x, drawn at random
        without replacement, so it is the nearest code of at least that output from now on and
        starts receiving gradient. counts: (K,) from :meth:`code_counts` on x (computed if None).
        seed: an int or a NumPy generator for the draw. Returns the restarted indices (host).
        """
        batch = self.prepare(x)
        counts = self.code_counts(batch) if counts is None else to_numpy(counts)
        if tuple(counts.shape) != (self.n_codes,):
            raise ValueError(f"counts must have shape ({self.n_codes},), got {counts.shape}")
        min_count = check_positive_int(min_count, "min_count")
        dead = np.flatnonzero(counts < min_count)
        if dead.size == 0:
            return dead
        z_e = self.encode(batch).reshape(len(batch) * self.positions, self.code_dim)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        rows = rng.choice(z_e.shape[0], size=dead.size, replace=dead.size > z_e.shape[0])
        codebook = self.params["codebook"]
        dead_on_device = to_device(dead, self.xp)
        codebook[dead_on_device] = z_e[to_device(rows, self.xp)]
        self.reset_ema(dead_on_device)
        return dead

    def kmeans_init(self, x: Any, iterations: int = 10, seed: Any = 0) -> list[float]:
        """Start the codebook at k-means (Lloyd's algorithm) of the encoder's outputs on x.

        Codes start at K distinct encoder outputs drawn at random; each iteration assigns every
        output to its nearest code and moves each code to the mean of its outputs (a code that
        gets none stays). Returns the mean squared distance per output after each iteration,
        which never increases.
        """
        iterations = check_positive_int(iterations, "iterations")
        batch = self.prepare(x)
        xp = self.xp
        z_e = self.encode(batch).reshape(len(batch) * self.positions, self.code_dim)
        m = z_e.shape[0]
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        start = rng.choice(m, size=self.n_codes, replace=self.n_codes > m)
        codebook = z_e[to_device(start, xp)]
        inertia = []
        for _ in range(iterations):
            codes = nearest_code(z_e, codebook)
            assigned = one_hot(codes, self.n_codes, self.dtype)  # (M, K)
            sizes = assigned.sum(axis=0)  # (K,)
            sums = assigned.T @ z_e  # (K, D)
            empty = (sizes == 0)[:, None]
            codebook = xp.where(empty, codebook, sums / xp.maximum(sizes, 1)[:, None])
            diff = z_e - codebook[nearest_code(z_e, codebook)]
            inertia.append(float((diff * diff).sum()) / m)
        self.params["codebook"] = codebook
        self.reset_ema()
        return inertia


class CodeUsage:
    """An ``on_epoch_end`` callback for :func:`minivae.fit`: code usage per epoch, dead codes and
    (optionally) their restart.

    After each epoch it counts the codes the model picks for every row of ``x`` (the training
    data, say), then records the counts, the perplexity exp(-sum p log p), the number of codes in
    use (count >= ``min_count``) and, with ``restart=True``, restarts the dead ones at encoder
    outputs of x (:meth:`VQVAE.restart_dead_codes`). The counts are taken before the restart,
    so a restarted code counts as in use only once it has survived an epoch of training.

        usage = CodeUsage(x_train, restart=True)
        fit(model, x_train, x_test, epochs=30, on_epoch_end=usage)
        usage.perplexity[-1], usage.in_use[-1], usage.restarted

    Attributes (one entry per epoch): counts (K,) arrays, perplexity, in_use, restarted (how many
    codes each epoch's restart moved).
    """

    def __init__(self, x: Any, restart: bool = False, min_count: int = 1, seed: int = 0):
        self.x = check_data(x, "x")
        self.restart = bool(restart)
        self.min_count = check_positive_int(min_count, "min_count")
        self.rng = np.random.default_rng(seed)
        self.counts: list[np.ndarray] = []
        self.perplexity: list[float] = []
        self.in_use: list[int] = []
        self.restarted: list[int] = []
        self._prepared: tuple[Any, Batch] | None = None

    def __call__(self, epoch: int, model: VQVAE, history: Any = None) -> None:
        if self._prepared is None or self._prepared[0] is not model:
            self._prepared = (model, model.prepare(self.x))  # checked and moved once
        batch = self._prepared[1]
        counts = model.code_counts(batch)
        self.counts.append(counts)
        self.perplexity.append(code_perplexity(counts))
        self.in_use.append(int((counts >= self.min_count).sum()))
        moved = 0
        if self.restart:
            moved = model.restart_dead_codes(batch, counts, self.min_count, self.rng).size
        self.restarted.append(int(moved))


# ---------------------------------------------------------------------------------------------
# A learned prior over the codes
# ---------------------------------------------------------------------------------------------


def codes_to_one_hot(codes: Any, n_codes: int) -> np.ndarray:
    """Codes (n, P) integers in 0..K-1 -> (n, P * K) float32 rows, one one-hot block per position
    (host NumPy): the data a :class:`CodePrior` is trained on."""
    codes = to_numpy(codes)
    if codes.ndim != 2 or np.dtype(codes.dtype).kind not in "iu":
        raise TypeError(f"codes must be an (n, P) integer array, got {codes.dtype} {codes.shape}")
    n_codes = check_positive_int(n_codes, "n_codes")
    if codes.size and (codes.min() < 0 or codes.max() >= n_codes):
        raise ValueError(f"codes must be in 0..{n_codes - 1}, got [{codes.min()}, {codes.max()}]")
    n, positions = codes.shape
    out = np.zeros((n, positions, n_codes), dtype=np.float32)
    np.put_along_axis(out, codes[:, :, None], 1.0, axis=2)
    return out.reshape(n, positions * n_codes)


class CodePrior(Model):
    """An autoregressive prior over a VQ-VAE's P codes, p(k) = prod_p p(k_p | k_1..k_{p-1}): one
    masked MLP (MADE, Germain et al. 2015) gives all P conditionals in one pass.

    Input: the codes as one-hot blocks x (batch, P * K) (:func:`codes_to_one_hot`). A hidden
    unit h has a degree m_h in 0..P-2 and sees the inputs of positions <= m_h; the K logits of
    position p see the hidden units with m_h < p, so they depend on earlier positions only (the
    first position's are its bias: a marginal). Weights are multiplied by their 0/1 masks M:

        a = x @ (W0 * M0) + b0,  h = relu(a),  logits = h @ (W1 * M1) + b1      (batch, P * K)
        loss = (1/B) sum_b -log p(k_b) = (1/B) sum_{b,p} -log softmax(logits_{b,p})[k_{b,p}]

    in nats, summed over positions, averaged over the batch (divide by log 2 for bits). Backward:
    dlogits = (softmax - x) / B per position; dW1 = (h^T dlogits) * M1, dW0 = (x^T da) * M0.

    Args: positions P, n_codes K, hidden width, seed, dtype, backend (as the other models).
    Parameters ``made.W0`` (P K, H), ``made.b0``, ``made.W1`` (H, P K), ``made.b1``.
    """

    def __init__(
        self,
        positions: int,
        n_codes: int,
        hidden: int = 256,
        seed: int | None = 0,
        dtype: Any = "float32",
        backend: str | None = None,
    ):
        self.positions = check_positive_int(positions, "positions (P)")
        self.n_codes = check_positive_int(n_codes, "n_codes (K)")
        self.hidden = check_positive_int(hidden, "hidden")
        self.x_dim = self.positions * self.n_codes
        width = self.x_dim
        shapes = {"made.W0": (width, self.hidden), "made.b0": (self.hidden,),
                  "made.W1": (self.hidden, width), "made.b1": (width,)}
        self._setup(shapes, seed, dtype, backend)
        position_of_input = np.repeat(np.arange(self.positions), self.n_codes)  # (P K,)
        # hidden degrees cycle through 0..P-2 so every conditional gets its share of units
        degree = np.arange(self.hidden) % max(1, self.positions - 1)
        mask0 = (position_of_input[:, None] <= degree[None, :]).astype(self.dtype)
        mask1 = (degree[:, None] < position_of_input[None, :]).astype(self.dtype)
        rng = np.random.default_rng(seed)
        w0, b0 = init_linear(rng, width, self.hidden, self.dtype)
        w1, b1 = init_linear(rng, self.hidden, width, self.dtype)
        self.mask0, self.mask1 = to_device(mask0, self.xp), to_device(mask1, self.xp)
        for name, value in (("made.W0", w0 * mask0), ("made.b0", b0), ("made.W1", w1 * mask1),
                            ("made.b1", b1)):
            self.params[name] = to_device(value.astype(self.dtype), self.xp)

    def networks(self) -> list:
        return []  # the masked layers are initialised in __init__

    def config(self) -> dict:
        return {"class": "CodePrior", "positions": self.positions, "n_codes": self.n_codes,
                "hidden": self.hidden, "seed": self.seed, "dtype": self.dtype.name}

    def check_values(self, x: Array, name: str = "x") -> None:
        """x must be one-hot blocks: 0/1 entries, exactly one 1 per position."""
        blocks = x.reshape(x.shape[0], self.positions, self.n_codes)
        if not bool((((x == 0) | (x == 1)).all()) and bool((blocks.sum(axis=2) == 1).all())):
            raise ValueError(
                f"{name} must hold one one-hot block of {self.n_codes} per position (0/1 entries, "
                "one 1 per block); build it with codes_to_one_hot(codes, n_codes)"
            )

    def logits(self, x: Any) -> Array:
        """The conditionals' logits for one-hot codes x: (batch, P, K); position p's depend on
        positions < p only."""
        x = self.prepare(x).x
        return self._forward(x)[0].reshape(x.shape[0], self.positions, self.n_codes)

    def _forward(self, x: Array) -> tuple[Array, tuple]:
        p = self.params
        a, cache0 = linear_forward(x, p["made.W0"] * self.mask0, p["made.b0"])
        h, relu_cache = relu_forward(a)
        out, cache1 = linear_forward(h, p["made.W1"] * self.mask1, p["made.b1"])
        return out, (cache0, relu_cache, cache1)

    def _log_softmax(self, out: Array) -> Array:
        xp = self.xp
        logits = out.reshape(out.shape[0], self.positions, self.n_codes)
        shifted = logits - logits.max(axis=2, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=2, keepdims=True))

    def log_prob(self, codes: Any) -> np.ndarray:
        """log p(k) in nats for codes (n, P) integers: (n,) float64 on the host."""
        x = codes_to_one_hot(codes, self.n_codes)
        if x.shape[1] != self.x_dim:
            raise ValueError(
                f"codes must have {self.positions} positions, got {x.shape[1] // self.n_codes}"
            )
        batch = self.prepare(x.astype(self.dtype))
        log_p = self._log_softmax(self._forward(batch.x)[0])
        per_example = (log_p.reshape(len(batch), self.x_dim) * batch.x).sum(axis=1)
        return to_numpy(per_example).astype(np.float64)

    def objective(self, batch: Batch, eps: None, need_grads: bool) -> tuple[dict, Any]:
        """loss = mean over the batch of -log p(k) (nats); see the class docstring."""
        x, n = batch.x, len(batch)
        out, (cache0, relu_cache, cache1) = self._forward(x)
        log_p = self._log_softmax(out).reshape(n, self.x_dim)
        loss = -float((log_p * x).sum()) / n
        terms = {"loss": loss, "nll": loss}
        if not need_grads:
            return terms, None
        xp, grads = self.xp, self.grads
        dout = (xp.exp(log_p) - x) / n  # softmax - one-hot, per position
        dh, dw1, db1 = linear_backward(dout, cache1)
        da = relu_backward(dh, relu_cache)
        _, dw0, db0 = linear_backward(da, cache0)
        grads["made.W1"][...] = dw1 * self.mask1
        grads["made.b1"][...] = db1
        grads["made.W0"][...] = dw0 * self.mask0
        grads["made.b0"][...] = db0
        return terms, grads

    def sample(self, n: int, seed: Any = None) -> Array:
        """n code arrays k ~ p(k), one position at a time: (n, P) integers on the backend.

        seed: an int, None or a generator (:func:`minivae.backend.generator`); a categorical
        draw is the first index whose cumulative probability exceeds a uniform number.
        """
        from ..backend import generator

        n = check_positive_int(n, "n")
        xp = self.xp
        rng = self.rng if seed is None else generator(seed, xp)
        x = xp.zeros((n, self.x_dim), dtype=self.dtype)
        codes = xp.zeros((n, self.positions), dtype=np.int64)
        for p in range(self.positions):
            block = slice(p * self.n_codes, (p + 1) * self.n_codes)
            probs = xp.exp(self._log_softmax(self._forward(x)[0])[:, p, :])
            u = to_device(rng.random((n, 1)), xp).astype(probs.dtype)
            k = (xp.cumsum(probs, axis=1) < u).sum(axis=1)
            k = xp.minimum(k, self.n_codes - 1)  # rounding: the last cumulative sum may be < u
            codes[:, p] = k
            x[:, block] = one_hot(k, self.n_codes, self.dtype)
        return codes
