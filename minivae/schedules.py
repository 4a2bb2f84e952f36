"""Schedules for ``fit(model, x, beta_schedule=...)``: functions ``step -> beta``.

``fit`` calls the schedule before every optimizer step with the global step count (0, 1, ...)
and sets ``model.beta`` to what it returns.

- :func:`linear_warmup`: KL warm-up (Bowman et al. 2016), beta from 0 to 1 over ``steps``.
- :func:`capacity_schedule`: the capacity C of a :class:`~minivae.regularizers.Capacity`
  regularizer raised linearly from 0 to ``c_max`` (Burgess et al. 2018), at a fixed gamma.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .validation import check_positive_int, check_real


def _check_steps(steps: int) -> int:
    return check_positive_int(steps, "steps")


def _check_number(value: float, name: str) -> float:
    return check_real(value, name)


def linear_warmup(steps: int, start: float = 0.0, end: float = 1.0) -> Callable[[int], float]:
    """KL warm-up: beta(step) = start + (end - start) * min(step / steps, 1).

    With the defaults, beta climbs from 0 at step 0 to 1 at step ``steps`` and stays there: at
    first the model is an autoencoder that learns to use z, then the KL is switched on gradually,
    which avoids posterior collapse (Bowman et al. 2016).
    """
    steps = _check_steps(steps)
    start, end = _check_number(start, "start"), _check_number(end, "end")

    def schedule(step: int) -> float:
        return start + (end - start) * min(max(step, 0) / steps, 1.0)

    return schedule


def capacity_schedule(
    regularizer: Any, c_max: float, steps: int, gamma: float = 100.0
) -> Callable[[int], float]:
    """Raise ``regularizer.capacity`` linearly, C(step) = c_max * min(step / steps, 1).

    Returns a beta schedule for fit that sets C on the regularizer (a
    :class:`~minivae.regularizers.Capacity`) and returns the constant ``gamma`` as beta.
    """
    if not hasattr(regularizer, "capacity"):
        raise TypeError(
            f"capacity_schedule needs a Capacity regularizer (with a .capacity), "
            f"got {type(regularizer).__name__}"
        )
    steps = _check_steps(steps)
    c_max = check_real(c_max, "c_max (nats)", minimum=0.0)
    gamma = check_real(gamma, "gamma", minimum=0.0)

    def schedule(step: int) -> float:
        regularizer.capacity = c_max * min(max(step, 0) / steps, 1.0)
        return gamma

    return schedule
