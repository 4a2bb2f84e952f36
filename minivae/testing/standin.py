"""A strict stand-in array namespace: behaves like CuPy where CuPy is strict, on any CPU.

Use it to prove that code is backend-agnostic without a GPU: ``VAE(..., backend="standin")``
runs the whole model through it, and any stray NumPy call on device data raises
:class:`StrayNumPyCall` at once, where CuPy would fail (CI has no GPU; course chapter 06 grades
learners' code with it).

CuPy arrays refuse to be mixed with NumPy arrays and refuse implicit conversion to NumPy. Model
code that calls ``np.something(x)`` on data, or builds a NumPy array and adds it to device data,
works on the CPU and breaks on the GPU. This module makes the same mistakes fail on the CPU:

- ``DeviceArray`` wraps an ndarray. Its operators, methods and indexing return DeviceArrays,
  reductions and single entries too (``a.sum()``, ``a[0, 1]``: 0-d, as in CuPy); ``float()``,
  ``bool()`` and ``.item()`` read a number back to the host.
- Calling a NumPy function or ufunc on it (``np.exp(a)``, ``np.concatenate([a, b])``) raises,
  because ``__array_function__`` and ``__array_ufunc__`` refuse; so does ``np.asarray(a)``.
- Mixing it with a NumPy array in arithmetic raises, as in CuPy (scalars are fine).
- The module ``standin`` offers NumPy's functions (``standin.exp``, ``standin.zeros`` ...) over
  DeviceArrays, and ``standin.random.default_rng(seed)`` returns DeviceArrays.

What a GPU would be asked to do can be watched: inside ``with observing(callback):`` the
stand-in calls ``callback(kind, name)`` for every operation on device data (see
:func:`observing`; :mod:`minivae.testing.opcount` counts them).
"""

from __future__ import annotations

import contextlib
import operator
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


class StrayNumPyCall(TypeError):
    """NumPy was called on device data, or device and host arrays were mixed."""


#: What an observer is told: ``(kind, name)``.
Observer = Callable[[str, str], None]
_observers: list[Observer] = []

#: Module functions that only reserve memory (no kernel on a GPU): reported as kind "alloc".
ALLOCATIONS = frozenset({"empty", "empty_like"})


@contextlib.contextmanager
def observing(callback: Observer) -> Iterator[None]:
    """Call ``callback(kind, name)`` for every operation on device data while the block runs.

    kind is one of:

    - ``"op"``: an array operation, at least one kernel launch on CuPy. name: the operator
      (``"__mul__"``, ``"__iadd__"``, ``"__setitem__"``), ``"a.<method>()"`` (``"a.sum()"``),
      ``"xp.<function>"`` (``"xp.exp"``), ``"rng.<draw>"``, or ``"a[rows]"`` (a gather by a
      device index array);
    - ``"kernel"``: a fused kernel ran (reported by :mod:`minivae.testing.host_kernels`); name:
      the kernel's;
    - ``"read"``: a device number or array read back to the host, which on a GPU makes the CPU
      wait for it: ``"float"``, ``"bool"``, ``"int"``, ``"format"``, ``"get"``;
    - ``"alloc"``: memory reserved, no kernel (``"xp.empty"``, ``"xp.empty_like"``);
    - ``"to_device"``: a host array copied to the device (``"xp.asarray"``).

    Views (``a.T``, ``a[:, :k]``, ``a.shape``) are not reported: they launch nothing.
    """
    _observers.append(callback)
    try:
        yield
    finally:
        _observers.remove(callback)


def report(kind: str, name: str) -> None:
    """Tell the observers (if any) that an operation of ``kind`` called ``name`` happened."""
    for callback in _observers:
        callback(kind, name)


