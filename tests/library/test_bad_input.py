"""Bad input is refused at the door with a ValueError or TypeError that says what was expected.

Checks that go through a model run on every backend (see conftest.py), with the bad input given
both as a NumPy array and as an array of the backend: CuPy data must be checked as carefully.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from minivae import VAE, Adam, Autoencoder, fit


@pytest.fixture
def vae(backend_name):
    return VAE(6, 2, (4,), "bernoulli", seed=0, backend=backend_name)


@pytest.fixture
def x():
    return np.random.default_rng(0).random((3, 6)).astype(np.float32)


def _entry_points(model):
    """Every public method that takes a batch x."""
    calls = [model.loss_and_grads, model.loss, model.encode, model.reconstruct]
    if isinstance(model, VAE):
        calls += [model.kl_per_latent, lambda a: model.log_likelihood(a, k=2)]
    return calls


MODELS = [
    lambda backend_name: VAE(6, 2, (4,), "bernoulli", seed=0, backend=backend_name),
    lambda backend_name: VAE(6, 2, (4,), "gaussian_learned", seed=0, backend=backend_name),
    lambda backend_name: Autoencoder(6, 2, (4,), "mse", seed=0, backend=backend_name),
]


@pytest.fixture
def host_and_backend(to_xp):
    """The two ways to hand a model data: as a NumPy array, and as an array of its backend."""
    return [np.asarray, to_xp]


@pytest.mark.parametrize("make", MODELS, ids=["vae-bern", "vae-learned", "ae"])
def test_wrong_shapes_are_refused_everywhere(make, x, backend_name, host_and_backend):
    model = make(backend_name)
    for put, call in itertools.product(host_and_backend, _entry_points(model)):
        msg = r"x must have 6 features per row \(shape \(batch, 6\)\), got shape \(3, 7\)"
        with pytest.raises(ValueError, match=msg):
            call(put(np.zeros((3, 7), np.float32)))
        with pytest.raises(ValueError, match=r"x must have 2 axes \(batch, dim\), got .*\(6,\)"):
            call(put(x[0]))
        with pytest.raises(ValueError, match=r"2 axes .* got shape \(1, 3, 6\)"):
            call(put(x[None]))
        with pytest.raises(ValueError, match=r"x is an empty batch \(shape \(0, 6\)\)"):
            call(put(x[:0]))
        call(put(x))  # and the good input, given the same way, is accepted


@pytest.mark.parametrize("make", MODELS, ids=["vae-bern", "vae-learned", "ae"])
def test_int_and_bool_data_are_refused(make, x, backend_name, host_and_backend):
    model = make(backend_name)
    for put, call in itertools.product(host_and_backend, _entry_points(model)):
        with pytest.raises(TypeError, match="x must hold floating-point .* got dtype int64"):
            call(put((x * 16).astype(np.int64)))
        with pytest.raises(TypeError, match="floating-point numbers .* got dtype bool"):
            call(put(x > 0.5))
    for call in _entry_points(model):
        with pytest.raises(TypeError, match=r"x must be an array of shape \(batch, dim\), got str"):
            call("pixels")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_is_refused(vae, x, bad, host_and_backend):
    x = x.copy()
    x[1, 2] = bad
    for put, call in itertools.product(host_and_backend, _entry_points(vae)):
        with pytest.raises(ValueError, match="x contains 1 NaN or infinite values"):
            call(put(x))
    for put in host_and_backend:
        with pytest.raises(ValueError, match="x_train contains 1 NaN or infinite values"):
            fit(vae, put(x), epochs=1, progress=False)


def test_bad_params_assignment(vae, to_numpy):
    before = to_numpy(vae.params.flat).copy()
    with pytest.raises(ValueError, match="parameter 'encoder.W0': the new value contains NaN"):
        vae.params["encoder.W0"] = np.full((6, 4), np.nan)
    with pytest.raises(ValueError, match=r"'encoder.W0' has shape \(6, 4\), got .* \(4, 6\)"):
        vae.params["encoder.W0"] = np.zeros((4, 6))
    with pytest.raises(KeyError, match="no parameter 'encoder.W9'"):
        vae.params["encoder.W9"] = np.zeros((6, 4))
    np.testing.assert_array_equal(to_numpy(vae.params.flat), before,
                                  err_msg="a refused value got in")


def test_eps_of_the_wrong_shape(vae, x, host_and_backend):
    for put, call in itertools.product(host_and_backend, (vae.loss_and_grads, vae.loss)):
        with pytest.raises(ValueError, match=r"eps must be \(batch, z_dim\) = \(3, 2\), got \(4, "):
            call(put(x), put(np.zeros((4, 2))))
        with pytest.raises(ValueError, match=r"eps must have 2 features per row .* \(3, 3\)"):
            call(put(x), put(np.zeros((3, 3))))
        with pytest.raises(ValueError, match=r"eps must have 2 axes"):
            call(put(x), put(np.zeros(2)))
        with pytest.raises(ValueError, match="eps contains 1 NaN"):
            call(put(x), put(np.array([[0.0, np.nan], [0, 0], [0, 0]])))
        call(put(x), put(np.zeros((3, 2))))  # the right shape is accepted


def test_bernoulli_needs_data_in_the_unit_interval(x, backend_name, host_and_backend):
    outside = x.copy()
    outside[0, 0] = -0.5
    outside[2, 3] = 16.0
    msg = r"x must lie in \[0, 1\] for a Bernoulli likelihood, got values in \[-0.5, 16\]"
    model = VAE(6, 2, (4,), "bernoulli", seed=0, backend=backend_name)
    ae = Autoencoder(6, 2, (4,), "bernoulli", seed=0, backend=backend_name)
    for put in host_and_backend:
        for call in (model.loss_and_grads, model.loss, lambda a: model.log_likelihood(a, k=2)):
            with pytest.raises(ValueError, match=msg):
                call(put(outside))
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
            fit(model, put(outside), epochs=1, progress=False)
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
            fit(model, put(x), put(outside), epochs=1, progress=False)
        for call in (ae.loss_and_grads, ae.loss):
            with pytest.raises(ValueError, match=r"\[0, 1\] for a Bernoulli likelihood"):
                call(put(outside))
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
            fit(ae, put(outside), epochs=1, progress=False)
        gaussian = VAE(6, 2, (4,), "gaussian", seed=0, backend=backend_name)
        gaussian.loss(put(outside))  # a Gaussian accepts any real data


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="z_dim must be >= 1, got 0"):
        VAE(6, 0)
    with pytest.raises(TypeError, match="z_dim must be a positive integer, got 2.5"):
        VAE(6, 2.5)
    with pytest.raises(ValueError, match="x_dim must be >= 1, got -3"):
        VAE(-3)
    with pytest.raises(ValueError, match="hidden width must be >= 1, got 0"):
        VAE(6, 2, (0,))
    with pytest.raises(ValueError, match=r"beta must be >= 0.0, got -1.0"):
        VAE(6, 2, beta=-1.0)
    with pytest.raises(ValueError, match="beta must be finite"):
        VAE(6, 2, beta=float("nan"))
    with pytest.raises(ValueError, match="unknown likelihood 'poisson': expected 'bernoulli'"):
        VAE(6, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        VAE(6, 2, activation="gelu")
    with pytest.raises(ValueError, match=r"obs_var \(the fixed variance\) must be > 0.0, got 0.0"):
        VAE(6, 2, likelihood="gaussian", obs_var=0.0)
    with pytest.raises(ValueError, match="unknown loss 'l1': expected one of"):
        Autoencoder(6, 2, loss="l1")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        Autoencoder(6, 2, activation="gelu")
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        VAE(6, 2, backend="tpu")


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_float16_is_refused(cls):
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got float16"):
        cls(6, 2, dtype="float16")
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        cls(6, 2, dtype=np.int32)


def test_bad_training_arguments(vae, x):  # vae: on every backend
    with pytest.raises(ValueError, match=r"lr must be >= 0.0, got -0.001"):
        fit(vae, x, epochs=1, lr=-1e-3, progress=False)
    with pytest.raises(ValueError, match=r"lr must be >= 0.0"):
        Adam(vae.params, lr=-1.0)
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        fit(vae, x, epochs=0, progress=False)
    with pytest.raises(TypeError, match="batch_size must be a positive integer, got 3.5"):
        fit(vae, x, batch_size=3.5, progress=False)
    with pytest.raises(ValueError, match=r"x_train must have 6 features per row"):
        fit(vae, x[:, :5], progress=False)
    with pytest.raises(ValueError, match=r"x_val must have 6 features per row"):
        fit(vae, x, x[:, :5], progress=False)


def test_other_vae_arguments(vae, x, backend_name, host_and_backend):
    ae = Autoencoder(6, 2, (4,), seed=0, backend=backend_name)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        vae.log_likelihood(x, k=0)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        vae.sample(0)
    msg = r"z must have 2 features per row .* got shape \(3, 6\)"
    target_msg = r"target must have the shape of x \(3, 6\), got \(2, 6\)"
    for put in host_and_backend:
        with pytest.raises(ValueError, match=msg):
            vae.decode(put(x))
        with pytest.raises(ValueError, match=r"z must have 2 features per row"):
            ae.decode(put(x))
        with pytest.raises(ValueError, match=r"z must have 2 features per row"):
            vae.decoder_output(put(x))
        with pytest.raises(ValueError, match=r"target must have 6 features per row"):
            ae.loss_and_grads(put(x), target=put(x[:, :4]))
        with pytest.raises(ValueError, match=target_msg):
            ae.loss_and_grads(put(x), target=put(x[:2]))


def test_beta_is_checked_whenever_it_is_set():
    # model.beta is set after construction by notebooks and schedules; a NaN there must not
    # reach the loss
    model = VAE(6, 2, (4,), seed=0)
    model.beta = 4  # an int is fine and stored as a float
    assert model.beta == 4.0 and isinstance(model.beta, float)
    with pytest.raises(ValueError, match="beta must be finite, got nan"):
        model.beta = float("nan")
    with pytest.raises(ValueError, match=r"beta must be >= 0.0, got -0.5"):
        model.beta = -0.5
    with pytest.raises(TypeError, match="beta must be a real number, got 'high'"):
        model.beta = "high"
    assert model.beta == 4.0  # a refused value leaves the old one


def test_bad_beta_schedule_is_named(x):
    model = VAE(6, 2, (4,), seed=0)
    before = model.params.flat.copy()

    def schedule(step: int) -> float:
        return 1.0 if step < 1 else float("nan")

    with pytest.raises(ValueError, match=r"beta_schedule\(1\) returned nan: beta must be finite"):
        fit(model, x, epochs=1, batch_size=2, beta_schedule=schedule, progress=False)
    # step 0 ran; step 1 was refused before its update
    assert not np.array_equal(model.params.flat, before)
    with pytest.raises(TypeError, match="beta_schedule needs a model with a KL weight"):
        fit(Autoencoder(6, 2, (4,)), x, epochs=1, beta_schedule=lambda step: 1.0, progress=False)


def test_finite_check_by_sum_accepts_overflowing_data_and_catches_every_bad_value(recwarn):
    # check_data sums the data instead of making a boolean copy of it; a sum that overflows
    # with every entry finite must still pass, silently, and inf + -inf must still be caught
    from minivae.validation import check_data

    huge = np.full((10, 4), 3e38, dtype=np.float32)  # the float32 sum overflows to inf
    assert check_data(huge) is huge
    assert len(recwarn) == 0, [str(w.message) for w in recwarn]
    for values in ([np.inf, -np.inf], [np.nan], [-np.inf], [3e38, np.inf]):
        x = np.ones((5, 4), dtype=np.float32)
        x.flat[: len(values)] = values
        n_bad = int((~np.isfinite(x)).sum())
        with pytest.raises(ValueError, match=f"x contains {n_bad} NaN or infinite values"):
            check_data(x)


# =============================================================================================
# The table: every bad or unusual input of issue 15, one row each, with the message it gets.
# =============================================================================================
#
# A row is (family, id, call, error, match): ``call()`` must raise ``error`` with a message
# matching ``match``, or, with error None, succeed (a NumPy scalar where a Python number goes, NaN
# at a missing entry, a list where an array goes). The families and their counts are in
# BAD_INPUT_COUNTS below; test_the_counts_are_what_the_table_holds keeps them true.

from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import minivae  # noqa: E402
from minivae import anomaly, imputation, masks, metrics, schedules  # noqa: E402
from minivae.data import standardize  # noqa: E402
from minivae.models.base import Batch  # noqa: E402
from minivae.regularizers import Capacity, FreeBits  # noqa: E402
from minivae.validation import NotFiniteError  # noqa: E402

_RNG = np.random.default_rng(0)
X = _RNG.random((3, 6)).astype(np.float32)
MASK = np.ones((3, 6), dtype=bool)
MASK[0, 1] = MASK[1, 4] = MASK[2, 0] = False
HUGE64 = X.astype(np.float64)
HUGE64[1, 2] = 1e300  # finite in float64, inf in float32
GAUSS_1E30 = np.full((3, 6), 1e30, np.float32)  # finite in float32; its squares are not


def _vae(**kwargs: Any) -> VAE:
    return VAE(6, 2, (4,), seed=0, **kwargs)


def _gauss(**kwargs: Any) -> VAE:
    return VAE(6, 2, (4,), "gaussian", seed=0, **kwargs)


def _ae(**kwargs: Any) -> Autoencoder:
    return Autoencoder(6, 2, (4,), seed=0, **kwargs)


def _set(obj: Any, name: str, value: Any) -> Any:
    setattr(obj, name, value)
    return obj


def _wide_encoder(dtype: str = "float32") -> VAE:
    """A Gaussian VAE whose first layer sums x with weight 1: x of 1e38 overflows float32."""
    model = _gauss(dtype=dtype)
    model.params["encoder.W0"] = np.ones((6, 4))
    return model


@dataclass(frozen=True)
class Row:
    family: str
    id: str
    call: Any
    error: type | None = None
    match: str = ""


NUMBER = "a number: NumPy scalars accepted, bools and strings refused"
SEED_DTYPE = "seeds, dtypes and generators: named in the message"
HIDDEN = "hidden widths"
SET_LATER = "regularizer parameters set after construction"
EVALUATE = "evaluate: batch_size and empty data"
AE = "an Autoencoder where a latent-variable model is needed"
ROC = "roc_curve / roc_auc"
MEAN_IMP = "mean_imputation"
MSE_FILL = "imputation_mse, zero_fill, active_units"
CAST = "finite data that overflow when cast to the model's dtype"
OVERFLOW = "finite data the model's arithmetic overflows on"
STANDARDIZE = "standardize"

ROWS = [
    # ---------------------------------------------------------------- numbers
    Row(NUMBER, "z_dim=np.int64", lambda: VAE(6, np.int64(2))),
    Row(NUMBER, "beta=np.float32", lambda: _vae(beta=np.float32(0.5))),
    Row(NUMBER, "beta=0-d array", lambda: _vae(beta=np.array(0.5))),
    Row(NUMBER, "z_dim='2'", lambda: VAE(6, "2"), TypeError,
        "z_dim must be a positive integer, got '2'"),
    Row(NUMBER, "z_dim=True", lambda: VAE(6, True), TypeError,
        r"z_dim must be a positive integer, got True \(bool\)"),
    Row(NUMBER, "z_dim=2.0", lambda: VAE(6, 2.0), TypeError,
        "z_dim must be a positive integer, got 2.0"),
    Row(NUMBER, "beta='2'", lambda: _vae(beta="2"), TypeError,
        "beta must be a real number, got '2'"),
    Row(NUMBER, "beta=True", lambda: _vae(beta=True), TypeError,
        r"beta must be a real number, got True \(bool\)"),
    Row(NUMBER, "beta=np.float32(nan)", lambda: _vae(beta=np.float32("nan")), ValueError,
        "beta must be finite, got nan"),
    Row(NUMBER, "model.beta=np.bool_", lambda: _set(_vae(), "beta", np.True_), TypeError,
        "beta must be a real number, got .*bool"),
    Row(NUMBER, "obs_var=np.float32", lambda: _gauss(obs_var=np.float32(0.5))),
    Row(NUMBER, "likelihood=5", lambda: VAE(6, 2, likelihood=5), TypeError,
        "likelihood must be 'bernoulli', 'gaussian' or 'gaussian_learned' .* got 5"),
    Row(NUMBER, "obs_var='1'", lambda: _gauss(obs_var="1"), TypeError,
        r"obs_var \(the fixed variance\) must be a real number, got '1'"),
    Row(NUMBER, "obs_var=-1", lambda: _gauss(obs_var=-1), ValueError,
        r"obs_var \(the fixed variance\) must be > 0.0, got -1.0"),
    Row(NUMBER, "Adam lr=np.float32", lambda: Adam(_vae().params, lr=np.float32(1e-3))),
    Row(NUMBER, "Adam lr=True", lambda: Adam(_vae().params, lr=True), TypeError,
        r"lr must be a real number, got True \(bool\)"),
    Row(NUMBER, "Adam lr='0.1'", lambda: Adam(_vae().params, lr="0.1"), TypeError,
        "lr must be a real number, got '0.1'"),
    Row(NUMBER, "fit lr=np.float64", lambda: fit(_vae(), X, lr=np.float64(1e-3), epochs=1,
                                               progress=False)),
    Row(NUMBER, "fit epochs=np.int64", lambda: fit(_vae(), X, epochs=np.int64(1),
                                                 progress=False)),
    Row(NUMBER, "fit epochs=True", lambda: fit(_vae(), X, epochs=True, progress=False),
        TypeError, r"epochs must be a positive integer, got True \(bool\)"),
    Row(NUMBER, "FreeBits(np.float32)", lambda: FreeBits(np.float32(0.5))),
    Row(NUMBER, "FreeBits(True)", lambda: FreeBits(True), TypeError,
        r"lam \(the free bits per latent, in nats\) must be a real number, got True"),
    Row(NUMBER, "FreeBits('0.5')", lambda: FreeBits("0.5"), TypeError,
        "lam .* must be a real number, got '0.5'"),
    Row(NUMBER, "Capacity(np.int64)", lambda: Capacity(np.int64(3))),
    Row(NUMBER, "Capacity(-1)", lambda: Capacity(-1), ValueError,
        r"capacity C \(nats\) must be >= 0.0, got -1.0"),
    Row(NUMBER, "linear_warmup(np.int64)", lambda: schedules.linear_warmup(np.int64(100))),
    Row(NUMBER, "linear_warmup(100.0)", lambda: schedules.linear_warmup(100.0), TypeError,
        "steps must be a positive integer, got 100.0"),
    Row(NUMBER, "linear_warmup(True)", lambda: schedules.linear_warmup(True), TypeError,
        r"steps must be a positive integer, got True \(bool\)"),
    Row(NUMBER, "linear_warmup(start='0')", lambda: schedules.linear_warmup(10, start="0"),
        TypeError, "start must be a real number, got '0'"),
    Row(NUMBER, "linear_warmup(end=nan)", lambda: schedules.linear_warmup(10, end=np.nan),
        ValueError, "end must be finite, got nan"),
    Row(NUMBER, "capacity_schedule(c_max=np.float32)",
        lambda: schedules.capacity_schedule(Capacity(), np.float32(5.0), np.int64(10))),
    Row(NUMBER, "capacity_schedule(c_max=-1)",
        lambda: schedules.capacity_schedule(Capacity(), -1.0, 10), ValueError,
        r"c_max \(nats\) must be >= 0.0, got -1.0"),
    Row(NUMBER, "capacity_schedule(gamma='big')",
        lambda: schedules.capacity_schedule(Capacity(), 1.0, 10, gamma="big"), TypeError,
        "gamma must be a real number, got 'big'"),
    Row(NUMBER, "mcar_mask(np.float32)", lambda: masks.mcar_mask((4, 3), np.float32(0.5))),
    Row(NUMBER, "mcar_mask(True)", lambda: masks.mcar_mask((4, 3), True), TypeError,
        r"missing_rate must be a real number, got True \(bool\)"),
    Row(NUMBER, "mcar_mask(1.0)", lambda: masks.mcar_mask((4, 3), 1.0), ValueError,
        r"missing_rate must be in \[0, 1\), got 1.0"),
    Row(NUMBER, "log_likelihood(k=np.int64)", lambda: _vae().log_likelihood(X, k=np.int64(2))),
    Row(NUMBER, "log_likelihood(k=True)", lambda: _vae().log_likelihood(X, k=True), TypeError,
        r"k must be a positive integer, got True \(bool\)"),
    Row(NUMBER, "sample(np.int64)", lambda: _vae().sample(np.int64(3))),
    Row(NUMBER, "pseudo_gibbs(n_steps='5')",
        lambda: imputation.pseudo_gibbs(_vae(), X, MASK, n_steps="5"), TypeError,
        "n_steps must be a positive integer, got '5'"),
    Row(NUMBER, "pseudo_gibbs(burn_in=1.5)",
        lambda: imputation.pseudo_gibbs(_vae(), X, MASK, n_steps=4, burn_in=1.5), TypeError,
        "burn_in must be an integer >= 0, got 1.5"),
    # ---------------------------------------------------------------- seeds, dtypes, generators
    Row(SEED_DTYPE, "VAE(seed=np.int64)", lambda: minivae.save(
        VAE(6, 2, (4,), seed=np.int64(3)), __import__("tempfile").mkdtemp() + "/m.npz")),
    Row(SEED_DTYPE, "VAE(seed=-1)", lambda: VAE(6, 2, seed=-1), ValueError,
        "seed must be an integer >= 0 or None, got -1"),
    Row(SEED_DTYPE, "VAE(seed=1.5)", lambda: VAE(6, 2, seed=1.5), TypeError,
        "seed must be an integer >= 0 or None, got 1.5"),
    Row(SEED_DTYPE, "VAE(seed='0')", lambda: VAE(6, 2, seed="0"), TypeError,
        "seed must be an integer >= 0 or None, got '0'"),
    Row(SEED_DTYPE, "Autoencoder(seed=True)", lambda: Autoencoder(6, 2, seed=True), TypeError,
        r"seed must be an integer >= 0 or None, got True \(bool\)"),
    Row(SEED_DTYPE, "fit(seed=-1)", lambda: fit(_vae(), X, seed=-1, progress=False),
        ValueError, "seed must be an integer >= 0 or None, got -1"),
    Row(SEED_DTYPE, "fit(seed='a')", lambda: fit(_vae(), X, seed="a", progress=False),
        TypeError, "seed must be an integer >= 0 or None, got 'a'"),
    Row(SEED_DTYPE, "fit(seed=Generator)", lambda: fit(_vae(), X, epochs=1, progress=False,
                                                     seed=np.random.default_rng(0))),
    Row(SEED_DTYPE, "evaluate(seed=-1)", lambda: minivae.evaluate(_vae(), X, seed=-1),
        ValueError, "seed must be an integer >= 0 or None, got -1"),
    Row(SEED_DTYPE, "evaluate(seed=1.5)", lambda: minivae.evaluate(_vae(), X, seed=1.5),
        TypeError, "seed must be an int, None or a random generator"),
    Row(SEED_DTYPE, "mcar_mask(seed=-1)", lambda: masks.mcar_mask((4, 3), 0.5, seed=-1),
        ValueError, "seed must be an integer >= 0 or None, got -1"),
    Row(SEED_DTYPE, "pseudo_gibbs(seed=-3)",
        lambda: imputation.pseudo_gibbs(_vae(), X, MASK, seed=-3), ValueError,
        "seed must be an integer >= 0 or None, got -3"),
    Row(SEED_DTYPE, "dtype='banana'", lambda: VAE(6, 2, dtype="banana"), TypeError,
        "dtype must be float32 or float64, got 'banana'"),
    Row(SEED_DTYPE, "dtype=None", lambda: VAE(6, 2, dtype=None), TypeError,
        "dtype must be float32 or float64, got None"),
    Row(SEED_DTYPE, "dtype=float16", lambda: Autoencoder(6, 2, dtype=np.float16), TypeError,
        "dtype must be float32 or float64, got float16"),
    Row(SEED_DTYPE, "dtype='int32'", lambda: VAE(6, 2, dtype="int32"), TypeError,
        "dtype must be float32 or float64, got int32"),
    Row(SEED_DTYPE, "dtype=np.float64", lambda: VAE(6, 2, dtype=np.float64)),
    Row(SEED_DTYPE, "sample(rng=42)", lambda: _vae().sample(3, rng=42), TypeError,
        r"rng must be a random generator such as numpy.random.default_rng\(0\), or None, got "
        r"42; to seed one, pass numpy.random.default_rng\(42\)"),
    Row(SEED_DTYPE, "log_likelihood(rng=42)", lambda: _vae().log_likelihood(X, k=2, rng=42),
        TypeError, "rng must be a random generator"),
    Row(SEED_DTYPE, "draw_eps(rng=42)", lambda: _vae().draw_eps(3, 42), TypeError,
        "rng must be a random generator"),
    Row(SEED_DTYPE, "importance_samples(rng='abc')",
        lambda: _vae().importance_samples(X, 2, rng="abc"), TypeError,
        "rng must be a random generator .* got 'abc'"),
    Row(SEED_DTYPE, "sample(rng=Generator)", lambda: _vae().sample(3, np.random.default_rng(1))),
    # ---------------------------------------------------------------- hidden
    Row(HIDDEN, "VAE(hidden=256)", lambda: VAE(6, 2, hidden=256), TypeError,
        r"hidden must be a sequence of layer widths such as \(256,\) or \(512, 256\), got 256"),
    Row(HIDDEN, "VAE(hidden=np.int64)", lambda: VAE(6, 2, hidden=np.int64(256)), TypeError,
        "hidden must be a sequence of layer widths"),
    Row(HIDDEN, "VAE(hidden='256')", lambda: VAE(6, 2, hidden="256"), TypeError,
        "hidden must be a sequence of layer widths .* got '256'"),
    Row(HIDDEN, "VAE(hidden=(256.0,))", lambda: VAE(6, 2, hidden=(256.0,)), TypeError,
        "each hidden width must be a positive integer, got 256.0"),
    Row(HIDDEN, "Autoencoder(hidden=8)", lambda: Autoencoder(6, 2, hidden=8), TypeError,
        "hidden must be a sequence of layer widths"),
    Row(HIDDEN, "VAE(hidden=[np.int64])", lambda: VAE(6, 2, hidden=[np.int64(4)])),
    # ---------------------------------------------------------------- set later
    Row(SET_LATER, "FreeBits.lam=-1", lambda: _set(FreeBits(), "lam", -1), ValueError,
        r"lam \(the free bits per latent, in nats\) must be >= 0.0, got -1.0"),
    Row(SET_LATER, "FreeBits.lam=nan", lambda: _set(FreeBits(), "lam", float("nan")),
        ValueError, "lam .* must be finite, got nan"),
    Row(SET_LATER, "FreeBits.lam='1'", lambda: _set(FreeBits(), "lam", "1"), TypeError,
        "lam .* must be a real number, got '1'"),
    Row(SET_LATER, "Capacity.capacity=-2", lambda: _set(Capacity(), "capacity", -2),
        ValueError, r"capacity C \(nats\) must be >= 0.0, got -2.0"),
    Row(SET_LATER, "Capacity.capacity=inf", lambda: _set(Capacity(), "capacity", np.inf),
        ValueError, r"capacity C \(nats\) must be finite, got inf"),
    Row(SET_LATER, "Capacity.capacity=None", lambda: _set(Capacity(), "capacity", None),
        TypeError, r"capacity C \(nats\) must be a real number, got None"),
    Row(SET_LATER, "Capacity.capacity=np.float32", lambda: _set(Capacity(), "capacity",
                                                                np.float32(2.5))),
    # ---------------------------------------------------------------- evaluate
    Row(EVALUATE, "batch_size=0", lambda: minivae.evaluate(_vae(), X, batch_size=0),
        ValueError, "batch_size must be >= 1, got 0"),
    Row(EVALUATE, "batch_size=-4", lambda: minivae.evaluate(_vae(), X, batch_size=-4),
        ValueError, "batch_size must be >= 1, got -4"),
    Row(EVALUATE, "batch_size=2.5", lambda: minivae.evaluate(_vae(), X, batch_size=2.5),
        TypeError, "batch_size must be a positive integer, got 2.5"),
    Row(EVALUATE, "batch_size=np.int64", lambda: minivae.evaluate(_vae(), X,
                                                                batch_size=np.int64(2))),
    Row(EVALUATE, "empty x", lambda: minivae.evaluate(_vae(), X[:0]), ValueError,
        r"x is an empty batch \(shape \(0, 6\)\)"),
    Row(EVALUATE, "empty Batch", lambda: minivae.evaluate(_vae(), Batch(X[:0])), ValueError,
        r"x is an empty batch \(0 rows\)"),
    Row(EVALUATE, "x list", lambda: minivae.evaluate(_vae(), X.tolist())),
    # ---------------------------------------------------------------- Autoencoder
    Row(AE, "fit(ae, mask=)", lambda: fit(_ae(), X, mask=MASK, progress=False), TypeError,
        r"an Autoencoder cannot train on incomplete data \(mask=...\)"),
    Row(AE, "ae.loss(mask=)", lambda: _ae().loss(X, mask=MASK), TypeError,
        "an Autoencoder cannot train on incomplete data"),
    Row(AE, "reconstruction_error(ae)", lambda: anomaly.reconstruction_error(_ae(), X),
        TypeError, "reconstruction_error needs a latent-variable model .* got Autoencoder"),
    Row(AE, "reconstruction_probability(ae)",
        lambda: anomaly.reconstruction_probability(_ae(), X), TypeError,
        "reconstruction_probability needs a latent-variable model"),
    Row(AE, "negative_elbo(ae)", lambda: anomaly.negative_elbo(_ae(), X), TypeError,
        "negative_elbo needs a latent-variable model"),
    Row(AE, "pseudo_gibbs(ae)", lambda: imputation.pseudo_gibbs(_ae(), X, MASK), TypeError,
        "pseudo_gibbs needs a latent-variable model .* got Autoencoder"),
    Row(AE, "pseudo_gibbs_step(ae)", lambda: imputation.pseudo_gibbs_step(_ae(), X, MASK),
        TypeError, "pseudo_gibbs_step needs a latent-variable model"),
    Row(AE, "metropolis_within_gibbs(ae)",
        lambda: imputation.metropolis_within_gibbs(_ae(), X, MASK), TypeError,
        "metropolis_within_gibbs needs a latent-variable model"),
    Row(AE, "importance_weighted_imputation(ae)",
        lambda: imputation.importance_weighted_imputation(_ae(), X, MASK), TypeError,
        "importance_weighted_imputation needs a latent-variable model"),
    Row(AE, "beta_schedule on ae", lambda: fit(_ae(), X, beta_schedule=lambda s: 1.0,
                                             progress=False), TypeError,
        "beta_schedule needs a model with a KL weight"),
    # ---------------------------------------------------------------- ROC
    Row(ROC, "roc_auc([], [])", lambda: anomaly.roc_auc([], []), ValueError,
        "scores and labels are empty; a ROC curve needs at least one normal example"),
    Row(ROC, "roc_curve(empty arrays)",
        lambda: anomaly.roc_curve(np.array([]), np.array([], dtype=int)), ValueError,
        "scores and labels are empty"),
    Row(ROC, "roc_auc one class", lambda: anomaly.roc_auc([0.1, 0.2], [1, 1]), ValueError,
        "labels must contain both classes"),
    Row(ROC, "roc_auc np.float32 scores", lambda: anomaly.roc_auc(
        np.array([0.1, 0.9], np.float32), np.array([0, 1]))),
    # ---------------------------------------------------------------- mean_imputation
    Row(MEAN_IMP, "NaN at an observed entry",
        lambda: imputation.mean_imputation(np.where(MASK, np.nan, X), MASK), ValueError,
        r"x has 15 NaN or infinite values at observed entries \(mask True\)"),
    Row(MEAN_IMP, "NaN at the missing entries", lambda: imputation.mean_imputation(
        np.where(MASK, X, np.nan), MASK)),
    Row(MEAN_IMP, "a column fully missing",
        lambda: imputation.mean_imputation(X, np.tile([True, False, True, True, True, True],
                                                      (3, 1))), ValueError,
        r"mask has 1 column\(s\) with no observed entry \(e.g. columns \[1\]\): they have no "
        "mean to impute from"),
    Row(MEAN_IMP, "integer data",
        lambda: imputation.mean_imputation((X * 16).astype(np.int64), MASK), TypeError,
        r"x must hold floating-point numbers, got dtype int64; convert it first, e.g. "
        r"x.astype\(np.float64\)"),
    Row(MEAN_IMP, "1-D x", lambda: imputation.mean_imputation(X[0], MASK[0]), ValueError,
        r"x must have 2 axes \(n, d\), got shape \(6,\); for one column use x\[:, None\]"),
    Row(MEAN_IMP, "lists", lambda: imputation.mean_imputation(X.tolist(), MASK.tolist())),
    Row(MEAN_IMP, "a string", lambda: imputation.mean_imputation("x", MASK), TypeError,
        "x must be an array, got str"),
    Row(MEAN_IMP, "mask of the wrong shape", lambda: imputation.mean_imputation(X, MASK[:2]),
        ValueError, r"mask must have the shape of x \(3, 6\)"),
    # ---------------------------------------------------------------- imputation_mse, zero_fill..
    Row(MSE_FILL, "imputation_mse lists",
        lambda: imputation.imputation_mse(X.tolist(), X.tolist(), MASK.tolist())),
    Row(MSE_FILL, "imputation_mse NaN at a missing entry", lambda: imputation.imputation_mse(
        np.where(MASK, X, np.nan), X, MASK), ValueError,
        "x_imputed has 3 NaN or infinite values at the missing entries it is scored on"),
    Row(MSE_FILL, "imputation_mse NaN where observed (not scored)",
        lambda: imputation.imputation_mse(np.where(MASK, np.nan, X), X, MASK)),
    Row(MSE_FILL, "imputation_mse strings", lambda: imputation.imputation_mse(
        np.array([["a"] * 6] * 3), X, MASK), TypeError, "x_imputed must hold real numbers"),
    Row(MSE_FILL, "imputation_mse x_true=None", lambda: imputation.imputation_mse(X, None, MASK),
        TypeError, "x_true must be an array, got NoneType"),
    Row(MSE_FILL, "imputation_mse shapes", lambda: imputation.imputation_mse(X[:2], X, MASK),
        ValueError, r"x_imputed must have the shape of x_true \(3, 6\), got \(2, 6\)"),
    Row(MSE_FILL, "imputation_mse overflow", lambda: imputation.imputation_mse(
        np.full((3, 6), 1e200), -np.full((3, 6), 1e200), MASK), ValueError,
        "the squared errors overflow float64"),
    Row(MSE_FILL, "zero_fill broadcast mask", lambda: masks.zero_fill(X, MASK[0]), ValueError,
        r"mask must have the shape of x \(3, 6\) \(True = observed\), got shape \(6,\)"),
    Row(MSE_FILL, "zero_fill int mask", lambda: masks.zero_fill(X, MASK.astype(int)),
        TypeError, "mask must be a boolean array"),
    Row(MSE_FILL, "zero_fill strings", lambda: masks.zero_fill(np.array([["a"] * 6] * 3), MASK),
        TypeError, "x must hold real numbers, got dtype <U1"),
    Row(MSE_FILL, "zero_fill lists", lambda: masks.zero_fill(X.tolist(), MASK)),
    Row(MSE_FILL, "active_units(threshold=nan)",
        lambda: metrics.active_units(X, threshold=float("nan")), ValueError,
        "threshold must be finite, got nan"),
    Row(MSE_FILL, "active_units(threshold='0.1')", lambda: metrics.active_units(X, "0.1"),
        TypeError, "threshold must be a real number, got '0.1'"),
    Row(MSE_FILL, "active_units(threshold=-1)", lambda: metrics.active_units(X, -1),
        ValueError, "threshold must be >= 0.0, got -1.0"),
    Row(MSE_FILL, "active_units(np.float32)", lambda: metrics.active_units(X, np.float32(0.01))),
    # ---------------------------------------------------------------- cast overflow
    Row(CAST, "loss", lambda: _vae().loss(HUGE64), ValueError,
        r"x holds values too large for the model's dtype float32 \(they overflow to inf when "
        r"cast\); rescale the data or use dtype='float64'"),
    Row(CAST, "loss_and_grads", lambda: _gauss().loss_and_grads(HUGE64), ValueError,
        "x holds values too large for the model's dtype float32"),
    Row(CAST, "encode", lambda: _gauss().encode(HUGE64), ValueError, "x holds values too large"),
    Row(CAST, "reconstruct", lambda: _gauss().reconstruct(HUGE64), ValueError,
        "x holds values too large"),
    Row(CAST, "log_likelihood", lambda: _gauss().log_likelihood(HUGE64, k=2), ValueError,
        "x holds values too large"),
    Row(CAST, "fit x_train", lambda: fit(_gauss(), HUGE64, progress=False), ValueError,
        "x_train holds values too large for the model's dtype float32"),
    Row(CAST, "fit x_val", lambda: fit(_gauss(), X, HUGE64, progress=False), ValueError,
        "x_val holds values too large"),
    Row(CAST, "evaluate", lambda: minivae.evaluate(_gauss(), HUGE64), ValueError,
        "x holds values too large"),
    Row(CAST, "fit with a mask", lambda: fit(_gauss(), HUGE64, mask=MASK, progress=False),
        ValueError, "x_train holds values too large"),
    Row(CAST, "pseudo_gibbs", lambda: imputation.pseudo_gibbs(_gauss(), HUGE64, MASK),
        ValueError, "x holds values too large"),
    Row(CAST, "importance_weighted_imputation",
        lambda: imputation.importance_weighted_imputation(_gauss(), HUGE64, MASK), ValueError,
        "x holds values too large"),
    Row(CAST, "negative_elbo", lambda: anomaly.negative_elbo(_gauss(), HUGE64), ValueError,
        "x holds values too large"),
    Row(CAST, "eps", lambda: _vae().loss(X, np.array([[1e300, 0.0]] * 3)), ValueError,
        "eps holds values too large for the model's dtype float32"),
    Row(CAST, "importance_samples eps", lambda: _vae().importance_samples(
        X, 1, eps=np.full((2, 3, 2), 1e300)), ValueError, "eps holds values too large"),
    Row(CAST, "decode z", lambda: _vae().decode(np.array([[1e300, 0.0]])), ValueError,
        "z holds values too large for the model's dtype float32"),
    Row(CAST, "Autoencoder decode z", lambda: _ae().decode(np.array([[1e300, 0.0]])),
        ValueError, "z holds values too large"),
    Row(CAST, "params assignment", lambda: _vae().params.__setitem__(
        "encoder.b0", np.full(4, 1e300)), ValueError,
        "parameter 'encoder.b0': the new value holds numbers too large for float32"),
    Row(CAST, "a float64 model takes 1e39", lambda: _ae(dtype="float64").loss(
        np.full((3, 6), 1e39))),
    Row(CAST, "a float32 model refuses 1e39", lambda: _ae().loss(np.full((3, 6), 1e39)),
        ValueError, "x holds values too large for the model's dtype float32"),
    # ---------------------------------------------------------------- arithmetic overflow
    Row(OVERFLOW, "loss of Gaussian data at 1e30", lambda: _gauss().loss(GAUSS_1E30),
        NotFiniteError,
        r"the loss \(loss = inf, recon = inf, kl = inf\) is not finite although every input "
        r"is: the model's float32 arithmetic overflowed \(largest \|x\| = 1e\+30, largest "
        r"\|parameter\| = 0.\d+\); the x values are extreme: rescale or standardize them"),
    Row(OVERFLOW, "loss_and_grads at 1e30", lambda: _gauss().loss_and_grads(GAUSS_1E30),
        NotFiniteError, "the loss .* is not finite although every input is"),
    Row(OVERFLOW, "log_likelihood at 1e30", lambda: _gauss().log_likelihood(GAUSS_1E30, k=2),
        NotFiniteError, r"q\(z\|x\) \(its mu or std\) is not finite .*largest \|x\| = 1e\+30"),
    Row(OVERFLOW, "encode at 1e38", lambda: _wide_encoder().encode(np.full((2, 6), 1e38)),
        NotFiniteError, r"encode\(x\)'s mu is not finite .*largest \|x\| = 1e\+38"),
    Row(OVERFLOW, "decode at z = 3e38", lambda: _wide_decoder().decode(
        np.full((2, 2), 3e38, np.float32)), NotFiniteError,
        r"decode\(z\) is not finite .*largest \|z\| = 3e\+38"),
    Row(OVERFLOW, "reconstruct at 1e38", lambda: _wide_encoder().reconstruct(
        np.full((2, 6), 1e38)), NotFiniteError, r"encode\(x\)'s mu is not finite"),
    Row(OVERFLOW, "reconstruction_error at 1e38", lambda: anomaly.reconstruction_error(
        _wide_encoder(), np.full((2, 6), 1e38)), NotFiniteError, "is not finite"),
    Row(OVERFLOW, "reconstruction_probability at 1e30",
        lambda: anomaly.reconstruction_probability(_gauss(), GAUSS_1E30), NotFiniteError,
        r"q\(z\|x\) \(its mu or std\) is not finite"),
    Row(OVERFLOW, "importance_weighted_imputation at 1e30",
        lambda: imputation.importance_weighted_imputation(_gauss(), GAUSS_1E30, MASK),
        NotFiniteError, r"q\(z\|x\) \(its mu or std\) is not finite"),
    Row(OVERFLOW, "pseudo_gibbs at 1e30", lambda: imputation.pseudo_gibbs(
        _gauss(), GAUSS_1E30, MASK, n_steps=2), NotFiniteError,
        r"the chain's z ~ q\(z\|x\) is not finite .*largest \|x\| = 1e\+30"),
    Row(OVERFLOW, "metropolis_within_gibbs at 1e30", lambda: imputation.metropolis_within_gibbs(
        _gauss(), GAUSS_1E30, MASK, n_steps=2), NotFiniteError,
        r"the chain's z ~ q\(z\|x\) is not finite"),
    Row(OVERFLOW, "Autoencoder loss at 1e30", lambda: _ae().loss(GAUSS_1E30), NotFiniteError,
        r"the loss \(loss = inf, recon = inf\) is not finite"),
    Row(OVERFLOW, "a float64 Autoencoder takes 1e30", lambda: _ae(dtype="float64").loss(
        GAUSS_1E30)),
    Row(OVERFLOW, "a float64 VAE at 1e30: no float64 advice", lambda: _gauss(
        dtype="float64").loss(GAUSS_1E30), NotFiniteError,
        r"float64 arithmetic overflowed .* rescale or standardize them \(minivae.data."
        r"standardize\)$"),
    # ---------------------------------------------------------------- standardize
    Row(STANDARDIZE, "a column whose std overflows", lambda: _assert_standardized(
        np.array([[1e200, 1.0], [-1e200, 2.0], [3e200, 5.0]]))),
    Row(STANDARDIZE, "a column whose mean overflows", lambda: _assert_standardized(
        np.array([[1.5e308, 1.0], [1.7e308, 2.0], [1.6e308, 4.0]]))),
    Row(STANDARDIZE, "x_std overflows float32", lambda: standardize(
        X, mean=np.zeros(6), std=np.full(6, 1e-300)), ValueError,
        r"standardize: x_std overflows float32 \(values up to 9.\d+e\+299\)"),
    Row(STANDARDIZE, "mean overflows float32", lambda: standardize(
        X, mean=np.full(6, 1e300), std=np.ones(6)), ValueError,
        "standardize: x_std overflows float32"),
]


def _wide_decoder() -> VAE:
    """A Gaussian VAE whose decoder's first layer sums z with weight 1."""
    model = _gauss()
    model.params["decoder.W0"] = np.ones((2, 4))
    return model


