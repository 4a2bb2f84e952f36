"""Checkpoints: bit-identical round trips; damaged or foreign files refused with a ValueError.

Round trips run on every backend (see conftest.py): a model saved from the backend and loaded
back onto it (``load(path, backend=...)``) computes bit-identical numbers, and the file is the
same whatever backend wrote it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from minivae import VAE, Autoencoder, backend, load, save


def _models(backend_name: str = "numpy"):
    return [
        VAE(6, 2, (5,), "bernoulli", beta=2.0, seed=1, backend=backend_name),
        VAE(6, 2, (5,), "gaussian", obs_var=0.3, activation="tanh", seed=2, backend=backend_name),
        VAE(6, 3, (5, 4), "gaussian_learned", dtype="float64", seed=3, backend=backend_name),
        Autoencoder(6, 2, (5,), "mse", seed=4, backend=backend_name),
        Autoencoder(6, 2, (), "bernoulli", dtype="float64", seed=5, backend=backend_name),
    ]


@pytest.mark.parametrize("index", range(5), ids=["bern", "gauss", "learned", "ae-mse", "ae-bern"])
def test_round_trip_is_bit_identical(tmp_path, index, backend_name, xp, to_xp, to_numpy):
    model = _models(backend_name)[index]
    model.params.flat[...] += 0.01 * xp.arange(model.n_params())  # not the seed's weights
    x = to_xp(np.random.default_rng(0).random((4, 6)))
    path = save(model, tmp_path / "model")
    assert path.endswith(".npz")
    loaded = load(path, backend=backend_name)
    assert type(loaded) is type(model) and loaded.config() == model.config()
    assert loaded.xp is xp and backend.array_module(loaded.params.flat) is xp
    np.testing.assert_array_equal(to_numpy(loaded.params.flat), to_numpy(model.params.flat))
    assert loaded.params.dtype == model.params.dtype
    np.testing.assert_array_equal(to_numpy(loaded.reconstruct(x)), to_numpy(model.reconstruct(x)))
    if isinstance(model, VAE):
        assert loaded.beta == model.beta
        eps = to_xp(np.random.default_rng(1).standard_normal((4, model.z_dim)))
        assert loaded.loss(x, eps) == model.loss(x, eps), "loss differs after a round trip"
        _, g1 = model.loss_and_grads(x, eps)
        _, g2 = loaded.loss_and_grads(x, eps)
        np.testing.assert_array_equal(to_numpy(g1.flat), to_numpy(g2.flat))
        ll1 = model.log_likelihood(x, k=4, rng=np.random.default_rng(2))
        ll2 = loaded.log_likelihood(x, k=4, rng=np.random.default_rng(2))
        np.testing.assert_array_equal(to_numpy(ll1), to_numpy(ll2))
    else:
        assert loaded.loss(x) == model.loss(x)
    # the file does not depend on the backend that wrote it: load it anywhere
    on_numpy = load(path, backend="numpy")
    assert on_numpy.xp is np
    np.testing.assert_array_equal(on_numpy.params.flat, to_numpy(model.params.flat))
    resaved = save(on_numpy, tmp_path / "again.npz")
    with np.load(path) as first, np.load(resaved) as second:
        assert first.files == second.files
        for key in first.files:
            np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_load_onto_the_default_backend(tmp_path, backend_name, xp):
    path = save(VAE(6, 2, (5,), seed=0), tmp_path / "m.npz")
    try:
        backend.use(backend_name)
        assert load(path).xp is xp, "load() without backend= must use backend.use()'s default"
    finally:
        backend.use("numpy")


def test_beta_changed_after_construction_is_saved(tmp_path, backend_name):
    model = VAE(6, 2, (5,), seed=0, backend=backend_name)
    model.beta = 4.0
    assert load(save(model, tmp_path / "m.npz"), backend=backend_name).beta == 4.0


def test_load_uses_allow_pickle_false(tmp_path, monkeypatch):
    path = save(VAE(6, 2, (5,), seed=0), tmp_path / "m.npz")
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    load(path)
    assert calls == [False], f"checkpoint.load must call np.load(allow_pickle=False), got {calls}"


@pytest.fixture
def saved(tmp_path):
    path = save(VAE(6, 2, (5,), seed=0), tmp_path / "good.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    return tmp_path, path, arrays


def _write(tmp_path, name, arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_corrupt_file(saved):
    tmp_path, path, _ = saved
    raw = bytearray(open(path, "rb").read())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(b ^ 0xFF for b in raw[middle : middle + 64])
    (tmp_path / "corrupt.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt.npz.*damaged or unreadable"):
        load(tmp_path / "corrupt.npz")
    (tmp_path / "truncated.npz").write_bytes(bytes(raw[: len(raw) // 3]))
    with pytest.raises(ValueError, match="truncated.npz is not a minivae checkpoint"):
        load(tmp_path / "truncated.npz")


def test_non_npz_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, not an archive")
    with pytest.raises(ValueError, match="notes.txt is not a minivae checkpoint.*neither an .npz"):
        load(tmp_path / "notes.txt")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="holds a single array, not a minivae checkpoint"):
        load(tmp_path / "single.npy")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_pickled_object_arrays_are_refused(saved):
    tmp_path, _, arrays = saved
    evil = dict(arrays)
    evil["param/encoder.W0"] = np.array([{"code": "anything"}], dtype=object)
    with pytest.raises(ValueError, match="'param/encoder.W0' holds pickled Python objects"):
        load(_write(tmp_path, "evil.npz", evil))
    evil = dict(arrays)
    evil["config"] = np.array([{"format": "minivae-checkpoint-1"}], dtype=object)
    with pytest.raises(ValueError, match="'config' holds pickled Python objects"):
        load(_write(tmp_path, "evil_config.npz", evil))


def test_wrong_shapes_dtypes_and_names(saved, backend_name):  # checked while loading onto it
    tmp_path, _, arrays = saved
    bad = dict(arrays, **{"param/encoder.W0": np.zeros((3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"'encoder.W0' has shape \(3, 3\), the configuration "
                                         r"needs \(6, 5\)"):
        load(_write(tmp_path, "shape.npz", bad), backend=backend_name)
    bad = dict(arrays, **{"param/encoder.b0": np.zeros(5, np.float64)})
    with pytest.raises(ValueError, match="'encoder.b0' is float64, expected float32"):
        load(_write(tmp_path, "dtype.npz", bad), backend=backend_name)
    bad = dict(arrays, **{"param/encoder.b0": np.full(5, np.nan, np.float32)})
    with pytest.raises(ValueError, match="'encoder.b0': the new value contains NaN"):
        load(_write(tmp_path, "nan.npz", bad), backend=backend_name)
    bad = {k: v for k, v in arrays.items() if k != "param/decoder.b1"}
    with pytest.raises(ValueError, match="do not match the model's"):
        load(_write(tmp_path, "missing_param.npz", bad), backend=backend_name)


def test_bad_config(saved):
    tmp_path, _, arrays = saved
    with pytest.raises(ValueError, match="it has no 'config' entry"):
        load(_write(tmp_path, "no_config.npz", {k: v for k, v in arrays.items() if k != "config"}))
    meta = json.loads(str(arrays["config"]))

    def with_meta(name, new_meta):
        return _write(tmp_path, name, dict(arrays, config=np.array(json.dumps(new_meta))))

    with pytest.raises(ValueError, match="'config' entry has no model configuration"):
        load(with_meta("no_model_config.npz", {k: v for k, v in meta.items() if k != "config"}))
    with pytest.raises(ValueError, match="unknown checkpoint format"):
        load(with_meta("format.npz", dict(meta, format="other-1")))
    with pytest.raises(ValueError, match="unknown model class"):
        load(with_meta("class.npz", dict(meta, config=dict(meta["config"], **{"class": "GAN"}))))
    with pytest.raises(ValueError, match=r"configuration .* is invalid \(z_dim must be >= 1"):
        load(with_meta("zdim.npz", dict(meta, config=dict(meta["config"], z_dim=0))))
    with pytest.raises(ValueError, match="is invalid.*unexpected keyword argument 'bogus'"):
        load(with_meta("extra.npz", dict(meta, config=dict(meta["config"], bogus=1))))
    with pytest.raises(ValueError, match="config is not valid JSON"):
        load(_write(tmp_path, "json.npz", dict(arrays, config=np.array("{not json"))))


def test_bad_stored_beta(saved):
    tmp_path, _, arrays = saved
    meta = json.loads(str(arrays["config"]))
    for name, beta, message in [
        ("negative.npz", -1.0, r"beta must be >= 0.0, got -1.0"),
        ("nan.npz", float("nan"), "beta must be finite"),
        ("text.npz", "high", "beta must be a real number"),
    ]:
        config = np.array(json.dumps(dict(meta, beta=beta)))
        path = _write(tmp_path, name, dict(arrays, config=config))
        with pytest.raises(ValueError, match=rf"the stored beta is invalid \({message}"):
            load(path)
