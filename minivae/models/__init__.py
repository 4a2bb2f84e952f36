"""The models of the course, each one file, all implementing one protocol (:mod:`.base`).

``MODELS`` maps a model's class name (``config()["class"]``) to its class, for checkpoints; a new
model registers itself here.
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

MODELS: dict[str, type[Model]] = {"VAE": VAE, "Autoencoder": Autoencoder, "VQVAE": VQVAE}
MODELS.update({"CVAE": CVAE, "M2": M2, "Classifier": Classifier})

__all__ = ["MODELS", "VAE", "VQVAE", "Autoencoder", "Batch", "LatentVariableModel", "Model"]
__all__ += ["CVAE", "M2", "Classifier"]
MODELS.update({"CodePrior": CodePrior})
__all__ += ["CodePrior"]
MODELS.update({"FlowVAE": FlowVAE, "IWAE": IWAE})
__all__ += ["FlowVAE", "IWAE"]
