"""Checkpoints: the same model back (parameters, regularizer, generator), written atomically,
and damaged, foreign or oversized files refused with a ValueError that names the file and entry.

Round trips run on every backend (see conftest.py): a model saved from the backend and loaded
back onto it computes bit-identical numbers, and its parameters and configuration are stored the
same whatever backend wrote them. Every model of ``minivae.models.MODELS`` is round-tripped with
every regularizer, so a model a later chapter registers is covered as soon as it is registered.

Refused or damaged inputs covered here (45): a corrupt and a truncated file; 3 files that are not
checkpoints; 2 pickled object arrays; 4 wrong names/shapes/dtypes/NaN values; 9 bad
configurations; 10 bad stored states; 5 oversized configurations or headers (and the raised
limit); 3 models refused at save (2 unstorable regularizers, NaN parameters); 4 failures
mid-save (an exception, KeyboardInterrupt, fsync, rename) and the SIGKILL loop; 2 version-1
files. The rest of the bad inputs of issue 15 are the table in test_bad_input.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import minivae
from minivae import VAE, Autoencoder, backend, checkpoint, load, save
from minivae.models import MODELS
from minivae.regularizers import Capacity, FreeBits, beta_kl

REPO = Path(__file__).resolve().parents[2]


def _models(backend_name: str = "numpy"):
    return [
        VAE(6, 2, (5,), "bernoulli", beta=2.0, seed=1, backend=backend_name),
        VAE(6, 2, (5,), "gaussian", obs_var=0.3, activation="tanh", seed=2, backend=backend_name),
        VAE(6, 3, (5, 4), "gaussian_learned", dtype="float64", seed=3, backend=backend_name),
        Autoencoder(6, 2, (5,), "mse", seed=4, backend=backend_name),
        Autoencoder(6, 2, (), "bernoulli", dtype="float64", seed=5, backend=backend_name),
    ]


def _meta(path) -> dict:
    with np.load(path) as f:
        return json.loads(str(f["config"]))


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
    # the parameters and configuration do not depend on the backend that wrote them: load the
    # file anywhere (only the generator state differs: a device generator's cannot be stored)
    on_numpy = load(path, backend="numpy")
    assert on_numpy.xp is np
    np.testing.assert_array_equal(on_numpy.params.flat, to_numpy(model.params.flat))
    resaved = save(on_numpy, tmp_path / "again.npz")
    with np.load(path) as first, np.load(resaved) as second:
        assert first.files == second.files
        for key in first.files:
            if key != "config":
                np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    meta, again = _meta(path), _meta(resaved)
    assert meta["format"] == again["format"] == "minivae-checkpoint-2"
    assert meta["config"] == again["config"]
    assert {k: v for k, v in meta["state"].items() if k != "rng"} == \
        {k: v for k, v in again["state"].items() if k != "rng"}
    assert (meta["state"]["rng"] is None) == (backend_name != "numpy")


# ------------------------------------------------------------------------------------------
# Every registered model, every regularizer
# ------------------------------------------------------------------------------------------

#: Small constructor arguments for each class of MODELS. A model a chapter adds must be added
#: here: the test fails, naming it, until it is.
SMALL_ARGS = {
    "VAE": dict(x_dim=6, z_dim=2, hidden=(5,), likelihood="bernoulli"),
    "Autoencoder": dict(x_dim=6, z_dim=2, hidden=(5,), loss="mse"),
    "VQVAE": dict(x_dim=6, n_codes=4, z_dim=4, positions=2, hidden=(5,)),
    "CVAE": dict(x_dim=6, z_dim=2, hidden=(5,), n_classes=3),
    "M2": dict(x_dim=6, z_dim=2, hidden=(5,), n_classes=3, classifier_hidden=(4,)),
    "Classifier": dict(x_dim=6, n_classes=3, hidden=(5,)),
    "FlowVAE": dict(x_dim=6, z_dim=2, n_flows=2, hidden=(5,)),
    "IWAE": dict(x_dim=6, z_dim=2, k=3, hidden=(5,)),
    "CodePrior": dict(positions=2, n_codes=3, hidden=5),
}


def _one_hot_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """n rows of 2 one-hot blocks of 3 (CodePrior's data): (n, 6) float32."""
    return np.eye(3, dtype=np.float32)[rng.integers(0, 3, (n, 2))].reshape(n, 6)


#: Data (n, 6) for a model that takes something else than numbers in [0, 1].
DATA = {"CodePrior": _one_hot_codes}

REGULARIZERS = {
    "beta_kl": lambda: beta_kl,
    "free_bits": lambda: FreeBits(0.3),
    "capacity": lambda: Capacity(1.5),
}


def _small(name: str, **kwargs):
    if name not in SMALL_ARGS:
        pytest.fail(
            f"model class {name!r} is registered in minivae.models.MODELS but has no entry in "
            f"SMALL_ARGS of {__file__}: add its small constructor arguments there, so that its "
            "checkpoint round trip is tested"
        )
    return MODELS[name](**SMALL_ARGS[name], seed=3, **kwargs)


def _batch_args(model, n: int) -> dict:
    """labels= for a model that takes them (one per row, every class used)."""
    if not model.takes_labels:
        return {}
    return {"labels": np.arange(n) % int(model.n_classes)}


@pytest.mark.parametrize("regularizer", sorted(REGULARIZERS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_and_regularizer_round_trips(tmp_path, name, regularizer):
    model = _small(name)
    has_regularizer = hasattr(model, "regularizer")
    if regularizer != "beta_kl" and not has_regularizer:
        pytest.skip(f"{name} has no regularizer to set")
    rng = np.random.default_rng(0)
    model.params.flat[...] += 0.05 * rng.standard_normal(model.n_params()).astype(model.dtype)
    data = DATA.get(name, lambda rng, n: rng.random((n, 6)))
    x = data(rng, 4).astype(model.dtype)
    labels = _batch_args(model, 4)
    if has_regularizer:
        model.regularizer = REGULARIZERS[regularizer]()
        try:
            model.loss(x, **labels)
        except TypeError as err:  # e.g. the IWAE: a per-latent KL has no meaning in its bound
            pytest.skip(f"{name} refuses the {regularizer} regularizer: {err}")
    if hasattr(model, "beta"):
        model.beta = 0.7  # set after construction: only the state holds it
    fit_labels = _batch_args(model, 8)
    minivae.fit(model, data(rng, 8).astype(model.dtype), epochs=1, batch_size=4, progress=False,
                **fit_labels)  # the generator and the weights move on from their seed
    path = save(model, tmp_path / f"{name}.npz")
    loaded = load(path)

    assert type(loaded) is type(model) and loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.params.flat, model.params.flat)
    assert loaded.state() == model.state(), "the state (generator, beta, regularizer) differs"
    if has_regularizer:
        assert repr(loaded.regularizer) == repr(model.regularizer)
    eps = model.draw_eps(4, np.random.default_rng(1))
    assert loaded.loss(x, eps, **labels) == model.loss(x, eps, **labels)
    _, grads = model.loss_and_grads(x, eps, **labels)
    expected = grads.flat.copy()
    np.testing.assert_array_equal(loaded.loss_and_grads(x, eps, **labels)[1].flat, expected)
    # the generator continues where the saved model's would have: same next draws
    if hasattr(model, "sample"):  # a model that takes labels samples one image per label
        count = np.array([0, 1, 2, 1]) if model.takes_labels else 5
        np.testing.assert_array_equal(loaded.sample(count), model.sample(count))
    np.testing.assert_array_equal(loaded.rng.standard_normal(7), model.rng.standard_normal(7))


def test_a_regularizer_is_not_silently_dropped(tmp_path):
    # the case: a FreeBits model loaded back with the plain beta * KL and another loss
    rng = np.random.default_rng(0)
    x, eps = rng.random((4, 6)).astype(np.float32), rng.standard_normal((4, 2))
    model = VAE(6, 2, (5,), seed=0)
    plain = model.loss(x, eps)["loss"]
    model.regularizer = FreeBits(2.0)
    assert model.loss(x, eps)["loss"] != plain, "the test needs a regularizer that matters here"
    loaded = load(save(model, tmp_path / "fb.npz"))
    assert isinstance(loaded.regularizer, FreeBits) and loaded.regularizer.lam == 2.0
    assert loaded.loss(x, eps)["loss"] == model.loss(x, eps)["loss"]
    cap = Capacity(3.0)
    model.regularizer = cap
    cap.capacity = 4.5  # changed after it was set, as capacity_schedule does
    assert load(save(model, tmp_path / "cap.npz")).regularizer.capacity == 4.5


def test_an_unknown_regularizer_is_refused_at_save(tmp_path):
    model = VAE(6, 2, (5,), seed=0)
    target = tmp_path / "m.npz"

    class MyFreeBits(FreeBits):  # a subclass would load back as a FreeBits: refused too
        pass

    for custom in (lambda kl, beta: (float(kl.sum()), beta + 0 * kl), MyFreeBits(0.2)):
        model.regularizer = custom
        with pytest.raises(TypeError, match="regularizer .* cannot be stored: a checkpoint stores "
                                            "beta_kl, FreeBits or Capacity"):
            save(model, target)
        assert not target.exists() and not list(tmp_path.iterdir()), "nothing may be written"


def test_generator_state_on_a_device_backend(tmp_path, device_backend_name, to_numpy):
    # a device generator's state cannot be read: the file stores none, and the loaded model
    # draws what a new model with the same seed draws first (documented in checkpoint.py)
    model = VAE(6, 2, (5,), seed=4, backend=device_backend_name)
    model.sample(3)  # move the generator on
    loaded = load(save(model, tmp_path / "m.npz"), backend=device_backend_name)
    assert _meta(tmp_path / "m.npz")["state"]["rng"] is None
    fresh = VAE(6, 2, (5,), seed=4, backend=device_backend_name)
    np.testing.assert_array_equal(to_numpy(loaded.sample(3)), to_numpy(fresh.sample(3)))
    # a NumPy model's generator state is not forced onto a device model either
    host = VAE(6, 2, (5,), seed=4)
    host.sample(3)
    on_device = load(save(host, tmp_path / "h.npz"), backend=device_backend_name)
    fresh = VAE(6, 2, (5,), seed=4, backend=device_backend_name)
    np.testing.assert_array_equal(to_numpy(on_device.sample(3)), to_numpy(fresh.sample(3)))


def test_numpy_generators_of_other_kinds_round_trip(tmp_path):
    model = VAE(6, 2, (5,), seed=0)
    for bit_generator in (np.random.MT19937(5), np.random.Philox(5), np.random.SFC64(5)):
        model.rng = np.random.Generator(bit_generator)
        model.rng.random(3)
        loaded = load(save(model, tmp_path / "m.npz"))
        np.testing.assert_array_equal(loaded.sample(4), model.sample(4))


# ------------------------------------------------------------------------------------------
# Old files
# ------------------------------------------------------------------------------------------


def _write_v1(path, model) -> None:
    """A checkpoint written the way minivae-checkpoint-1 did (the code before format 2)."""
    arrays = {f"param/{name}": backend.to_numpy(value) for name, value in model.params.items()}
    meta = {"format": "minivae-checkpoint-1", "config": model.config(),
            "beta": getattr(model, "beta", None)}
    np.savez(path, config=np.array(json.dumps(meta)), **arrays)


@pytest.mark.parametrize("make", [lambda: VAE(6, 2, (5,), "gaussian", seed=2),
                                  lambda: Autoencoder(6, 2, (5,), seed=1)], ids=["vae", "ae"])
def test_version_1_files_still_load_with_a_warning(tmp_path, make):
    model = make()
    model.params.flat[...] += 0.01
    if isinstance(model, VAE):
        model.beta = 3.0
    _write_v1(tmp_path / "old.npz", model)
    with pytest.warns(UserWarning, match=r"old.npz is a version-1 checkpoint: it stores no "
                                         r"regularizer .* save it again to upgrade"):
        loaded = load(tmp_path / "old.npz")
    np.testing.assert_array_equal(loaded.params.flat, model.params.flat)
    x = np.random.default_rng(0).random((3, 6)).astype(np.float32)
    if isinstance(model, VAE):
        assert loaded.beta == 3.0 and loaded.regularizer is beta_kl
        eps = np.random.default_rng(1).standard_normal((3, 2))
        assert loaded.loss(x, eps) == model.loss(x, eps)
    else:
        assert loaded.loss(x) == model.loss(x)
    save(loaded, tmp_path / "old.npz")  # upgraded: no warning any more
    assert _meta(tmp_path / "old.npz")["format"] == "minivae-checkpoint-2"


# ------------------------------------------------------------------------------------------
# Atomic saves
# ------------------------------------------------------------------------------------------


def _constant_model(value: float) -> VAE:
    model = VAE(6, 2, (5,), seed=0)
    model.params.flat[...] = value
    return model


def _assert_holds(path, value: float) -> None:
    loaded = load(path)
    assert np.all(loaded.params.flat == value), "the previous checkpoint was damaged"


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()],
                         ids=["exception", "keyboard-interrupt"])
