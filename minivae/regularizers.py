"""Regularizers of the VAE: how the KL term enters the objective.

The VAE computes the KL of every latent dimension, averaged over the batch:
``kl_per_latent`` of shape (latent,). A regularizer turns it into the penalty added to the
reconstruction term, and returns ``weight = d penalty / d kl_per_latent`` (latent,), which is all
the backward pass needs. Variants of the VAE (beta-VAE, capacity, free bits) are variants of this
one function, not copies of the model:

    model = VAE(x_dim, z_dim=6)                  # beta_kl: the ELBO at model.beta = 1
    model.beta = 4.0                             # the beta-VAE (Higgins et al. 2017)
    model.regularizer = FreeBits(0.5)            # free bits: each latent's KL floored at 0.5 nats
    cap = Capacity(); model.regularizer = cap    # gamma * |KL - C|, gamma = model.beta
    fit(model, x, beta_schedule=capacity_schedule(cap, c_max=25, steps=5000, gamma=100))
    fit(model, x, beta_schedule=linear_warmup(2000))   # KL warm-up (minivae.schedules)

Every regularizer is a callable ``regularizer(kl_per_latent, beta) -> (penalty, weight)`` with
kl_per_latent (latent,) and weight (latent,).
"""

from __future__ import annotations

from typing import Any

from .backend import Array, array_module
from .validation import check_real


def beta_kl(kl_per_latent: Array, beta: float) -> tuple[float, Array]:
    """penalty = beta * sum_j KL_j;   weight_j = beta.

    beta = 1 gives the ELBO (Kingma & Welling 2014); beta > 1 the beta-VAE (Higgins et al. 2017).
    """
    return beta * float(kl_per_latent.sum()), beta + 0 * kl_per_latent


def _check_nonnegative(value: float, name: str) -> float:
    return check_real(value, name, minimum=0.0)


class FreeBits:
    """Free bits (Kingma et al. 2016): each latent's KL is floored at ``lam`` nats.

        penalty  = beta * sum_j max(KL_j, lam)
        weight_j = beta if KL_j > lam else 0

    A latent whose (batch-mean) KL is below lam costs a constant lam: the objective no longer
    pushes it all the way to the prior, which prevents posterior collapse. lam = 0 is beta_kl.
    kl_per_latent: (latent,). ``lam`` is checked whenever it is set.
    """

    name = "FreeBits"

    def __init__(self, lam: float = 0.5):
        self.lam = lam

    @property
    def lam(self) -> float:
        """The free bits per latent, in nats: a finite float >= 0."""
        return self._lam

    @lam.setter
    def lam(self, value: float) -> None:
        self._lam = _check_nonnegative(value, "lam (the free bits per latent, in nats)")

    def __call__(self, kl_per_latent: Array, beta: float) -> tuple[float, Array]:
        xp = array_module(kl_per_latent)
        above = kl_per_latent > self.lam
        penalty = beta * float(xp.maximum(kl_per_latent, self.lam).sum())
        return penalty, beta * above.astype(kl_per_latent.dtype)

    def config(self) -> dict:
        """{"name": "FreeBits", "lam": lam}: what a checkpoint stores."""
        return {"name": self.name, "lam": self.lam}

    @classmethod
    def from_config(cls, config: dict) -> FreeBits:
        return cls(**_arguments(config, ("lam",)))

    def __repr__(self) -> str:
        return f"FreeBits(lam={self.lam})"


class Capacity:
    """The capacity objective of Burgess et al. (2018): gamma * |KL - C|, with gamma = beta.

        penalty  = beta * | sum_j KL_j - C |
        weight_j = beta * sign(sum_j KL_j - C)

    The KL is pulled towards a target capacity C (nats) rather than towards 0. Raising C
    linearly from 0 during training lets the code take in information one factor at a time;
    set ``self.capacity`` by hand or with :func:`minivae.schedules.capacity_schedule` (it is
    checked whenever it is set). Use a large beta (gamma), e.g. 100 for the shapes data
    (Burgess et al. use 1000 on dSprites).
    """

    name = "Capacity"

    def __init__(self, capacity: float = 0.0):
        self.capacity = capacity

    @property
    def capacity(self) -> float:
        """The target capacity C, in nats: a finite float >= 0."""
        return self._capacity

    @capacity.setter
    def capacity(self, value: float) -> None:
        self._capacity = _check_nonnegative(value, "capacity C (nats)")

    def __call__(self, kl_per_latent: Array, beta: float) -> tuple[float, Array]:
        excess = float(kl_per_latent.sum()) - self.capacity
        sign = (excess > 0) - (excess < 0)
        return beta * abs(excess), beta * sign + 0 * kl_per_latent

    def config(self) -> dict:
        """{"name": "Capacity", "capacity": C}: what a checkpoint stores."""
        return {"name": self.name, "capacity": self.capacity}

    @classmethod
    def from_config(cls, config: dict) -> Capacity:
        return cls(**_arguments(config, ("capacity",)))

    def __repr__(self) -> str:
        return f"Capacity(capacity={self.capacity})"


def _arguments(config: dict, names: tuple[str, ...]) -> dict:
    """The constructor arguments in a regularizer's config, refusing any other key."""
    extra = sorted(set(config) - set(names) - {"name"})
    if extra:
        raise ValueError(
            f"the {config.get('name')} regularizer takes {list(names)}, got unknown keys {extra}"
        )
    return {key: config[key] for key in names if key in config}


#: Regularizers a checkpoint can store, by the ``"name"`` of their config. A new one registers
#: here and gives ``config() -> {"name": ..., **arguments}`` and ``from_config(config)``.
REGULARIZERS: dict[str, Any] = {"beta_kl": beta_kl, "FreeBits": FreeBits, "Capacity": Capacity}


def regularizer_config(regularizer: Any) -> dict:
    """The JSON-able description of a regularizer: {"name": ..., plus its parameters}.

    Raises TypeError for a regularizer that cannot be stored (a lambda, an unregistered class),
    so that a checkpoint never silently drops it and loads back with another objective.
    """
    if regularizer is beta_kl:
        return {"name": "beta_kl"}
    name = getattr(regularizer, "name", None)
    if (
        isinstance(name, str)
        and REGULARIZERS.get(name) is type(regularizer)
        and callable(getattr(regularizer, "config", None))
    ):
        return dict(regularizer.config())
    raise TypeError(
        f"the regularizer {regularizer!r:.80} cannot be stored: a checkpoint stores beta_kl, "
        f"FreeBits or Capacity (registered in minivae.regularizers.REGULARIZERS: "
        f"{sorted(REGULARIZERS)}); give a custom regularizer a name, config() and from_config() "
        "and register it there, or set model.regularizer to a stored one before saving"
    )


def regularizer_from_config(config: Any) -> Any:
    """The regularizer that :func:`regularizer_config` described (a ValueError if unknown)."""
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise ValueError(
            f"a regularizer config must be a dict with a 'name', got {config!r:.80}"
        )
    kind = REGULARIZERS.get(config["name"])
    if kind is None:
        raise ValueError(
            f"unknown regularizer {config['name']!r}: expected one of {sorted(REGULARIZERS)}"
        )
    if kind is beta_kl:
        _arguments(config, ())
        return beta_kl
    return kind.from_config(config)
