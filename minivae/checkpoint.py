"""Save and load a model's parameters and configuration as one ``.npz`` file, without pickle.

The file holds one array per parameter (``param/<name>``) and the model's configuration as a
JSON string (``config``). Loading uses ``allow_pickle=False``, so a file can never run code, and
checks every name, shape and dtype against the configuration before building the model.
A round trip gives bit-identical outputs.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from typing import Any

import numpy as np

from .backend import to_numpy
from .models import MODELS

FORMAT = "minivae-checkpoint-1"

# What reading a damaged archive member can raise: a bad CRC or truncated member (BadZipFile,
# EOFError, zlib.error), an object array refused by allow_pickle=False (ValueError), bad headers.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


def save(model: Any, path: str | os.PathLike) -> str:
    """Write ``model``'s parameters and configuration to ``path`` (.npz); return the path."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = {f"param/{name}": to_numpy(value) for name, value in model.params.items()}
    meta = {"format": FORMAT, "config": model.config(), "beta": getattr(model, "beta", None)}
    np.savez(path, config=np.array(json.dumps(meta)), **arrays)
    return path


def _read(archive: Any, key: str, path: str) -> np.ndarray:
    """One entry of the archive, with damage or pickled objects reported as a ValueError."""
    try:
        value = archive[key]
    except _READ_ERRORS as err:
        if "allow_pickle" in str(err):
            raise ValueError(
                f"{path}: entry {key!r} holds pickled Python objects; a minivae checkpoint holds "
                "only numeric arrays and is loaded with allow_pickle=False, so it is refused"
            ) from None
        raise ValueError(f"{path}: entry {key!r} is damaged or unreadable ({err})") from None
    return value


def load(path: str | os.PathLike, backend: str | None = None) -> Any:
    """Build the model saved at ``path`` and load its parameters onto ``backend``.

    ``backend`` None: the default set by :func:`minivae.backend.use` ('numpy' unless changed).

    Raises ValueError when the file is not a minivae checkpoint or does not match its configuration.
    """
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except _READ_ERRORS as err:
        if "pickle" in str(err):  # neither a zip archive nor a .npy header: np.load's last guess
            err = "it is neither an .npz archive nor a .npy array (pickle loading is disabled)"
        raise ValueError(f"{path} is not a minivae checkpoint (.npz): {err}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array, not a minivae checkpoint (.npz)")
    with archive:
        if "config" not in archive.files:
            raise ValueError(f"{path} is not a minivae checkpoint: it has no 'config' entry")
        raw = _read(archive, "config", path)
        try:
            meta = json.loads(str(raw))
        except (ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: the checkpoint's config is not valid JSON ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown checkpoint format, expected {FORMAT!r}")
        if not isinstance(meta.get("config"), dict):
            raise ValueError(f"{path}: the checkpoint's 'config' entry has no model configuration")
        config = dict(meta["config"])
        cls = MODELS.get(config.pop("class", None))
        if cls is None:
            raise ValueError(f"{path}: unknown model class; expected one of {sorted(MODELS)}")
        try:
            model = cls(**config, backend=backend)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{path}: the stored configuration {config} is invalid ({err})"
            ) from None
        if meta.get("beta") is not None:
            try:
                model.beta = meta["beta"]
            except (TypeError, ValueError) as err:
                raise ValueError(f"{path}: the stored beta is invalid ({err})") from None
        stored = {k[len("param/"):] for k in archive.files if k.startswith("param/")}
        if stored != set(model.params):
            raise ValueError(
                f"{path}: parameters {sorted(stored)} do not match "
                f"the model's {sorted(model.params)}"
            )
        for name in model.params:
            value = _read(archive, f"param/{name}", path)
            if value.dtype != model.dtype:
                raise ValueError(
                    f"{path}: parameter {name!r} is {value.dtype}, expected {model.dtype}"
                )
            expected = tuple(model.params[name].shape)
            if value.shape != expected:
                raise ValueError(
                    f"{path}: parameter {name!r} has shape {value.shape}, "
                    f"the configuration needs {expected}"
                )
            try:
                model.params[name] = value  # checks finiteness
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
    return model
