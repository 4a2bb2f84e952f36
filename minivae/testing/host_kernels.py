"""Run CuPy ``ElementwiseKernel`` sources on the CPU, and compile them as CUDA, without a GPU.

:class:`HostElementwiseKernel` takes the same arguments as ``cupy.ElementwiseKernel`` and is
called the same way. It wraps the CUDA C body in a C++ loop shaped like the one CuPy generates
(each input a ``const T`` holding the entry, each output a ``T &`` to it), compiles it with g++
and calls it through ctypes on the stand-in backend's arrays. Installed as
``standin.ElementwiseKernel``, it makes the library take its GPU code path
(``minivae.accel.kernels``) on the CPU: the kernel bodies, the library's calls of them and the
argument order all run.

g++ compiles with ``-ffp-contract=off`` (no fused multiply-adds), as the optimizer kernels ask
of NVRTC with ``--fmad=false``. :func:`cuda_source` wraps the bodies as CUDA kernels, for nvcc
and for :func:`nvrtc_ptx` (NVRTC, the compiler CuPy calls, loaded through CuPy when present).
Closest to the device: each kernel call records its arguments' kinds, :func:`cupy_generated_code`
turns one such call into the exact source CuPy would generate, and :func:`nvrtc_compile_as_cupy`
compiles it with CuPy's headers and options for an H100/H200 (sm_90) — all but the launch.

:func:`installed` puts :class:`HostElementwiseKernel` in place for a block (tests and
``benchmarks/step_ops.py`` use it); each call is reported to the stand-in's observers as kind
``"kernel"`` (:func:`minivae.testing.standin.observing`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import math
import shutil
import subprocess
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from minivae import accel
from minivae.accel import kernels
from minivae.testing.standin import DeviceArray, report, standin

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
        #: how the library called this kernel: (dtype name, per argument ("scalar", 0, True) or
        #: ("array", ndim, C-contiguous)), inputs then outputs; see :func:`cupy_generated_code`
        self.signatures: set[tuple[str, tuple[tuple[str, int, bool], ...]]] = set()

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
        self.signatures.add((dtype.name, tuple(
            ("array", a.ndim, bool(a.flags.c_contiguous)) if isinstance(a, np.ndarray)
            else ("scalar", 0, True) for a in [*host[:n_in], *outputs])))
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
        report("kernel", self.name.removeprefix("minivae_"))
        wrapped = [DeviceArray(out) for out in outputs]
        return wrapped[0] if len(wrapped) == 1 else tuple(wrapped)


@contextlib.contextmanager
def installed() -> Iterator[types.ModuleType]:
    """The stand-in backend with ``ElementwiseKernel`` while the block runs: the library takes its
    GPU code path (fused kernels, run on the CPU by :class:`HostElementwiseKernel`).

    Inside the block the fast paths and the fused kernels are switched on and the stand-in's
    kernel cache starts empty (``kernels.compiled(standin)[name].calls`` counts each kernel's
    calls); afterwards the stand-in, the cache and both switches are as before. Yields the
    stand-in module. Raises RuntimeError without a C++ compiler.
    """
    if CXX is None:
        raise RuntimeError("no C++ compiler (g++) to run the kernel bodies on the CPU")
    if "ElementwiseKernel" in vars(standin):
        raise RuntimeError("host kernels are already installed on the stand-in")
    kernels.clear_cache(standin)
    previous = accel.set_enabled(True), kernels.set_enabled(True)
    standin.ElementwiseKernel = HostElementwiseKernel
    try:
        yield standin
    finally:
        del standin.ElementwiseKernel
        kernels.clear_cache(standin)
        accel.set_enabled(previous[0])
        kernels.set_enabled(previous[1])


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


def cupy_generated_code(source: Any, dtype: str,
                        signature: tuple[tuple[str, int, bool], ...]) -> str:
    """The CUDA C++ that CuPy's ``ElementwiseKernel`` generates for one call of ``source``.

    ``signature`` says, per argument (inputs then outputs), whether it is a scalar or an array
    and, for an array, its ndim and C-contiguity (as :class:`HostElementwiseKernel` records
    them). It uses CuPy's own code generator (``cupy._core._kernel``, internal: a CuPy release
    that changes it raises ``AttributeError``/``TypeError``), after the dimension reduction CuPy
    makes: arrays that are all C-contiguous run as one flat loop; otherwise a 2-D loop.
    """
    import cupy
    from cupy._core import _carray, _kernel, _scalar

    in_params = _kernel._get_param_info(source.in_params, True)
    out_params = _kernel._get_param_info(source.out_params, False)
    params = in_params + out_params + _kernel._get_param_info("CIndexer _ind", False)
    arrays = [(ndim, contiguous) for kind, ndim, contiguous in signature if kind == "array"]
    flat = all(contiguous for _, contiguous in arrays)  # CuPy's _reduce_dims
    ndim = 1 if flat else max(n for n, _ in arrays)
    ARRAY, INDEXER, SCALAR = 1, 2, 3  # cupy._core._kernel._ArgKind
    infos = []
    for kind, array_ndim, contiguous in signature:
        if kind == "scalar":  # a Python number, cast to T (CuPy's CScalar)
            infos.append(_kernel._ArgInfo(SCALAR, _scalar.CScalar, np.dtype(dtype), 0, True, True))
        else:
            infos.append(_kernel._ArgInfo(ARRAY, cupy.ndarray, np.dtype(dtype),
                                          1 if flat else array_ndim, flat or contiguous, True))
    infos.append(_kernel._ArgInfo(INDEXER, _carray.Indexer, None, ndim, True, True))
    type_map = _kernel._TypeMap((("T", np.dtype(dtype).type),))
    return _kernel._get_elementwise_kernel_code(
        tuple(infos), type_map, params, source.body, source.name, "")


def nvrtc_compile_as_cupy(code: str, options: tuple[str, ...], arch: str = "90"
                          ) -> tuple[bytes, str]:
    """Compile CuPy-generated ``code`` as CuPy would for a device of compute capability ``arch``.

    CuPy's headers and include options, the kernel's own ``options`` and the flags CuPy adds
    for NVRTC; 90 is the H100/H200. Returns (cubin, PTX). CuPy asks the device for ``arch``,
    which fails without a GPU, so this calls its NVRTC wrapper (internal) directly.
    Raises ``cupy.cuda.compiler.CompileException`` with NVRTC's log when the code is refused.
    """
    from cupy._core import core
    from cupy.cuda import compiler

    source = "".join(f"#include <{h}>\n" for h in core._cupy_header_list) + code
    options = core.assemble_cupy_compiler_options(tuple(options)) + (
        "--device-as-default-execution-space",)
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "kern.cu")
        Path(path).write_text(source)
        cubin, _ = compiler._NVRTCProgram(source, path, (), (), method="cubin").compile(
            options + (f"-arch=sm_{arch}",))
        ptx, _ = compiler._NVRTCProgram(source, path, (), (), method="ptx").compile(
            options + (f"-arch=compute_{arch}",))
    return cubin, ptx.decode() if isinstance(ptx, bytes) else ptx