def _unwrap(value: Any) -> Any:
    if isinstance(value, DeviceArray):
        return value._a
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return DeviceArray(value)
    if isinstance(value, np.generic):
        # NumPy gives a host scalar for a reduction (a.sum()) or a single entry (a[0, 1]); CuPy
        # gives a 0-d array on the device, and reading it (float(), bool()) waits for the GPU
        return DeviceArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _refuse_host(value: Any) -> None:
    """CuPy refuses NumPy arrays (not scalars) as operands of device arithmetic."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        raise StrayNumPyCall(
            "a NumPy array was mixed with device data: create arrays with the model's xp, "
            f"not np (got a NumPy array of shape {value.shape})"
        )


def _binary(name: str, op: Any, reflected: bool = False) -> Any:
    def method(self: DeviceArray, other: Any) -> Any:
        _refuse_host(other)
        if _observers:
            report("op", name)
        a, b = self._a, _unwrap(other)
        return _wrap(op(b, a) if reflected else op(a, b))

    return method


def _inplace(name: str, op: Any) -> Any:
    def method(self: DeviceArray, other: Any) -> Any:
        _refuse_host(other)
        if _observers:
            report("op", name)
        op(self._a, _unwrap(other))
        return self

    return method


class DeviceArray:
    """An ndarray in disguise: usable through operators, methods and the ``standin`` module only."""

    __array_namespace_module__: types.ModuleType  # set below; read by minivae.backend.array_module
    __array_priority__ = 1000

    def __init__(self, a: np.ndarray):
        self._a = a

    # NumPy's own entry points refuse, exactly where CuPy would misbehave
    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise StrayNumPyCall("implicit conversion of device data to NumPy; use backend.to_numpy")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        raise StrayNumPyCall(f"np.{ufunc.__name__} called on device data; use xp.{ufunc.__name__}")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise StrayNumPyCall(f"np.{func.__name__} called on device data; use xp.{func.__name__}")

    # attributes and methods
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    T = property(lambda self: DeviceArray(self._a.T))
    flags = property(lambda self: self._a.flags)
    base = property(lambda self: self._a.base)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # e.g. __array_interface__: NumPy would read the data through it
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args: Any, **kwargs: Any) -> Any:
            if _observers:
                report("op", f"a.{name}()")
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))

        return method

    def get(self) -> np.ndarray:
        """Copy to the host, as ``cupy.ndarray.get()`` does."""
        if _observers:
            report("read", "get")
        return self._a.copy()

    def __getitem__(self, key: Any) -> Any:
        if _observers and isinstance(key, DeviceArray):  # indexing by a device array: a gather
            report("op", "a[rows]")
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        _refuse_host(value)
        if _observers:
            report("op", "__setitem__")
        self._a[_unwrap(key)] = _unwrap(value)

    def __len__(self) -> int:
        return len(self._a)

    def __float__(self) -> float:
        if _observers:
            report("read", "float")
        return float(self._a)

    def __int__(self) -> int:
        if _observers:
            report("read", "int")
        return int(self._a)

    def __bool__(self) -> bool:
        if _observers:
            report("read", "bool")
        return bool(self._a)

    def __repr__(self) -> str:
        return f"DeviceArray({self._a!r})"

    def __format__(self, format_spec: str) -> str:
        if _observers:
            report("read", "format")
        return format(self._a, format_spec)  # as CuPy: formats the host copy

    __add__, __radd__ = _binary("__add__", operator.add), _binary("__radd__", operator.add, True)
    __sub__, __rsub__ = _binary("__sub__", operator.sub), _binary("__rsub__", operator.sub, True)
    __mul__, __rmul__ = _binary("__mul__", operator.mul), _binary("__rmul__", operator.mul, True)
    __truediv__ = _binary("__truediv__", operator.truediv)
    __rtruediv__ = _binary("__rtruediv__", operator.truediv, True)
    __pow__, __rpow__ = _binary("__pow__", operator.pow), _binary("__rpow__", operator.pow, True)
    __matmul__ = _binary("__matmul__", operator.matmul)
    __rmatmul__ = _binary("__rmatmul__", operator.matmul, True)
    __lt__, __le__ = _binary("__lt__", operator.lt), _binary("__le__", operator.le)
    __gt__, __ge__ = _binary("__gt__", operator.gt), _binary("__ge__", operator.ge)
    __eq__ = _binary("__eq__", operator.eq)  # type: ignore[assignment]
    __ne__ = _binary("__ne__", operator.ne)  # type: ignore[assignment]
    __and__, __or__ = _binary("__and__", operator.and_), _binary("__or__", operator.or_)
    __iadd__, __isub__ = _inplace("__iadd__", operator.iadd), _inplace("__isub__", operator.isub)
    __imul__ = _inplace("__imul__", operator.imul)
    __itruediv__ = _inplace("__itruediv__", operator.itruediv)

    def __neg__(self) -> DeviceArray:
        if _observers:
            report("op", "__neg__")
        return DeviceArray(-self._a)

    def __invert__(self) -> DeviceArray:
        if _observers:
            report("op", "__invert__")
        return DeviceArray(~self._a)

    __hash__ = None  # type: ignore[assignment]


class _Random:
    """``standin.random``: generators whose draws are DeviceArrays."""

    class Generator:
        #: the draws ``cupy.random.Generator`` offers (CuPy 13-14); NumPy's others (normal,
        #: permutation, choice, shuffle ...) are refused, as they would fail on the GPU
        METHODS = frozenset({
            "beta", "binomial", "chisquare", "dirichlet", "exponential", "f", "gamma",
            "geometric", "hypergeometric", "integers", "logseries", "poisson", "power", "random",
            "standard_exponential", "standard_gamma", "standard_normal", "uniform",
        })

        def __init__(self, seed: Any):
            self._g = np.random.default_rng(seed)

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):  # copy, pickle: not draws
                raise AttributeError(name)
            if name not in self.METHODS:
                raise StrayNumPyCall(
                    f"{name}() is not a method of CuPy's random Generator; draw on the host with "
                    "a NumPy generator and move the result with backend.to_device"
                )
            draw = getattr(self._g, name)

            def drawn(*args: Any, **kwargs: Any) -> Any:
                if _observers:
                    report("op", f"rng.{name}")
                return _wrap(draw(*_unwrap(args), **_unwrap(kwargs)))

            return drawn

    def default_rng(self, seed: Any = None) -> _Random.Generator:
        return _Random.Generator(seed)


class StandInModule(types.ModuleType):
    """A module that offers NumPy's functions over DeviceArrays (and refuses NumPy arrays)."""

    random = _Random()
    ndarray = DeviceArray

    def __getattr__(self, name: str) -> Any:
        target = getattr(np, name)
        if not callable(target) or isinstance(target, type):
            return target  # dtypes, constants (np.float32, np.pi, np.newaxis)

        def function(*args: Any, **kwargs: Any) -> Any:
            for value in list(args) + list(kwargs.values()):
                if name not in ("asarray", "array"):
                    _refuse_host(value)
            if _observers:
                report("alloc" if name in ALLOCATIONS else "op", f"xp.{name}")
            return _wrap(target(*_unwrap(args), **_unwrap(kwargs)))

        function.__name__ = name
        return function

    def asarray(self, a: Any, dtype: Any = None) -> DeviceArray:
        """Host -> device copy (like cupy.asarray)."""
        if _observers:
            report("to_device", "xp.asarray")
        return DeviceArray(np.array(_unwrap(a), dtype=dtype))


standin = StandInModule("standin")
DeviceArray.__array_namespace_module__ = standin
