"""Speed, kept apart from the maths: each fast path here is tested against its plain reference.

- :mod:`~minivae.accel.kernels`: fused CUDA kernels (CuPy ``ElementwiseKernel``) for the ELBO's
  elementwise pieces and the optimizers' updates; ``MINIVAE_FUSED_KERNELS=0`` turns them off.
"""
