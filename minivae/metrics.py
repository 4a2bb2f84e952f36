"""How to read a learned code: active units and the Mutual Information Gap (MIG).

Both take the posterior means ``mu = E_q[z|x]`` of a data set, (n, latent), in NumPy.

- Active units (Burda et al. 2016): latent j is active when its posterior mean moves with x,
  A_j = Cov_x(E_q[z_j | x]) = Var_x(mu_j) > 0.01. An inactive unit has collapsed to the prior:
  q(z_j|x) = p(z_j) for every x, so it carries no information about x.
- MIG (Chen et al. 2018): for each ground-truth factor v_k, the gap between the two latents with
  the highest mutual information with it, divided by the factor's entropy, averaged over factors:

      MIG = 1/K sum_k ( I(z_(1); v_k) - I(z_(2); v_k) ) / H(v_k)

  where z_(1), z_(2) are the latents with the largest and second largest I(z_j; v_k). A code in
  which each factor lives in one latent scores near 1; a code unrelated to the factors, or one
  that spreads a factor over two latents, scores near 0. Latents are discretised into ``bins``
  equal-width bins (20 by default, as in disentanglement_lib) to estimate I(z_j; v_k).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .validation import check_positive_int, check_real

#: Burda et al.'s threshold on Cov_x(E_q[z_j]) above which a unit counts as active.
ACTIVE_THRESHOLD = 0.01


def _as_codes(mu: Any, name: str = "mu") -> np.ndarray:
    if hasattr(mu, "get") and not isinstance(mu, np.ndarray):  # a CuPy array
        mu = mu.get()
    mu = np.asarray(mu)
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(f"{name} must be (n, latent) with n >= 2, got shape {mu.shape}")
    if mu.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {mu.dtype}")
    if not np.isfinite(mu).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return mu.astype(np.float64)


def latent_activity(mu: Any) -> np.ndarray:
    """A_j = Var_x(mu_j), the variance over the data of each posterior mean.

    mu: (n, latent) -> (latent,).
    """
    return _as_codes(mu).var(axis=0)


def active_units(mu: Any, threshold: float = ACTIVE_THRESHOLD) -> int:
    """The number of latents with Var_x(E_q[z_j | x]) > threshold (0.01, Burda et al. 2016).

    mu: (n, latent) posterior means over a data set; threshold: a finite number >= 0.
    """
    threshold = check_real(threshold, "threshold", minimum=0.0)
    return int((latent_activity(mu) > threshold).sum())


def discretize(mu: Any, bins: int = 20) -> np.ndarray:
    """Each column of mu (n, latent) cut into ``bins`` equal bins over its range: int (n, latent).

    A constant column lands in bin 0.
    """
    mu = _as_codes(mu)
    bins = check_positive_int(bins, "bins")
    lo, hi = mu.min(axis=0), mu.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    codes = np.floor((mu - lo) / width * bins).astype(np.int64)
    return np.clip(codes, 0, bins - 1)


def _check_factors(factors: Any, n: int) -> np.ndarray:
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    if factors.ndim != 2 or factors.shape[0] != n:
        raise ValueError(
            f"factors must be (n, n_factors) with n = {n} rows like the codes, "
            f"got shape {factors.shape}"
        )
    if factors.dtype.kind not in "iub":
        raise TypeError(
            f"factors must be integer indices of each factor's value, got dtype {factors.dtype}"
        )
    return factors.astype(np.int64)


def _relabel(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Map the values of a 1-D int array onto 0..m-1; returns (labels, m)."""
    uniques, labels = np.unique(a, return_inverse=True)
    return labels.reshape(-1), len(uniques)


def discrete_mutual_information(a: Any, b: Any) -> float:
    """I(a; b) = sum_{i,j} p(i, j) log( p(i, j) / (p(i) p(j)) ) in nats, for two int arrays (n,).

    I(a; a) = H(a), the entropy of a.
    """
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same length, got {a.shape} and {b.shape}")
    a, na = _relabel(a)
    b, nb = _relabel(b)
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb) / a.size
    pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def mutual_information_matrix(mu: Any, factors: Any, bins: int = 20) -> np.ndarray:
    """I(z_j; v_k) for every latent j and factor k, latents discretised: (latent, n_factors)."""
    codes = discretize(mu, bins)
    factors = _check_factors(factors, codes.shape[0])
    return np.array(
        [
            [discrete_mutual_information(codes[:, j], factors[:, k])
             for k in range(factors.shape[1])]
            for j in range(codes.shape[1])
        ]
    )


def mig_per_factor(mu: Any, factors: Any, bins: int = 20) -> np.ndarray:
    """(I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k) for each factor k: (n_factors,).

    A factor that never varies (H = 0) gets a gap of 0. Needs at least 2 latents.
    """
    mu = _as_codes(mu)
    if mu.shape[1] < 2:
        raise ValueError(f"MIG needs at least 2 latents, got mu of shape {mu.shape}")
    factors = _check_factors(factors, mu.shape[0])
    mi = mutual_information_matrix(mu, factors, bins)
    entropy = np.array([discrete_mutual_information(f, f) for f in factors.T])
    top = np.sort(mi, axis=0)[::-1]  # each column sorted, largest first
    gap = top[0] - top[1]
    return np.where(entropy > 0, gap / np.where(entropy > 0, entropy, 1.0), 0.0)


def mutual_information_gap(mu: Any, factors: Any, bins: int = 20) -> float:
    """MIG = 1/K sum_k (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k)  (Chen et al. 2018), in [0, 1].

    mu: (n, latent) posterior means; factors: (n, K) integer factor indices (e.g.
    ``make_shapes(...).factors``); latents discretised into ``bins`` equal-width bins.
    """
    return float(mig_per_factor(mu, factors, bins).mean())
