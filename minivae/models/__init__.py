"""The models of the course, each one file, all implementing one protocol (:mod:`.base`)."""

from .autoencoder import Autoencoder
from .base import Model
from .vae import VAE

__all__ = ["VAE", "Autoencoder", "Model"]
