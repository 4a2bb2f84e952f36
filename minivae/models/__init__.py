"""The models of the course, each one file, all implementing one protocol (:mod:`.base`).

``MODELS`` maps a model's class name (``config()["class"]``) to its class, for checkpoints; a new
model is one new file here and one entry in it.
"""

from .autoencoder import Autoencoder
from .base import Batch, LatentVariableModel, Model
from .classifier import Classifier
from .cvae import CVAE
from .flow_vae import FlowVAE
from .iwae import IWAE
from .m2 import M2
from .vae import VAE
from .vqvae import VQVAE, CodePrior

MODELS: dict[str, type[Model]] = {
    cls.__name__: cls
    for cls in (Autoencoder, VAE, CVAE, M2, Classifier, VQVAE, CodePrior, FlowVAE, IWAE)
}

__all__ = [
    "CVAE",
    "IWAE",
    "M2",
    "MODELS",
    "VAE",
    "VQVAE",
    "Autoencoder",
    "Batch",
    "Classifier",
    "CodePrior",
    "FlowVAE",
    "LatentVariableModel",
    "Model",
]
