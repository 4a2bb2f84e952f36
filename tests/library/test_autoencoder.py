"""The Autoencoder: its loss gradient by finite differences for both losses; shapes; targets.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the gradient is
checked by finite differences; on the other backends it must give NumPy's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae import Autoencoder, backend
from minivae.layers import sigmoid
from minivae.losses import bernoulli_nll, mse


@pytest.mark.parametrize("loss", ["mse", "bernoulli"])
@pytest.mark.parametrize("hidden,activation", [((4,), "relu"), ((4, 3), "tanh"), ((), "relu")])
def test_autoencoder_gradient_every_parameter(loss, hidden, activation, backend_name, to_xp,
                                              assert_matches_numpy):
    model = Autoencoder(5, 2, hidden, loss, activation, dtype="float64", seed=0,
                        backend=backend_name)
    x = np.random.default_rng(1).random((3, 5))
    terms, grads = model.loss_and_grads(to_xp(x))
    if backend_name != "numpy":  # the maths is checked once, on NumPy, by finite differences
        ref = Autoencoder(5, 2, hidden, loss, activation, dtype="float64", seed=0)
        ref_terms, ref_grads = ref.loss_and_grads(x)
        assert_matches_numpy(terms["loss"], ref_terms["loss"], err_msg="loss")
        assert_matches_numpy(grads.flat, ref_grads.flat, err_msg=f"gradients on {backend_name}")
        return
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:
        return model.loss(x)["loss"]

    assert f() == pytest.approx(terms["loss"], rel=1e-12)
    what = f"Autoencoder {loss} hidden={hidden} {activation}"
    err = fd_max_error(what, f, model.params, analytic)
    assert err < 1e-6, f"Autoencoder ({loss}) gradient disagrees with finite differences: {err:.2e}"


def test_denoising_target_gradient(backend_name, to_xp, assert_matches_numpy):
    model = Autoencoder(5, 2, (4,), "bernoulli", dtype="float64", seed=0, backend=backend_name)
    rng = np.random.default_rng(2)
    clean = rng.random((3, 5))
    noisy = np.clip(clean + 0.1 * rng.standard_normal((3, 5)), 0, 1)
    _, grads = model.loss_and_grads(to_xp(noisy), target=to_xp(clean))
    if backend_name != "numpy":  # the maths is checked once, on NumPy, by finite differences
        ref = Autoencoder(5, 2, (4,), "bernoulli", dtype="float64", seed=0)
        _, ref_grads = ref.loss_and_grads(noisy, target=clean)
        assert_matches_numpy(grads.flat, ref_grads.flat, err_msg=f"gradients on {backend_name}")
        return
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:
        out = model.decoder.forward(model.params, model.encode(noisy))[0]
        return bernoulli_nll(out, clean)[0]

    err = fd_max_error("Autoencoder denoising target", f, model.params, analytic)
    assert err < 1e-6, f"the gradient must be that of the loss against the target: {err:.2e}"


@pytest.mark.parametrize("loss", ["mse", "bernoulli"])
def test_autoencoder_outputs(loss, backend_name, xp, to_xp, to_numpy):
    model = Autoencoder(6, 3, (5,), loss, dtype="float64", seed=0, backend=backend_name)
    x = np.random.default_rng(3).random((4, 6))
    for data in (x, to_xp(x)):  # host data is copied to the backend; backend data is used as is
        z = model.encode(data)
        assert z.shape == (4, 3) and model.reconstruct(data).shape == (4, 6)
        for a in (z, model.decode(z), model.reconstruct(data), model.decode(to_numpy(z))):
            assert backend.array_module(a) is xp and a.dtype == np.float64
    xd = to_xp(x)
    out = model.decoder.forward(model.params, z)[0]
    if loss == "bernoulli":
        np.testing.assert_allclose(to_numpy(model.decode(z)), to_numpy(sigmoid(out)), rtol=1e-15,
                                   err_msg="the bernoulli autoencoder must show sigmoid(logits)")
        assert model.loss(xd)["loss"] == pytest.approx(bernoulli_nll(out, xd)[0], rel=1e-12)
    else:
        np.testing.assert_array_equal(to_numpy(model.decode(z)), to_numpy(out))
        assert model.loss(xd)["loss"] == pytest.approx(mse(out, xd)[0], rel=1e-12)


@pytest.mark.parametrize("loss", ["mse", "bernoulli"])
def test_autoencoder_in_float32_matches_float64(loss, backend_name, to_xp, assert_matches_numpy):
    """float32 (the default) on any backend gives NumPy's float64 numbers to float32 precision."""
    model = Autoencoder(6, 3, (5,), loss, seed=0, backend=backend_name)
    ref = Autoencoder(6, 3, (5,), loss, dtype="float64", seed=0)
    ref.params.flat[...] = backend.to_numpy(model.params.flat).astype(np.float64)
    x = np.random.default_rng(4).random((4, 6)).astype(np.float32)
    terms, grads = model.loss_and_grads(to_xp(x))
    ref_terms, ref_grads = ref.loss_and_grads(x.astype(np.float64))
    assert grads.dtype == np.float32
    assert_matches_numpy(terms["loss"], ref_terms["loss"], dtype=np.float32, err_msg="loss")
    assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="float32 gradients")
    assert_matches_numpy(model.reconstruct(to_xp(x)), ref.reconstruct(x.astype(np.float64)),
                         err_msg="reconstruct")


def test_autoencoder_same_seed_same_weights(backend_name, to_numpy):
    a, b = (Autoencoder(6, 2, (4,), seed=1, backend=backend_name) for _ in range(2))
    np.testing.assert_array_equal(to_numpy(a.params.flat), to_numpy(b.params.flat))
    other = Autoencoder(6, 2, (4,), seed=2, backend=backend_name)
    assert not np.array_equal(to_numpy(a.params.flat), to_numpy(other.params.flat))
    on_numpy = Autoencoder(6, 2, (4,), seed=1).params.flat
    np.testing.assert_array_equal(to_numpy(a.params.flat), on_numpy,
                                  err_msg="the same seed must give the same weights on NumPy")
