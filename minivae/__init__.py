"""minivae: Variational Autoencoders built by hand in NumPy, every gradient written and checked.

Conventions, stated once for the whole library:
- A loss is summed over pixels and latent dimensions, averaged over the batch, in nats.
- Layers are pairs of functions ``forward(...) -> (out, cache)`` and ``backward(dout, cache)``.
- A model's parameters are one mapping name -> array (``model.params``), its gradients a mapping
  with the same names (``model.grads``). Weights W are (n_in, n_out): out = x @ W + b.
- ``logvar`` is the log-variance; the standard deviation is ``std = exp(0.5 * logvar)``.
"""

from . import backend
from .accel import blas as _blas
from .checkpoint import load, save
from .gradcheck import check_gradients, numerical_gradient, rel_error
from .models import CVAE, IWAE, M2, VAE, VQVAE, Autoencoder, FlowVAE
from .optim import SGD, Adam
from .params import Parameters
from .train import History, TrainingDiverged, evaluate, fit

# one BLAS thread for the course's small products (minivae.accel.blas; MINIVAE_BLAS_THREADS)
_blas.apply_process_default()

__version__ = "0.1.0"

__all__ = [
    "CVAE",
    "IWAE",
    "M2",
    "SGD",
    "VAE",
    "VQVAE",
    "Adam",
    "Autoencoder",
    "FlowVAE",
    "History",
    "Parameters",
    "TrainingDiverged",
    "backend",
    "check_gradients",
    "evaluate",
    "fit",
    "load",
    "numerical_gradient",
    "rel_error",
    "save",
]
