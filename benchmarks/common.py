"""Shared by the benchmark scripts: the MNIST-shaped data, the machine's description, threads.

Nothing here is downloaded: the data is generated from a fixed seed.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
from typing import Any

import numpy as np

#: Environment variables some machines set for old OpenBLAS builds; they slow a current NumPy.
#: The benchmark's worker processes run without them (the parent's environment is unchanged).
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def mnist_like(n: int = 60000, seed: int = 0, dtype: Any = np.float32) -> np.ndarray:
    """``n`` binary 28x28 images, flattened to (n, 784), from a fixed seed: MNIST's shape.

    Each image is four Gaussian strokes of random position and width inside the central 21x21
    square, with multiplicative noise, thresholded: about 12% of pixels are 1 (MNIST binarized
    at 0.5: 13%) and the border is almost always 0 (as in MNIST, those pixels' weights get no
    gradient: the case where Adam's state decays towards subnormal floats). Generated in chunks
    of 1000 images so the temporaries stay small (peak-memory runs measure the model, not this).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    out = np.empty((n, 784), dtype=dtype)
    chunk, k = 1000, 4
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        cy, cx = (rng.uniform(7, 21, (m, k, 1, 1)).astype(np.float32) for _ in range(2))
        sy, sx = (rng.uniform(1.0, 4.0, (m, k, 1, 1)).astype(np.float32) for _ in range(2))
        field = np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2)).sum(axis=1)
        field *= np.exp(0.4 * rng.standard_normal((m, 28, 28)).astype(np.float32))
        out[start : start + m] = (field > 0.6).reshape(m, 784)
    return out


def worker_env(threads: int) -> dict[str, str]:
    """The environment of a benchmark worker: ``threads`` BLAS/OpenMP threads, no OpenBLAS
    core-type override (see OPENBLAS_OVERRIDES)."""
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    # minivae's fit picks its BLAS threads itself (minivae.accel.blas); a benchmark compares at
    # a fixed count, whatever the machine's load
    env["MINIVAE_BLAS_THREADS"] = str(threads)
    return env


def limit_threads(threads: int) -> Any:
    """Limit BLAS/OpenMP threads in this process (threadpoolctl if installed).

    PyTorch is not imported here (a minivae-only process must not hold it): use
    :func:`import_torch`, which sets torch's threads.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None  # the environment variables set by worker_env do it instead
    return threadpool_limits(threads)


def import_torch(threads: int) -> Any:
    """Import torch and give it ``threads`` intra-op threads."""
    import torch

    torch.set_num_threads(threads)
    return torch


def blas_info() -> str:
    """NumPy's BLAS as threadpoolctl sees it: library, version, kernel (architecture), threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (BLAS unknown)"
    rows = [
        f"{i.get('internal_api')} {i.get('version')} (kernel {i.get('architecture')}, "
        f"{i.get('num_threads')} threads)"
        for i in threadpool_info()
        if i.get("user_api") == "blas" and "numpy" in i.get("filepath", "")
    ]
    return "; ".join(rows) or "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    """CPU, cores, Python, NumPy with its BLAS, torch (if importable) with its BLAS."""
    info = {
        "cpu": f"{cpu_model()}, {os.cpu_count()} logical CPUs",
        "python": sys.version.split()[0],
        "numpy": f"{np.__version__}, BLAS: {blas_info()}",
    }
    try:
        import torch

        blas = "MKL" if torch.backends.mkl.is_available() else "non-MKL BLAS"
        capability = torch.backends.cpu.get_cpu_capability()
        info["torch"] = f"{torch.__version__} ({blas}, CPU capability {capability})"
    except ImportError:
        info["torch"] = "not installed"
    return info


def _proc_status_mib(key: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def rss_now_mib() -> float:
    """The resident set size of this process now (Linux /proc VmRSS), in MiB; NaN elsewhere."""
    return _proc_status_mib("VmRSS")


def peak_rss_mib() -> float:
    """The peak resident set size of this process so far, in MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this program's memory.
    getrusage's ru_maxrss is the fallback elsewhere; on Linux it is not used, because it keeps
    the peak of the process image before ``exec`` (a worker started by a parent that imported
    torch would report the parent's size).
    """
    hwm = _proc_status_mib("VmHWM")
    if hwm == hwm:  # not NaN
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20
