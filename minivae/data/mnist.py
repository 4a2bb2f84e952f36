"""MNIST and Fashion-MNIST from their IDX files: parsed without pickle, cached, checksummed.

    x, y = load_mnist("mnist", "train")          # (60000, 784) float32 in [0, 1], (60000,) int64
    x, y = load_mnist("fashion", "test")         # (10000, 784), (10000,)

The four files of a dataset (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``) live in one cache folder:
``cache_dir`` if given, else ``$MINIVAE_CACHE/<kind>``, else ``~/.minivae-cache/<kind>``.
A missing file is downloaded once (``download=True``) and kept only if its MD5 checksum matches
the published one. Uncompressed copies (the same names without ``.gz``) are read too.

The IDX format (LeCun et al.): two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a
big-endian uint32, then the values, big-endian, row-major.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = [
    "FILES",
    "MD5",
    "MIRRORS",
    "default_cache_dir",
    "load_mnist",
    "read_idx",
    "write_idx",
]

#: IDX type code -> big-endian dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: (split, part) -> file name; the same names for MNIST and Fashion-MNIST.
FILES: dict[tuple[str, str], str] = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}

#: The published MD5 checksums of the gzipped files (as listed by torchvision and by the
#: Fashion-MNIST repository).
MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

#: Base URLs tried in order.
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}

_SIZES = {"train": 60000, "test": 10000}
_MAX_HEADER_DIMS = 8


def default_cache_dir(kind: str = "mnist") -> Path:
    """``$MINIVAE_CACHE/<kind>`` if the variable is set, else ``~/.minivae-cache/<kind>``."""
    root = os.environ.get("MINIVAE_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".minivae-cache"
    return base / kind


# ----------------------------------------------------------------------------------------------
# IDX parsing
# ----------------------------------------------------------------------------------------------


def _read_exact(stream: BinaryIO, n: int, path: Path, what: str) -> bytes:
    try:
        data = stream.read(n)
    except (EOFError, OSError, zlib.error) as err:  # gzip: truncated or corrupt stream
        raise ValueError(f"{path}: corrupt or truncated file while reading {what} ({err})") from err
    if len(data) != n:
        raise ValueError(
            f"{path}: truncated file: expected {n} bytes of {what}, got {len(data)}; "
            "delete it and download it again"
        )
    return data


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzipped or raw) into a NumPy array, without pickle.

    The header gives the dtype and the shape; the array returned has that shape and the
    native-endian version of that dtype (``uint8`` for MNIST's images ``(n, 28, 28)`` and labels
    ``(n,)``). A file is recognised as gzip by its first two bytes (0x1f 0x8b), whatever its name.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a wrong magic number (not an IDX file), an unknown type code, a file shorter
            or longer than its header says, or a corrupt gzip stream.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if is_gzip else open
    with opener(path, "rb") as stream:
        magic = _read_exact(stream, 4, path, "the header")
        if magic[0] != 0 or magic[1] != 0:
            raise ValueError(
                f"{path}: not an IDX file: the magic number must start with two zero bytes, "
                f"got {magic.hex()}"
            )
        code, ndim = magic[2], magic[3]
        if code not in IDX_DTYPES:
            known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
            raise ValueError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
        if not 1 <= ndim <= _MAX_HEADER_DIMS:
            raise ValueError(
                f"{path}: IDX header gives {ndim} dimensions; expected 1 to {_MAX_HEADER_DIMS}"
            )
        shape = struct.unpack(f">{ndim}I", _read_exact(stream, 4 * ndim, path, "the dimensions"))
        dtype = IDX_DTYPES[code]
        n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        # read exactly what the header promises (never a whole decompression bomb), then 1 more
        body = _read_exact(stream, n_bytes, path, f"data for shape {shape}")
        extra = _read_exact_or_less(stream, path)
        if extra:
            raise ValueError(
                f"{path}: the file is longer than its header says (shape {shape}, "
                f"{n_bytes} bytes of data, then more); it is corrupt"
            )
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _read_exact_or_less(stream: BinaryIO, path: Path) -> bytes:
    try:
        return stream.read(1)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt file after the data ({err})") from err


# ----------------------------------------------------------------------------------------------
# download and cache
# ----------------------------------------------------------------------------------------------


def _fetch(url: str, timeout: float = 30.0) -> bytes:
    """The bytes at ``url`` (tests replace this function; nothing else touches the network)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _where_to_put(kind: str, folder: Path) -> str:
    urls = "\n".join(f"  {MIRRORS[kind][0]}{name}" for name in MD5[kind])
    return (
        f"Put the four files in {folder}\n"
        f"(gzipped, with their original names), e.g. from:\n{urls}\n"
        f"or set $MINIVAE_CACHE to a folder holding a '{kind}' subfolder with them, "
        "or pass cache_dir=... to load_mnist."
    )


