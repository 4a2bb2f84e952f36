"""Tests for minivae.data.mnist: IDX parsing, the cache, checksums and the offline message.

No test touches the network: ``minivae.data.mnist._fetch`` is replaced wherever a download happens.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.error

import numpy as np
import pytest

from minivae.data import mnist
from minivae.data.mnist import FILES, load_mnist, read_idx, write_idx


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """An IDX file written by hand (independently of write_idx): header, then big-endian data."""
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return header + array.astype(big).tobytes()


def fake_dataset(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_fake_split(folder, split: str, n: int, gz: bool = True, seed: int = 0):
    images, labels = fake_dataset(n, seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part, array in (("images", images), ("labels", labels)):
        name = FILES[(split, part)]
        payload = idx_bytes(array, 0x08)
        if gz:
            (folder / name).write_bytes(gzip.compress(payload))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(payload)
    return images, labels


# ----------------------------------------------------------------------------------------------
# read_idx
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_uint8_images(tmp_path, gz):
    images, _ = fake_dataset(5)
    payload = idx_bytes(images, 0x08)
    path = tmp_path / ("images.gz" if gz else "images")
    path.write_bytes(gzip.compress(payload) if gz else payload)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize(
    "code, dtype",
    [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)],
)
def test_read_idx_dtypes_are_big_endian_in_file_native_out(tmp_path, code, dtype):
    array = (np.arange(-6, 6).reshape(3, 4) * 3).astype(dtype)
    path = tmp_path / "a.idx"
    path.write_bytes(idx_bytes(array, code))
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = tmp_path / "labels.idx"  # no .gz suffix, but gzipped
    path.write_bytes(gzip.compress(idx_bytes(labels, 0x08)))
    np.testing.assert_array_equal(read_idx(path), labels)


def test_write_idx_roundtrip(tmp_path):
    array = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    for name in ("a.gz", "a"):
        write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)
    # the raw file is byte for byte what the format specifies
    assert (tmp_path / "a").read_bytes() == idx_bytes(array, 0x0D)
    with pytest.raises(TypeError, match="IDX stores"):
        write_idx(tmp_path / "b", np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_truncated(tmp_path, gz):
    payload = idx_bytes(fake_dataset(4)[0], 0x08)[:-10]
    path = tmp_path / "t"
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))  # dims cut off
    with pytest.raises(ValueError, match="truncated.*dimensions"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="truncated.*header"):
        read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(idx_bytes(fake_dataset(20)[0], 0x08))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])  # the gzip stream itself is cut in half
    with pytest.raises(ValueError, match="truncated|corrupt"):
        read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8), 0x08) + b"\x00")
    with pytest.raises(ValueError, match="longer than its header"):
        read_idx(path)


def test_read_idx_wrong_magic(tmp_path):
    path = tmp_path / "m"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 0]))
    with pytest.raises(ValueError, match="0 dimensions"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nothing.gz")


# ----------------------------------------------------------------------------------------------
# load_mnist from a cache folder
# ----------------------------------------------------------------------------------------------


def no_network(url, timeout=30.0):
    raise AssertionError(f"the test tried to download {url}")


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_cache(tmp_path, monkeypatch, gz):
    monkeypatch.setattr(mnist, "_fetch", no_network)
    images, labels = write_fake_split(tmp_path, "test", 7, gz=gz)
    x, y = load_mnist("mnist", "test", cache_dir=tmp_path)
    assert x.shape == (7, 784) and x.dtype == np.float32
    assert y.shape == (7,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x, images.reshape(7, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_default_cache_honours_env(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_fetch", no_network)
    monkeypatch.setenv("MINIVAE_CACHE", str(tmp_path))
    assert mnist.default_cache_dir("fashion") == tmp_path / "fashion"
    _, labels = write_fake_split(tmp_path / "fashion", "train", 3)
    _, y = load_mnist("fashion", "train")
    np.testing.assert_array_equal(y, labels)
    monkeypatch.delenv("MINIVAE_CACHE")
    assert mnist.default_cache_dir().parts[-2:] == (".minivae-cache", "mnist")


def test_load_mnist_mismatched_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_fetch", no_network)
    write_fake_split(tmp_path, "test", 5)
    (tmp_path / FILES[("test", "labels")]).write_bytes(
        gzip.compress(idx_bytes(np.zeros(4, dtype=np.uint8), 0x08))
    )
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        load_mnist("mnist", "test", cache_dir=tmp_path)


def test_load_mnist_wrong_image_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_fetch", no_network)
    write_fake_split(tmp_path, "test", 2)
    (tmp_path / FILES[("test", "images")]).write_bytes(
        gzip.compress(idx_bytes(np.zeros((2, 8, 8), dtype=np.uint8), 0x08))
    )
    with pytest.raises(ValueError, match=r"\(n, 28, 28\).*\(2, 8, 8\)"):
        load_mnist("mnist", "test", cache_dir=tmp_path)


def test_load_mnist_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="kind must be 'mnist' or 'fashion'"):
        load_mnist("kmnist", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist("mnist", "valid", cache_dir=tmp_path)
    with pytest.raises(TypeError, match="download"):
        load_mnist("mnist", "test", cache_dir=tmp_path, download="no")


def test_load_mnist_download_false_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_fetch", no_network)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("fashion", "test", cache_dir=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "t10k-images-idx3-ubyte.gz" in message and "MINIVAE_CACHE" in message


# ----------------------------------------------------------------------------------------------
# downloads (with a fake _fetch)
# ----------------------------------------------------------------------------------------------


def serve(files: dict[str, bytes], calls: list[str]):
    def fetch(url, timeout=30.0):
        calls.append(url)
        return files[url.rsplit("/", 1)[1]]

    return fetch


def test_download_once_then_cached(tmp_path, monkeypatch):
    images, labels = fake_dataset(6)
    served = {
        FILES[("test", "images")]: gzip.compress(idx_bytes(images, 0x08)),
        FILES[("test", "labels")]: gzip.compress(idx_bytes(labels, 0x08)),
    }
    # publish our fake files' checksums in place of the real ones
    fake_md5 = {name: hashlib.md5(blob).hexdigest() for name, blob in served.items()}
    monkeypatch.setitem(mnist.MD5, "mnist", fake_md5)
    calls: list[str] = []
    monkeypatch.setattr(mnist, "_fetch", serve(served, calls))
    folder = tmp_path / "new" / "mnist"  # created on demand
    x, y = load_mnist("mnist", "test", cache_dir=folder)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_allclose(x * 255.0, images.reshape(6, -1), atol=1e-4)
    assert len(calls) == 2 and calls[0].startswith(mnist.MIRRORS["mnist"][0])
    assert sorted(p.name for p in folder.iterdir()) == sorted(served)  # no .part left over
    load_mnist("mnist", "test", cache_dir=folder)
    assert len(calls) == 2  # the second load reads the cache


def test_checksum_mismatch_is_not_kept(tmp_path, monkeypatch):
    images, labels = fake_dataset(2)
    served = {
        FILES[("test", "images")]: gzip.compress(idx_bytes(images, 0x08)),
        FILES[("test", "labels")]: gzip.compress(idx_bytes(labels, 0x08)),
    }
    calls: list[str] = []
    monkeypatch.setattr(mnist, "_fetch", serve(served, calls))  # the real MD5s will not match
    with pytest.raises(ValueError, match="checksum") as info:
        load_mnist("mnist", "test", cache_dir=tmp_path)
    assert mnist.MD5["mnist"][FILES[("test", "images")]] in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing kept
    assert len(calls) == len(mnist.MIRRORS["mnist"])  # every mirror was tried


def test_second_mirror_used_when_first_fails(tmp_path, monkeypatch):
    labels = np.arange(3, dtype=np.uint8)
    blob = gzip.compress(idx_bytes(labels, 0x08))
    name = FILES[("test", "labels")]
    monkeypatch.setitem(
        mnist.MD5, "mnist", {**mnist.MD5["mnist"], name: hashlib.md5(blob).hexdigest()}
    )
    monkeypatch.setitem(
        mnist.MIRRORS, "mnist", ["https://first.invalid/", "https://second.invalid/"]
    )

    def fetch(url, timeout=30.0):
        if url.startswith("https://first"):
            raise urllib.error.URLError("connection refused")
        return blob

    monkeypatch.setattr(mnist, "_fetch", fetch)
    dest = tmp_path / name
    mnist._download("mnist", name, dest)
    np.testing.assert_array_equal(read_idx(dest), labels)


def test_offline_message(tmp_path, monkeypatch):
    def offline(url, timeout=30.0):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mnist, "_fetch", offline)
    with pytest.raises(ConnectionError) as info:
        load_mnist("fashion", "train", cache_dir=tmp_path)
    message = str(info.value)
    assert "offline" in message
    assert f"Put the four files in {tmp_path}" in message
    assert "train-images-idx3-ubyte.gz" in message and "fashion-mnist" in message
    assert list(tmp_path.iterdir()) == []
