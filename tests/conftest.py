"""Fixtures shared by the tests: the array backend that a test runs on.

A test that asks for ``backend_name`` (or for ``xp``, ``to_xp`` or ``assert_matches_numpy``, which
depend on it) runs once per backend:

- ``numpy``: the CPU reference;
- ``standin``: the strict stand-in for CuPy (:mod:`minivae.testing.standin`): NumPy underneath,
  but any NumPy call on device data raises ``StrayNumPyCall`` where CuPy would fail. CI has no
  GPU; this is how CI proves the GPU code path sound;
- ``cupy``: the real GPU backend, marked ``gpu``, skipped with a reason unless CuPy finds a
  usable NVIDIA GPU.

A test that asks for ``device_backend_name`` runs on ``standin`` and ``cupy`` only: it compares a
device backend with NumPy, driving every random draw with NumPy generators (a GPU's own
generator gives other numbers). Every test run with the parameter ``cupy`` is marked ``gpu``.

Inputs are built on the host with NumPy (seeded) and moved with ``to_xp``; results come back with
``to_numpy`` (``minivae.backend.to_numpy``). ``assert_matches_numpy(got, expected)`` compares a
backend's result with the NumPy result: rtol 1e-12 in float64, 1e-5 in float32 (a GPU sums in
another order).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from minivae import backend

try:  # figures in tests are drawn off-screen
    import matplotlib
except ImportError:  # pragma: no cover - matplotlib is a course dependency
    matplotlib = None
else:
    matplotlib.use("Agg")

GPU = backend.gpu_available()
NO_GPU = "CuPy with a usable NVIDIA GPU not found"

#: The backends every backend-dependent test runs on (use with @pytest.mark.parametrize if needed).
BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("standin", id="standin"),
    pytest.param(
        "cupy", id="cupy", marks=(pytest.mark.gpu, pytest.mark.skipif(not GPU, reason=NO_GPU))
    ),
]

#: Tolerance (relative) when a backend's result is compared with NumPy's.
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def pytest_configure(config: Any) -> None:
    # On a GPU machine a broken CuPy would otherwise turn every GPU test into a quiet skip;
    # benchmarks/gpu_check.sh sets MINIVAE_REQUIRE_GPU=1 so that it fails loudly instead.
    if os.environ.get("MINIVAE_REQUIRE_GPU") == "1" and not GPU:
        try:
            backend.get("cupy")
        except Exception as err:  # the backend's own message says what is missing
            reason = str(err)
        else:  # pragma: no cover - gpu_available() and get() disagree
            reason = "backend.gpu_available() is False"
        raise pytest.UsageError(f"MINIVAE_REQUIRE_GPU=1 but {NO_GPU}: {reason}")


@pytest.hookimpl(tryfirst=True)  # before `-m gpu` selects by marker
def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    # any test run with the parameter "cupy" needs a GPU: mark it, wherever its parameters come
    # from, so that `-m gpu` (benchmarks/gpu_check.sh) selects every one of them
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(isinstance(value, str) and value == "cupy" for value in params.values()):
            item.add_marker(pytest.mark.gpu)


def pytest_report_header(config: Any) -> str:
    cupy = "cupy (GPU: tests run)" if GPU else f"cupy skipped ({NO_GPU})"
    return f"minivae backends: numpy, standin (strict CuPy stand-in), {cupy}"


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """'numpy', 'standin' or 'cupy' (the last one skipped without a GPU)."""
    return request.param


@pytest.fixture(params=BACKENDS[1:])
def device_backend_name(request: pytest.FixtureRequest) -> str:
    """'standin' or 'cupy': for tests that compare a device backend with NumPy."""
    return request.param


@pytest.fixture
def xp(backend_name: str) -> Any:
    """The array module of the backend: numpy, minivae.testing.standin.standin, or cupy."""
    return backend.get(backend_name)


@pytest.fixture
def to_xp(xp: Any) -> Callable[..., Any]:
    """``to_xp(a)`` copies a host array onto the backend; ``to_xp(a, b)`` returns a tuple."""

    def move(*arrays: Any) -> Any:
        moved = tuple(backend.to_device(a, xp) for a in arrays)
        return moved[0] if len(moved) == 1 else moved

    return move


@pytest.fixture
def to_numpy() -> Callable[[Any], np.ndarray]:
    """``to_numpy(a)``: a NumPy copy of a backend array (``minivae.backend.to_numpy``)."""
    return backend.to_numpy


@pytest.fixture
def assert_matches_numpy(xp: Any) -> Callable[..., None]:
    """``assert_matches_numpy(got, expected, dtype=None, err_msg="")``.

    ``got`` is a result computed on the backend (an array, which must live on the backend, or a
    Python float); ``expected`` is the NumPy result. The tolerance is relative, by ``dtype``
    (default: the dtype of ``got``, float64 for floats): 1e-12 for float64, 1e-5 for float32,
    measured against the largest entry of ``expected`` so entries near 0 are not held to more
    digits than their neighbours.
    """

    def check(got: Any, expected: Any, dtype: Any = None, err_msg: str = "") -> None:
        is_array = hasattr(got, "shape") and hasattr(got, "dtype")
        if is_array:
            assert backend.array_module(got) is xp, (
                f"{err_msg}: the result lives on {backend.array_module(got).__name__}, "
                f"expected the backend {xp.__name__}"
            )
            got = backend.to_numpy(got)
        if dtype is None:
            dtype = got.dtype if is_array else np.float64
        rtol = RTOL[np.dtype(dtype)]
        expected = np.asarray(expected)
        atol = rtol * float(np.abs(expected).max()) if expected.size else 0.0
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=err_msg)

    return check