def _download(kind: str, name: str, dest: Path) -> None:
    """Download ``name`` into ``dest``, keeping it only if its MD5 matches the published one."""
    expected = MD5[kind][name]
    errors = []
    for base in MIRRORS[kind]:
        url = base + name
        try:
            data = _fetch(url)
        except (urllib.error.URLError, OSError, ValueError) as err:
            errors.append(f"{url}: {err}")
            continue
        got = _md5(data)
        if got != expected:
            errors.append(f"{url}: checksum mismatch (MD5 {got}, expected {expected})")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)  # atomic: a half-written file is never left under the real name
        return
    detail = "\n".join(f"  {e}" for e in errors)
    if all("checksum mismatch" in e for e in errors):
        raise ValueError(
            f"downloaded {name} but its checksum did not match; the file was not kept:\n{detail}"
        )
    raise ConnectionError(
        f"could not download {name} ({kind}); are you offline?\n{detail}\n"
        + _where_to_put(kind, dest.parent)
    )


def _locate(kind: str, name: str, folder: Path, download: bool) -> Path:
    gz = folder / name
    if gz.is_file():
        return gz
    raw = folder / name.removesuffix(".gz")
    if raw.is_file():
        return raw
    if not download:
        raise FileNotFoundError(
            f"{name} is not in {folder} and download=False.\n" + _where_to_put(kind, folder)
        )
    _download(kind, name, gz)
    return gz


def load_mnist(
    kind: str = "mnist",
    split: str = "train",
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST as flat images in [0, 1] and integer labels.

    Args:
        kind: ``"mnist"`` (handwritten digits) or ``"fashion"`` (Zalando's clothing images).
        split: ``"train"`` (60000 images) or ``"test"`` (10000).
        cache_dir: the folder holding the IDX files; default :func:`default_cache_dir`.
        download: fetch missing files (once; checksummed). With False, a missing file raises
            FileNotFoundError saying where to put it.

    Returns:
        x: float32 (n, 784), ``pixel / 255``, each row a 28x28 image in row-major order.
        y: int64 (n,), the class 0..9.
    """
    if kind not in MD5:
        raise ValueError(f"kind must be 'mnist' or 'fashion', got {kind!r}")
    if split not in _SIZES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not isinstance(download, (bool, np.bool_)):
        raise TypeError(f"download must be True or False, got {download!r}")
    folder = default_cache_dir(kind) if cache_dir is None else Path(cache_dir).expanduser()
    images = read_idx(_locate(kind, FILES[(split, "images")], folder, download))
    labels = read_idx(_locate(kind, FILES[(split, "labels")], folder, download))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(
            f"{kind} {split} images: expected uint8 of shape (n, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(
            f"{kind} {split} labels: expected uint8 of shape (n,), got {labels.dtype} "
            f"{labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{kind} {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    x = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)
    return x, labels.astype(np.int64)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzipped if ``compress``, default: if the name ends .gz).

    The inverse of :func:`read_idx`, for tests and for saving small datasets in the same format.
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise TypeError(
            f"IDX stores uint8, int8, int16, int32, float32 or float64, got {array.dtype}"
        )
    if not 1 <= array.ndim <= _MAX_HEADER_DIMS:
        raise ValueError(f"IDX needs 1 to {_MAX_HEADER_DIMS} dimensions, got shape {array.shape}")
    header = bytes([0, 0, codes[dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array).astype(IDX_DTYPES[codes[dtype]]).tobytes()
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
            gz.write(payload)
        payload = buffer.getvalue()
    path.write_bytes(payload)
