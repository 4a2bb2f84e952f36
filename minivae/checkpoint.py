"""Save and load a model as one ``.npz`` file, without pickle, written atomically.

The file holds one array per parameter (``param/<name>``) and a JSON string (``config``) with
the format version, the model's configuration (``model.config()``: what its constructor takes)
and its state (``model.state()``: the generator, beta, the regularizer and its parameters). A
round trip gives the same model: bit-identical parameters, the same loss for the same eps and,
on NumPy, the same ``sample()`` as the saved model would have drawn next.

Saving is atomic: the file is written to a temporary file in the same folder, flushed and
fsynced, then moved over the target with ``os.replace`` (and the folder fsynced where the OS
allows it). A crash, an exception or a ``SIGKILL`` mid-save leaves the previous checkpoint as it
was; only a killed process can leave a temporary ``.<name>.*.tmp`` file behind.

Loading trusts nothing: ``allow_pickle=False`` (a file can never run code); the header of every
array (shape, dtype, size) is read from the archive and checked against what the stored
configuration asks for, and that against :data:`MAX_PARAMETERS`, **before** the model is built
or any array is read, so a small file cannot make ``load`` allocate gigabytes. Every refusal is a
ValueError that names the file and the entry.

The generator: NumPy's state is stored and restored exactly. A device generator (CuPy, the
stand-in) keeps its state on the device where it cannot be read back: the file stores none,
and the loaded model gets a fresh generator seeded as at construction (``seed + 1``), so its
``sample()`` is the first one a new model with that seed would draw. A model loaded onto a device
also starts from that fresh device generator, whatever the file holds.

An optimizer's state (Adam's moment estimates) is not part of the model and is not stored: a run
continued from a checkpoint with a new Adam differs from one that never stopped.

Version 1 files (``minivae-checkpoint-1``: no regularizer, no generator state) still load, with a
warning that says what they lack and how to upgrade them.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np

from .backend import to_numpy
from .models import MODELS
from .models.base import checking_parameters
from .validation import all_finite

FORMAT = "minivae-checkpoint-2"
#: Older formats that :func:`load` still reads.
OLD_FORMATS = ("minivae-checkpoint-1",)

#: The most parameters a checkpoint's configuration may ask for (1e8: 400 MB in float32, about
#: 120 times the 784-512-20 VAE); a configuration above it is refused before the model is built.
#: Raise it (``minivae.checkpoint.MAX_PARAMETERS = ...``) to load a larger, trusted model.
MAX_PARAMETERS = 100_000_000
#: The most characters the JSON configuration entry may hold.
MAX_CONFIG_CHARS = 1_000_000

# What reading a damaged archive member can raise: a bad CRC or truncated member (BadZipFile,
# EOFError, zlib.error), an object array refused by allow_pickle=False (ValueError), bad headers.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError)


# -------------------------------------------------------------------------------------------
# Saving
# -------------------------------------------------------------------------------------------


def save(model: Any, path: str | os.PathLike) -> str:
    """Write ``model``'s parameters, configuration and state to ``path`` (.npz); return the path.

    Atomic: the previous file at ``path`` stays intact until the new one is complete on disk.
    Raises TypeError for a model whose state cannot be stored (a custom regularizer) and
    ValueError for parameters that are not finite (the file could not be loaded back).
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    # everything that can be refused is refused before a byte is written
    meta = {"format": FORMAT, "config": model.config(), "state": model.state()}
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"cannot save {type(model).__name__}: its config() or state() is not plain JSON "
            f"(numbers, strings, lists, dicts; no NaN) ({err})"
        ) from None
    if not all_finite(model.params.flat):
        bad = [name for name, value in model.params.items() if not all_finite(value)]
        raise ValueError(
            f"cannot save {type(model).__name__}: parameters {bad} hold NaN or inf (a diverged "
            "run?); such a checkpoint could not be loaded back"
        )
    arrays = {f"param/{name}": to_numpy(value) for name, value in model.params.items()}
    _write_atomically(path, lambda f: np.savez(f, config=np.array(text), **arrays))
    return path


