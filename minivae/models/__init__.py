"""The models of the course, each one file, all implementing one protocol (:mod:`.base`).

``MODELS`` maps a model's class name (``config()["class"]``) to its class, for checkpoints; a new
model registers itself here.
"""

from .autoencoder import Autoencoder
from .base import Batch, LatentVariableModel, Model
from .vae import VAE

MODELS: dict[str, type[Model]] = {"VAE": VAE, "Autoencoder": Autoencoder}

__all__ = ["MODELS", "VAE", "Autoencoder", "Batch", "LatentVariableModel", "Model"]
