"""Run CuPy ``ElementwiseKernel`` sources on the CPU, and compile them as CUDA, without a GPU.

:class:`HostElementwiseKernel` takes the same arguments as ``cupy.ElementwiseKernel`` and is
called the same way. It wraps the CUDA C body in a C++ loop shaped like the one CuPy generates
(each input a ``const T`` holding the entry, each output a ``T &`` to it), compiles it with g++
and calls it through ctypes on the stand-in backend's arrays. Installed as
``standin.ElementwiseKernel``, it makes the library take its GPU code path (``minivae.kernels``)
on the CPU: the kernel bodies, the library's calls of them and the argument order all run.

g++ compiles with ``-ffp-contract=off`` (no fused multiply-adds), as the optimizer kernels ask
of NVRTC with ``--fmad=false``. :func:`cuda_source` wraps the bodies as CUDA kernels, for nvcc
and for :func:`nvrtc_ptx` (NVRTC, the compiler CuPy calls, loaded through CuPy when present).
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from minivae.standin import DeviceArray

CXX = shutil.which("g++") or shutil.which("c++")
NVCC = shutil.which("nvcc")
C_TYPES = {np.dtype(np.float32): ("float", ctypes.c_float),
           np.dtype(np.float64): ("double", ctypes.c_double)}
_build_dir = Path(tempfile.mkdtemp(prefix="minivae-host-kernels-"))
_libraries: dict[str, Any] = {}


def parse_params(spec: str) -> list[tuple[str, str]]:
    """'T x, T y' -> [('T', 'x'), ('T', 'y')]; only the placeholder type T is used in minivae."""
    params = []
    for part in spec.split(","):
        words = part.split()
        if len(words) != 2 or words[0] != "T":
            raise ValueError(f"unsupported kernel parameter {part!r} (expected 'T name')")
        params.append((words[0], words[1]))
    return params


def _compile(source: str, ctype: str) -> Any:
    digest = hashlib.sha1((ctype + source).encode()).hexdigest()[:16]
    if digest not in _libraries:
        cpp, lib = _build_dir / f"k{digest}.cpp", _build_dir / f"k{digest}.so"
        cpp.write_text(source)
        result = subprocess.run(
            [CXX, "-O2", "-ffp-contract=off", "-shared", "-fPIC", str(cpp), "-o", str(lib)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"g++ could not compile the kernel:\n{result.stderr}\n{source}")
        _libraries[digest] = ctypes.CDLL(str(lib))
    return _libraries[digest]


class HostElementwiseKernel:
    """``cupy.ElementwiseKernel`` on the CPU, for the stand-in backend (see the module doc)."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel",
                 options: tuple[str, ...] = (), **_: Any):
        self.inputs = parse_params(in_params)
        self.outputs = parse_params(out_params)
        self.operation = operation
        self.name = name
        self.options = options
        self.calls = 0

    def _source(self, scalar: list[bool], ctype: str) -> str:
        args, lines = ["long long n_entries"], []
        for (_, name), is_scalar in zip(self.inputs, scalar, strict=True):
            if is_scalar:
                args.append(f"T scalar_{name}")
                lines.append(f"const T {name} = scalar_{name};")
            else:
                args.append(f"const T* raw_{name}")
                lines.append(f"const T {name} = raw_{name}[k_entry];")
        for _, name in self.outputs:
            args.append(f"T* raw_{name}")
            lines.append(f"T &{name} = raw_{name}[k_entry];")
        decls = "\n        ".join(lines)
        return (
            "#include <cmath>\nusing namespace std;\n"
            f"typedef {ctype} T;\n"
            f'extern "C" void {self.name}({", ".join(args)}) {{\n'
            "    for (long long k_entry = 0; k_entry < n_entries; ++k_entry) {\n"
            f"        {decls}\n        {self.operation}\n    }}\n}}\n"
        )

    def __call__(self, *args: Any) -> Any:
        n_in, n_out = len(self.inputs), len(self.outputs)
        if len(args) not in (n_in, n_in + n_out):
            raise TypeError(f"{self.name} takes {n_in} inputs (and optionally {n_out} outputs), "
                            f"got {len(args)} arguments")
        host = [a._a if isinstance(a, DeviceArray) else a for a in args]
        arrays = [a for a in host if isinstance(a, np.ndarray)]
        dtype = arrays[0].dtype
        if any(a.dtype != dtype for a in arrays):  # CuPy refuses two dtypes for one T
            raise TypeError(f"{self.name}: arrays of several dtypes for T: "
                            f"{sorted({str(a.dtype) for a in arrays})}")
        ctype, c_scalar = C_TYPES[dtype]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        given_outputs = host[n_in:]
        outputs = given_outputs or [np.empty(shape, dtype) for _ in self.outputs]
        for out in outputs:
            if not isinstance(out, np.ndarray) or out.shape != shape:
                raise ValueError(f"{self.name}: outputs must be arrays of shape {shape}")
        scalar = [not isinstance(a, np.ndarray) for a in host[:n_in]]
        library = _compile(self._source(scalar, ctype), ctype)
        c_args: list[Any] = [ctypes.c_longlong(math.prod(shape))]
        keep_alive = []
        for value, is_scalar in zip(host[:n_in], scalar, strict=True):
            if is_scalar:
                c_args.append(c_scalar(value))
            else:
                buffer = np.ascontiguousarray(np.broadcast_to(value, shape))
                keep_alive.append(buffer)
                c_args.append(buffer.ctypes.data_as(ctypes.c_void_p))
        work = [out if out.flags.c_contiguous else np.ascontiguousarray(out) for out in outputs]
        c_args += [w.ctypes.data_as(ctypes.c_void_p) for w in work]
        getattr(library, self.name)(*c_args)
        for out, w in zip(outputs, work, strict=True):
            if w is not out:
                out[...] = w
        self.calls += 1
        wrapped = [DeviceArray(out) for out in outputs]
        return wrapped[0] if len(wrapped) == 1 else tuple(wrapped)