def _write_atomically(path: str, write: Any) -> None:
    """``write(file)`` into a temporary file next to ``path``, then move it over ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never write into someone else's file; mode 0o666 less the umask, like open()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:  # an exception, KeyboardInterrupt: the old file stays, no stray temp
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open a folder, and needs not."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse to fsync a folder; the file itself is synced
        pass
    finally:
        os.close(fd)


# -------------------------------------------------------------------------------------------
# Loading
# -------------------------------------------------------------------------------------------


def _header(archive: Any, key: str, path: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one entry, read from its .npy header without reading its data."""
    try:
        with archive.zip.open(key + ".npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
    except _READ_ERRORS as err:
        raise ValueError(f"{path}: entry {key!r} is damaged or unreadable ({err})") from None
    if dtype.hasobject:
        raise ValueError(
            f"{path}: entry {key!r} holds pickled Python objects; a minivae checkpoint holds "
            "only numeric arrays and is loaded with allow_pickle=False, so it is refused"
        )
    return tuple(int(s) for s in shape), dtype


def _read(archive: Any, key: str, path: str) -> np.ndarray:
    """One entry of the archive (its header already checked), damage reported as a ValueError."""
    try:
        return archive[key]
    except _READ_ERRORS as err:
        raise ValueError(f"{path}: entry {key!r} is damaged or unreadable ({err})") from None


def _read_meta(archive: Any, path: str) -> dict:
    if "config" not in archive.files:
        raise ValueError(f"{path} is not a minivae checkpoint: it has no 'config' entry")
    shape, dtype = _header(archive, "config", path)
    if shape != () or dtype.kind != "U" or dtype.itemsize // 4 > MAX_CONFIG_CHARS:
        raise ValueError(
            f"{path}: entry 'config' must be one JSON string of at most {MAX_CONFIG_CHARS:,} "
            f"characters, got an array of shape {shape} and dtype {dtype}"
        )
    try:
        meta = json.loads(str(_read(archive, "config", path)))
    except (ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: the checkpoint's config is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") not in (FORMAT, *OLD_FORMATS):
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(
            f"{path}: unknown checkpoint format {found!r}, expected {FORMAT!r} "
            f"(or an older {list(OLD_FORMATS)})"
        )
    if not isinstance(meta.get("config"), dict):
        raise ValueError(f"{path}: the checkpoint's 'config' entry has no model configuration")
    if meta["format"] == "minivae-checkpoint-1":
        warnings.warn(
            f"{path} is a version-1 checkpoint: it stores no regularizer and no generator state, "
            "so the model is loaded with the plain beta * KL and a generator seeded as at "
            "construction. If it was trained with FreeBits or Capacity, set model.regularizer "
            f"again; save it again to upgrade the file to {FORMAT!r}",
            UserWarning,
            stacklevel=3,
        )
        meta["state"] = {} if meta.get("beta") is None else {"beta": meta["beta"]}
    if not isinstance(meta.get("state"), dict):
        raise ValueError(f"{path}: the checkpoint's 'state' entry is missing or not a dict")
    return meta


def _parameter_check(path: str, headers: dict[str, tuple]) -> Any:
    """The check a model runs on its shapes before allocating: size limit, then the headers."""

    def check(shapes: dict, dtype: np.dtype) -> None:
        total = sum(math.prod(shape) for shape in shapes.values())
        if total > MAX_PARAMETERS:
            raise ValueError(
                f"{path}: the stored configuration asks for {total:,} parameters, more than "
                f"minivae.checkpoint.MAX_PARAMETERS = {MAX_PARAMETERS:,}; refused before "
                "allocating (raise the limit if the file is trusted)"
            )
        if set(headers) != set(shapes):
            raise ValueError(
                f"{path}: parameters {sorted(headers)} do not match "
                f"the model's {sorted(shapes)}"
            )
        for name, expected in shapes.items():
            shape, stored = headers[name]
            if stored != dtype:
                raise ValueError(
                    f"{path}: parameter {name!r} is {stored}, expected {dtype.name}"
                )
            if shape != tuple(expected):
                raise ValueError(
                    f"{path}: parameter {name!r} has shape {shape}, "
                    f"the configuration needs {tuple(expected)}"
                )

    return check


def load(path: str | os.PathLike, backend: str | None = None) -> Any:
    """Build the model saved at ``path`` and load its parameters and state onto ``backend``.

    ``backend`` None: the default set by :func:`minivae.backend.use` ('numpy' unless changed).

    Raises ValueError when the file is not a minivae checkpoint, does not match its
    configuration, or asks for more than :data:`MAX_PARAMETERS` parameters.
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
        meta = _read_meta(archive, path)
        config = dict(meta["config"])
        name = config.pop("class", None)
        cls = MODELS.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(
                f"{path}: unknown model class {name!r}; expected one of {sorted(MODELS)}"
            )
        # the headers first: shapes and dtypes only, no data read yet
        headers = {
            key[len("param/"):]: _header(archive, key, path)
            for key in archive.files if key.startswith("param/")
        }
        stored = sum(math.prod(shape) for shape, _ in headers.values())
        if stored > MAX_PARAMETERS:
            raise ValueError(
                f"{path}: its arrays hold {stored:,} values, more than "
                f"minivae.checkpoint.MAX_PARAMETERS = {MAX_PARAMETERS:,}"
            )
        check = _parameter_check(path, headers)
        try:
            with checking_parameters(check):
                model = cls(**config, backend=backend)
        except (TypeError, ValueError) as err:
            if str(err).startswith(f"{path}: "):  # the check above: already names the file
                raise ValueError(str(err)) from None
            raise ValueError(
                f"{path}: the stored configuration {config} is invalid ({err})"
            ) from None
        check(model.params.shapes(), model.dtype)  # a model that bypassed _setup: same checks
        for name in model.params:
            value = _read(archive, f"param/{name}", path)
            try:
                model.params[name] = value  # checks finiteness
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        try:
            model.load_state(meta["state"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: the stored state is invalid ({err})") from None
    return model