def _assert_standardized(x: np.ndarray) -> None:
    """standardize(x) on columns of extreme values: mean 0, std 1, nothing turned into zeros."""
    x_std, mean, std = standardize(x)
    assert np.isfinite(x_std).all() and np.isfinite(mean).all() and np.isfinite(std).all()
    np.testing.assert_allclose(x_std.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(x_std.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(x_std * std + mean, x, rtol=1e-12)


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.family[:12]}: {r.id}" for r in ROWS])
def test_bad_input_table(row: Row):
    if row.error is None:
        row.call()  # accepted, and handled right
        return
    with pytest.raises(row.error, match=row.match):
        row.call()


#: The number of rows per family: refused (a TypeError/ValueError asserted) + accepted.
BAD_INPUT_COUNTS = {
    NUMBER: (27, 14),
    SEED_DTYPE: (18, 4),
    HIDDEN: (5, 1),
    SET_LATER: (6, 1),
    EVALUATE: (5, 2),
    AE: (10, 0),
    ROC: (3, 1),
    MEAN_IMP: (6, 2),
    MSE_FILL: (11, 4),
    CAST: (18, 1),
    OVERFLOW: (13, 1),
    STANDARDIZE: (2, 2),
}


def test_the_counts_are_what_the_table_holds():
    counted: dict[str, list[int]] = {}
    for row in ROWS:
        refused, accepted = counted.setdefault(row.family, [0, 0])
        counted[row.family] = [refused + (row.error is not None), accepted + (row.error is None)]
    assert {k: tuple(v) for k, v in counted.items()} == BAD_INPUT_COUNTS


# ---------------------------------------------------------------------------------------------
# fit: which is at fault when training diverges, and the validation terms
# ---------------------------------------------------------------------------------------------


def test_divergence_on_extreme_data_blames_the_data(backend_name):
    model = VAE(6, 2, (4,), "gaussian", seed=0, backend=backend_name)
    with pytest.raises(minivae.TrainingDiverged,
                       match=r"diverged at epoch 0, step 0: the 'loss' term became (nan|inf) .*; "
                             r"the data are at fault: this minibatch's loss or gradient is not "
                             r"finite even at the weights the run started from \(largest \|x\| "
                             r"= 1e\+30\), so no learning rate helps"):
        fit(model, GAUSS_1E30, epochs=1, progress=False)


def test_divergence_from_a_huge_step_blames_the_step_size(backend_name, to_numpy):
    x = (np.random.default_rng(1).random((64, 6)) < 0.5).astype(np.float32)
    model = VAE(6, 2, (8,), "bernoulli", seed=0, backend=backend_name)
    with pytest.raises(minivae.TrainingDiverged,
                       match=r"diverged at epoch \d+, step [1-9]\d*: .* the step size is at "
                             r"fault: this minibatch's loss and gradients were finite at the "
                             r"weights the run started from \(largest \|x\| = 1\); try a smaller "
                             "learning rate"):
        fit(model, x, epochs=5, batch_size=16, lr=1e6, progress=False)
    # the diagnosis scores the minibatch on the start weights and puts the weights back
    from minivae.train import _diagnose

    start = VAE(6, 2, (8,), "bernoulli", seed=0, backend=backend_name).params.flat.copy()
    model.params.flat[...] = 1e6 * start  # weights that overflow
    left = to_numpy(model.params.flat).copy()
    batch = model.prepare(x[:16])
    assert "the step size is at fault" in _diagnose(model, batch, model.draw_eps(16), start)
    np.testing.assert_array_equal(to_numpy(model.params.flat), left)


def test_a_non_finite_validation_loss_stops_fit(backend_name):
    model = VAE(6, 2, (4,), "gaussian", seed=0, backend=backend_name)
    with pytest.raises(minivae.TrainingDiverged,
                       match=r"the validation terms after epoch 0 are not finite \(the training "
                             r"terms are finite, so x_val holds what the model cannot score\): "
                             r"the loss .*largest \|x\| = 1e\+30"):
        fit(model, X, GAUSS_1E30, epochs=2, progress=False)


@pytest.mark.parametrize("put", ["host", "device"])
def test_finite_after_the_cast_on_every_backend(backend_name, to_xp, put):
    move = np.asarray if put == "host" else to_xp
    model = VAE(6, 2, (4,), "gaussian", seed=0, backend=backend_name)
    for call, name in [(lambda: model.loss(move(HUGE64)), "x"),
                       (lambda: model.encode(move(HUGE64)), "x"),
                       (lambda: model.loss(move(X), move(np.full((3, 2), 1e300))), "eps"),
                       (lambda: model.decode(move(np.full((3, 2), 1e300))), "z"),
                       (lambda: fit(model, move(X), move(HUGE64), progress=False), "x_val")]:
        with pytest.raises(ValueError, match=f"{name} holds values too large for the model's "
                                             "dtype float32"):
            call()
    with pytest.raises(NotFiniteError, match=r"the loss .*largest \|x\| = 1e\+30"):
        model.loss(move(GAUSS_1E30))


def test_a_nan_validation_loss_from_a_model_that_does_not_check_is_caught(monkeypatch):
    model = _vae()
    monkeypatch.setattr(model, "loss", lambda x, eps=None: {"loss": float("nan"), "recon": 1.0})
    with pytest.raises(minivae.TrainingDiverged,
                       match=r"validation terms after epoch 0 are not finite .*\{'loss': nan\}"):
        fit(model, X, X, epochs=1, progress=False)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_all_finite_answers_exactly_even_when_finite_entries_overflow(dtype, xp, to_xp):
    """fit's check of every gradient is one dot product x . x; a NaN or inf makes it non-finite,
    and so does an overflow of finite entries, which then gets the entry-wise check."""
    from minivae.validation import all_finite

    big, tiny = np.finfo(dtype).max, np.finfo(dtype).tiny
    cases = [([1.0, -2.0, 3.0], True), ([1.0, np.nan], False), ([1.0, np.inf], False),
             ([-np.inf, np.inf], False), ([big, -big, big], True), ([big, np.nan], False),
             ([], True), ([[tiny, -tiny], [0.0, -0.0]], True)]
    for values, expected in cases:
        assert all_finite(to_xp(np.asarray(values, dtype=dtype))) is expected, values
    assert all_finite(to_xp(np.arange(6).reshape(2, 3))) is True  # integers: always finite
