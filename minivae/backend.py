"""The array backend: NumPy on the CPU, CuPy on an NVIDIA GPU, one code path for both.

Library code never writes ``np.exp(x)`` on data; it asks for the array module that
owns its arrays, ``xp = array_module(x)``, and calls ``xp.exp(x)``. A model picks its
module once, when it is built (``VAE(..., backend="cupy")``, or the process-wide default
set by :func:`use`), and keeps it in ``model.xp``.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

_default_name = "numpy"


#: An array of the active backend: a NumPy array, a CuPy array or the stand-in's DeviceArray.
Array = Any


def _load_cupy() -> types.ModuleType:
    """Import CuPy and prove that a GPU answers, or raise a clear RuntimeError."""
    try:
        import cupy
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "backend 'cupy' needs CuPy: install it with `pip install \".[gpu]\"` "
            "on a machine with an NVIDIA GPU and CUDA driver"
        ) from err
    # `import cupy` succeeds without a GPU; only creating an array fails. Ask the runtime.
    if not cupy.cuda.is_available():  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "backend 'cupy' was asked for, but CuPy finds no usable NVIDIA GPU "
            "(cupy.cuda.is_available() is False); use backend 'numpy' on this machine"
        )
    return cupy


_extra_modules: dict[str, types.ModuleType] = {}


def register(name: str, module: types.ModuleType) -> None:
    """Make an array namespace available under ``name`` (used by tests for a stand-in module)."""
    _extra_modules[name] = module


def get(name: str | None = None) -> types.ModuleType:
    """Return the array module called ``name``; None gives the default.

    'numpy' and 'cupy' are the real backends; 'standin' is the strict CPU stand-in for CuPy
    (:mod:`minivae.testing.standin`) that proves code backend-agnostic without a GPU.
    """
    name = _default_name if name is None else name
    if name == "numpy":
        return np
    if name == "cupy":
        return _load_cupy()
    if name == "standin" and name not in _extra_modules:
        from .testing.standin import standin

        register("standin", standin)
    if name in _extra_modules:
        return _extra_modules[name]
    raise ValueError(f"unknown backend {name!r}: expected 'numpy' or 'cupy' (or 'standin')")


def gpu_available() -> bool:
    """True when CuPy imports and finds a usable NVIDIA GPU; never raises."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return bool(cupy.cuda.is_available())
    except Exception:  # a broken CUDA installation counts as no GPU
        return False


def device_name(xp: types.ModuleType | None = None) -> str:
    """A human-readable name of the device behind ``xp``: the GPU's name, or 'CPU (NumPy)'."""
    xp = get() if xp is None else xp
    if name_of(xp) != "cupy":
        return f"CPU ({name_of(xp)})"
    props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def synchronize(xp: types.ModuleType) -> None:
    """Wait until the device has finished its queued work (GPU calls return early; time after this).

    A no-op for NumPy, whose calls finish before they return.
    """
    if name_of(xp) == "cupy":
        xp.cuda.get_current_stream().synchronize()


def use(name: str) -> None:
    """Set the backend that new models use by default: 'numpy' or 'cupy'."""
    get(name)  # fail now, with the clear message, rather than at the first model
    global _default_name
    _default_name = name


def default_name() -> str:
    """The name of the backend that new models use by default."""
    return _default_name


def array_module(*arrays: Any) -> types.ModuleType:
    """The module that owns ``arrays``: CuPy for CuPy arrays, else the stand-in or NumPy."""
    for a in arrays:
        module = getattr(type(a), "__array_namespace_module__", None)
        if module is not None:
            return module
        if type(a).__module__.startswith("cupy"):
            import cupy

            return cupy
    return np


def name_of(xp: types.ModuleType) -> str:
    """The backend name of an array module."""
    if xp is np:
        return "numpy"
    for name, module in _extra_modules.items():
        if module is xp:
            return name
    return "cupy"


def to_numpy(a: Any) -> np.ndarray:
    """Copy an array from any backend to a NumPy array on the host (a no-op for NumPy)."""
    if isinstance(a, np.ndarray) and type(a) is np.ndarray:
        return a
    if hasattr(a, "get"):
        return a.get()
    return np.asarray(a)


def to_device(a: Any, xp: types.ModuleType) -> Any:
    """Copy a host array onto the backend ``xp`` (a no-op when it already lives there)."""
    return xp.asarray(a)


def default_rng(seed: int | None, xp: types.ModuleType) -> Any:
    """A seeded random generator of the backend's own kind (``xp.random.default_rng``)."""
    return xp.random.default_rng(seed)


def generator(seed: Any, xp: types.ModuleType, name: str = "seed") -> Any:
    """A random generator from what a user passes as ``seed``: an int or None seeds a new
    generator of the backend's own kind; a generator (NumPy's, CuPy's, the stand-in's) is used
    as it is, so a NumPy generator may drive a GPU model (its draws are copied over)."""
    if hasattr(seed, "standard_normal") and hasattr(seed, "random"):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        if seed is not None and seed < 0:  # named here, not NumPy's unnamed message
            raise ValueError(f"{name} must be an integer >= 0 or None, got {int(seed)}")
        return default_rng(None if seed is None else int(seed), xp)
    raise TypeError(
        f"{name} must be an int, None or a random generator (numpy.random.default_rng(...)), "
        f"got {seed!r}"
    )
