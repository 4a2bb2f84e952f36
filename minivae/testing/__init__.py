"""What the tests and benchmarks use to check the library without a GPU.

- :mod:`~minivae.testing.standin`: a strict CPU stand-in for CuPy that fails on any stray NumPy
  call on device data, exactly where CuPy would.
- :mod:`~minivae.testing.host_kernels`: the fused CUDA kernels' bodies compiled for the CPU with
  g++, and CuPy's own code generator with NVRTC, so the kernels are checked without a device;
  ``host_kernels.installed()`` makes the library take its GPU code path on the stand-in.
- :mod:`~minivae.testing.opcount`: counts the array operations (kernel launches on a GPU) and
  host read-backs of code run on the stand-in (``with opcount.counting() as count: ...``).
"""
