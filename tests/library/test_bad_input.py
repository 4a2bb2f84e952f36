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