def cuda_source(sources: list[Any], ctype: str) -> str:
    """One .cu file with every kernel body wrapped as CuPy wraps it (every input an array)."""
    parts = [f"typedef {ctype} T;"]
    for s in sources:
        inputs, outputs = parse_params(s.in_params), parse_params(s.out_params)
        args = ["long long n_entries"]
        args += [f"const T* raw_{name}" for _, name in inputs]
        args += [f"T* raw_{name}" for _, name in outputs]
        decls = [f"const T {name} = raw_{name}[k_entry];" for _, name in inputs]
        decls += [f"T &{name} = raw_{name}[k_entry];" for _, name in outputs]
        body = "\n        ".join(decls)
        parts.append(
            f'extern "C" __global__ void minivae_{s.name}({", ".join(args)}) {{\n'
            "    long long k_entry = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
            "    if (k_entry < n_entries) {\n"
            f"        {body}\n        {s.body}\n    }}\n}}"
        )
    return "\n\n".join(parts) + "\n"


def nvrtc_ptx(source: str, options: tuple[str, ...]) -> bytes | None:
    """Compile CUDA source with NVRTC, as CuPy does; None when NVRTC cannot be loaded.

    Raises RuntimeError with NVRTC's log when the source or an option is refused.
    """
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()  # loads libnvrtc, or fails without it
    except Exception:
        return None
    program = nvrtc.createProgram(source, "minivae_kernels.cu", [], [])
    try:
        nvrtc.compileProgram(program, [*options, "-arch=compute_80"])
    except Exception as err:
        raise RuntimeError(f"NVRTC refused the kernel ({err}):\n"
                           f"{nvrtc.getProgramLog(program)}") from err
    return nvrtc.getPTX(program)