def test_an_exception_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    path = tmp_path / "m.npz"
    save(_constant_model(1.0), path)
    real_write = np.lib.format.write_array
    calls = []

    def write_two_then_fail(*args, **kwargs):  # the case: a zip with 2 parameters
        calls.append(1)
        if len(calls) > 3:  # config + 2 parameters written, then the failure
            raise failure
        return real_write(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_two_then_fail)
    with pytest.raises(type(failure)):
        save(_constant_model(2.0), path)
    assert len(calls) == 4, "the failure must land mid-save"
    monkeypatch.undo()
    _assert_holds(path, 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"], "a stray temporary file"


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failing_fsync_or_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch, step):
    path = tmp_path / "m.npz"
    save(_constant_model(1.0), path)

    def fail(*args, **kwargs):
        raise OSError(f"{step} failed")

    monkeypatch.setattr(os, step, fail)
    with pytest.raises(OSError, match=f"{step} failed"):
        save(_constant_model(2.0), path)
    monkeypatch.undo()
    _assert_holds(path, 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_save_refuses_what_could_not_be_loaded_back(tmp_path):
    model = _constant_model(1.0)
    model.params.flat[3] = np.nan
    with pytest.raises(ValueError, match=r"parameters \['encoder.W0'\] hold NaN or inf"):
        save(model, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_file_mode_follows_the_umask(tmp_path):
    path = save(_constant_model(1.0), tmp_path / "m.npz")
    if os.name == "posix":
        umask = os.umask(0)
        os.umask(umask)
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


_SAVING_LOOP = """
import sys
from minivae import VAE, save
model = VAE(784, 20, (512,), seed=0)  # 3.2 MB a file
step = 0
while True:
    model.params.flat[...] = step  # every value is the step: a torn file would show it
    save(model, sys.argv[1])
    if step == 0:
        print("saved", flush=True)
    step += 1
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkill_during_saves_keeps_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "m.npz"
    save(_constant_model(-1.0), path)
    rng = np.random.default_rng(0)
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    kills, mid_save, steps = 0, 0, []
    # at least 8 kills, and on until 3 of them have landed while a file was being written
    while kills < 8 or (mid_save < 3 and kills < 30):
        child = subprocess.Popen([sys.executable, "-c", _SAVING_LOOP, str(path)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "saved", "the saving child did not start"
        time.sleep(rng.uniform(0.0, 0.25))  # somewhere in the loop of saves
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        kills += 1
        temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        mid_save += bool(temps)  # killed while a temporary file was being written
        for p in temps:
            p.unlink()
        loaded = load(path)  # must always load: the previous complete checkpoint
        value = float(loaded.params.flat[0])
        assert np.all(loaded.params.flat == value), "a torn checkpoint"
        steps.append(int(value))
    print(f"{kills} SIGKILLs, {mid_save} of them mid-save; the step loaded back after each: "
          f"{steps}")
    assert mid_save >= 3, f"only {mid_save} of {kills} kills landed during a write"


# ------------------------------------------------------------------------------------------
# Refused files
# ------------------------------------------------------------------------------------------


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
    evil["config"] = np.array([{"format": "minivae-checkpoint-2"}], dtype=object)
    with pytest.raises(ValueError, match="'config' holds pickled Python objects"):
        load(_write(tmp_path, "evil_config.npz", evil))


def test_wrong_shapes_dtypes_and_names(saved, backend_name):  # checked while loading onto it
    tmp_path, _, arrays = saved
    bad = dict(arrays, **{"param/encoder.W0": np.zeros((3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"shape.npz: parameter 'encoder.W0' has shape \(3, 3\), "
                                         r"the configuration needs \(6, 5\)"):
        load(_write(tmp_path, "shape.npz", bad), backend=backend_name)
    bad = dict(arrays, **{"param/encoder.b0": np.zeros(5, np.float64)})
    with pytest.raises(ValueError, match="dtype.npz: parameter 'encoder.b0' is float64, "
                                         "expected float32"):
        load(_write(tmp_path, "dtype.npz", bad), backend=backend_name)
    bad = dict(arrays, **{"param/encoder.b0": np.full(5, np.nan, np.float32)})
    with pytest.raises(ValueError, match="nan.npz: parameter 'encoder.b0': the new value "
                                         "contains NaN"):
        load(_write(tmp_path, "nan.npz", bad), backend=backend_name)
    bad = {k: v for k, v in arrays.items() if k != "param/decoder.b1"}
    with pytest.raises(ValueError, match="missing_param.npz: parameters .* do not match the "
                                         "model's"):
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
    with pytest.raises(ValueError, match="unknown checkpoint format 'other-1', expected "
                                         "'minivae-checkpoint-2'"):
        load(with_meta("format.npz", dict(meta, format="other-1")))
    with pytest.raises(ValueError, match="unknown model class 'GAN'"):
        load(with_meta("class.npz", dict(meta, config=dict(meta["config"], **{"class": "GAN"}))))
    with pytest.raises(ValueError, match=r"configuration .* is invalid \(z_dim must be >= 1"):
        load(with_meta("zdim.npz", dict(meta, config=dict(meta["config"], z_dim=0))))
    with pytest.raises(ValueError, match="is invalid.*unexpected keyword argument 'bogus'"):
        load(with_meta("extra.npz", dict(meta, config=dict(meta["config"], bogus=1))))
    with pytest.raises(ValueError, match="config is not valid JSON"):
        load(_write(tmp_path, "json.npz", dict(arrays, config=np.array("{not json"))))
    with pytest.raises(ValueError, match=r"'config' must be one JSON string .* got an array of "
                                         r"shape \(3,\) and dtype float64"):
        load(_write(tmp_path, "numbers.npz", dict(arrays, config=np.zeros(3))))
    with pytest.raises(ValueError, match="'state' entry is missing"):
        load(with_meta("no_state.npz", {k: v for k, v in meta.items() if k != "state"}))


def test_bad_stored_state(saved):
    tmp_path, _, arrays = saved
    meta = json.loads(str(arrays["config"]))

    def with_state(name, **changes):
        config = np.array(json.dumps(dict(meta, state=dict(meta["state"], **changes))))
        return _write(tmp_path, name, dict(arrays, config=config))

    for name, changes, message in [
        ("negative.npz", {"beta": -1.0}, r"beta must be >= 0.0, got -1.0"),
        ("text.npz", {"beta": "high"}, "beta must be a real number, got 'high'"),
        ("lam.npz", {"regularizer": {"name": "FreeBits", "lam": -2}},
         r"lam \(the free bits per latent, in nats\) must be >= 0.0, got -2.0"),
        ("reg.npz", {"regularizer": {"name": "Cyclic"}}, "unknown regularizer 'Cyclic'"),
        ("regkey.npz", {"regularizer": {"name": "Capacity", "gamma": 1}},
         r"the Capacity regularizer takes \['capacity'\], got unknown keys \['gamma'\]"),
        ("rng.npz", {"rng": {"bit_generator": "os.system"}},
         "the stored generator state names bit generator 'os.system'"),
        ("rngstate.npz", {"rng": {"bit_generator": "PCG64", "state": 3}},
         "the stored PCG64 generator state is invalid"),
        ("key.npz", {"temperature": 0.5}, "VAE has no state 'temperature'"),
    ]:
        with pytest.raises(ValueError, match=rf"{name}: the stored state is invalid \({message}"):
            load(with_state(name, **changes))
    bad = dict(meta, state=dict(meta["state"], beta=float("nan")))
    path = _write(tmp_path, "nan.npz", dict(arrays, config=np.array(json.dumps(bad))))
    with pytest.raises(ValueError, match="beta must be finite, got nan"):  # JSON's NaN extension
        load(path)
    ae = Autoencoder(6, 2, (5,), seed=0)
    ae_path = save(ae, tmp_path / "ae.npz")
    ae_meta = _meta(ae_path)
    with np.load(ae_path) as f:
        ae_arrays = {k: f[k] for k in f.files}
    ae_meta["state"]["beta"] = 1.0
    with pytest.raises(ValueError, match="Autoencoder has no state 'beta'"):
        load(_write(tmp_path, "ae_beta.npz", dict(ae_arrays, config=np.array(json.dumps(ae_meta)))))


# ------------------------------------------------------------------------------------------
# Oversized configurations: refused from the headers, before allocating
# ------------------------------------------------------------------------------------------


def _refusal_cost(path) -> tuple[str, float, int]:
    """(message, seconds, peak bytes traced) of a load that must be refused."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError) as info:
            load(path)
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return str(info.value), seconds, peak


def test_a_small_file_asking_for_huge_layers_is_refused_without_allocating(saved):
    tmp_path, _, arrays = saved
    meta = json.loads(str(arrays["config"]))
    # the case: a few-KB file whose configuration asks for 4000 x 4000 layers
    # (56 million parameters, 224 MB in float32, under the size limit: the headers refuse it)
    big = dict(meta, config=dict(meta["config"], x_dim=4000, hidden=[4000], z_dim=2000))
    path = _write(tmp_path, "big.npz", dict(arrays, config=np.array(json.dumps(big))))
    size_kb = os.path.getsize(path) / 1024
    message, seconds, peak = _refusal_cost(path)
    print(f"{size_kb:.1f} KB file asking for 4000 x 4000 layers: refused in "
          f"{seconds * 1e3:.1f} ms, peak {peak / 2**20:.2f} MiB traced")
    assert size_kb < 10
    assert "big.npz: parameter 'encoder.W0' has shape (6, 5), the configuration needs " \
           "(4000, 4000)" in message
    assert seconds < 0.5 and peak < 2**20, (seconds, peak)  # the old load: 1.7 s, ~380 MiB
    # above the limit: refused by the limit, whatever the arrays
    huge = dict(meta, config=dict(meta["config"], x_dim=100_000, hidden=[1000]))
    path = _write(tmp_path, "huge.npz", dict(arrays, config=np.array(json.dumps(huge))))
    message, seconds, peak = _refusal_cost(path)
    n_huge = 100_000 * 1000 * 2 + 1000 * 4 + 2 * 1000 + 1000 * 2 + 4 + 100_000  # weights, biases
    assert f"huge.npz: the stored configuration asks for {n_huge:,} parameters, more than " \
           "minivae.checkpoint.MAX_PARAMETERS = 100,000,000" in message
    assert seconds < 0.5 and peak < 2**20, (seconds, peak)


def _npy_member(shape: tuple, dtype: str, payload: bytes = b"") -> bytes:
    """The bytes of a .npy file whose header claims ``shape`` (its data may be missing)."""
    import io

    buffer = io.BytesIO()
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + payload


def test_headers_claiming_huge_arrays_are_refused_without_allocating(saved):
    import zipfile

    tmp_path, path, _ = saved
    # a header claiming 10^12 values (4 TB) for one parameter, in a file of a few KB
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(forged, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "param/encoder.W0.npy":
                data = _npy_member((1_000_000, 1_000_000), "<f4", b"\0" * 64)
            dst.writestr(item.filename, data)
    message, seconds, peak = _refusal_cost(forged)
    n_forged = 10**12 + VAE(6, 2, (5,)).n_params() - 6 * 5  # encoder.W0 was (6, 5)
    assert f"forged.npz: its arrays hold {n_forged:,} values, more than " \
           "minivae.checkpoint.MAX_PARAMETERS" in message
    assert seconds < 0.5 and peak < 2**20
    # a config entry claiming a 10^8-character string (400 MB)
    forged = tmp_path / "long_config.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(forged, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.npy":
                data = _npy_member((), "<U100000000")
            dst.writestr(item.filename, data)
    message, seconds, peak = _refusal_cost(forged)
    assert "long_config.npz: entry 'config' must be one JSON string of at most 1,000,000 " \
           "characters" in message
    assert seconds < 0.5 and peak < 2**20


def test_the_limit_can_be_raised_for_a_trusted_file(saved, monkeypatch):
    _, path, _ = saved
    n = VAE(6, 2, (5,)).n_params()
    monkeypatch.setattr(checkpoint, "MAX_PARAMETERS", n - 1)
    with pytest.raises(ValueError, match=f"its arrays hold {n} values, more than .* = {n - 1}"):
        load(path)
    monkeypatch.setattr(checkpoint, "MAX_PARAMETERS", n)
    assert load(path).n_params() == n
