"""Parameters: one mapping name -> array for a whole model, and gradients with the same names.

An optimizer, a gradient check and save/load are each one loop over this mapping. Behind it,
every array is a view into one flat buffer (``params.flat``): the optimizer can then update all
parameters with a few vectorised calls instead of one small call per array (see ``optim.py``).

Assigning ``params["encoder.W0"] = w`` copies ``w`` into the existing view after checking its
shape and values, so outside code (a test, another framework's weights) can set parameters
without breaking that link.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

Shape = tuple[int, ...]


class Parameters(MutableMapping):
    """A fixed set of named arrays, all views into one flat buffer ``self.flat``.

    Build one with :meth:`zeros` from a mapping name -> shape. Names cannot be added or
    removed afterwards; values can be read, and assigned with a shape check.
    """

    def __init__(self, flat: Any, shapes: Mapping[str, Shape]):
        self.flat = flat
        self._views: dict[str, Any] = {}
        sizes = [int(np.prod(shape, dtype=np.int64)) for shape in shapes.values()]
        if sum(sizes) != flat.size:
            raise ValueError(f"flat buffer has {flat.size} entries, the shapes need {sum(sizes)}")
        offset = 0
        for (name, shape), size in zip(shapes.items(), sizes, strict=True):
            self._views[name] = flat[offset : offset + size].reshape(shape)
            offset += size

    @classmethod
    def zeros(cls, shapes: Mapping[str, Shape], dtype: Any, xp: Any = np) -> Parameters:
        """Parameters with the given names and shapes, all zero, in one flat ``xp`` buffer."""
        total = sum(int(np.prod(s, dtype=np.int64)) for s in shapes.values())
        return cls(xp.zeros(total, dtype=dtype), dict(shapes))

    def zeros_like(self) -> Parameters:
        """Another Parameters with the same names, shapes and dtype, all zero (e.g. gradients)."""
        xp = _module_of(self.flat)
        return Parameters(xp.zeros_like(self.flat), self.shapes())

    def shapes(self) -> dict[str, Shape]:
        """name -> shape."""
        return {name: tuple(v.shape) for name, v in self._views.items()}

    @property
    def dtype(self) -> Any:
        return self.flat.dtype

    def __getitem__(self, name: str) -> Any:
        try:
            return self._views[name]
        except KeyError:
            raise KeyError(f"no parameter {name!r}; this model has {list(self._views)}") from None

    def __setitem__(self, name: str, value: Any) -> None:
        view = self[name]
        value = _as_host_or_same(value, self.flat)
        if tuple(value.shape) != tuple(view.shape):
            raise ValueError(
                f"parameter {name!r} has shape {tuple(view.shape)}, got an array of shape "
                f"{tuple(value.shape)}"
            )
        if np.dtype(str(value.dtype)).kind not in "fiu":
            raise TypeError(f"parameter {name!r} must be real numbers, got dtype {value.dtype}")
        xp = _module_of(self.flat)
        value = xp.asarray(value)
        if not bool(xp.isfinite(value).all()):
            raise ValueError(f"parameter {name!r}: the new value contains NaN or inf")
        if value.dtype != self.flat.dtype:
            # finite float64 values can overflow float32 (1e300 -> inf) in the assignment below
            with np.errstate(over="ignore"):  # the overflow is reported just below
                cast = value.astype(self.flat.dtype)
            if not bool(xp.isfinite(cast).all()):
                raise ValueError(
                    f"parameter {name!r}: the new value holds numbers too large for "
                    f"{self.flat.dtype} (they overflow to inf when cast)"
                )
            value = cast
        view[...] = value

    def __delitem__(self, name: str) -> None:
        raise TypeError("the set of parameters of a model is fixed; cannot delete one")

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._views.items())
        return f"Parameters({inner}; {self.flat.size} values, {self.flat.dtype})"

    def copy(self) -> Parameters:
        """A deep copy with its own flat buffer."""
        return Parameters(self.flat.copy(), self.shapes())


def _module_of(a: Any) -> Any:
    from .backend import array_module

    return array_module(a)


def _as_host_or_same(value: Any, like: Any) -> Any:
    """Accept NumPy arrays, CuPy arrays, lists, and objects with ``.numpy()`` (torch tensors)."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without torch
        value = value.detach().cpu().numpy()
    if not hasattr(value, "shape"):
        value = np.asarray(value)
    return value
