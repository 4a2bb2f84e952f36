"""The Autoencoder: its loss gradient by finite differences for both losses; shapes; targets."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae import Autoencoder
from minivae.layers import sigmoid
from minivae.losses import bernoulli_nll, mse


@pytest.mark.parametrize("loss", ["mse", "bernoulli"])
@pytest.mark.parametrize("hidden,activation", [((4,), "relu"), ((4, 3), "tanh"), ((), "relu")])
def test_autoencoder_gradient_every_parameter(loss, hidden, activation):
    model = Autoencoder(5, 2, hidden, loss, activation, dtype="float64", seed=0)
    x = np.random.default_rng(1).random((3, 5))
    terms, grads = model.loss_and_grads(x)
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:
        return model.loss(x)["loss"]

    assert f() == pytest.approx(terms["loss"], rel=1e-12)
    what = f"Autoencoder {loss} hidden={hidden} {activation}"
    err = fd_max_error(what, f, model.params, analytic)
    assert err < 1e-6, f"Autoencoder ({loss}) gradient disagrees with finite differences: {err:.2e}"


def test_denoising_target_gradient():
    model = Autoencoder(5, 2, (4,), "bernoulli", dtype="float64", seed=0)
    rng = np.random.default_rng(2)
    clean = rng.random((3, 5))
    noisy = np.clip(clean + 0.1 * rng.standard_normal((3, 5)), 0, 1)
    _, grads = model.loss_and_grads(noisy, target=clean)
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:
        out = model.decoder.forward(model.params, model.encode(noisy))[0]
        return bernoulli_nll(out, clean)[0]

    err = fd_max_error("Autoencoder denoising target", f, model.params, analytic)
    assert err < 1e-6, f"the gradient must be that of the loss against the target: {err:.2e}"


@pytest.mark.parametrize("loss", ["mse", "bernoulli"])
def test_autoencoder_outputs(loss):
    model = Autoencoder(6, 3, (5,), loss, dtype="float64", seed=0)
    x = np.random.default_rng(3).random((4, 6))
    z = model.encode(x)
    assert z.shape == (4, 3) and model.reconstruct(x).shape == (4, 6)
    out = model.decoder.forward(model.params, z)[0]
    if loss == "bernoulli":
        np.testing.assert_allclose(model.decode(z), sigmoid(out), rtol=1e-15,
                                   err_msg="the bernoulli autoencoder must show sigmoid(logits)")
        assert model.loss(x)["loss"] == pytest.approx(bernoulli_nll(out, x)[0], rel=1e-12)
    else:
        np.testing.assert_array_equal(model.decode(z), out)
        assert model.loss(x)["loss"] == pytest.approx(mse(out, x)[0], rel=1e-12)


def test_autoencoder_same_seed_same_weights():
    a, b = Autoencoder(6, 2, (4,), seed=1), Autoencoder(6, 2, (4,), seed=1)
    np.testing.assert_array_equal(a.params.flat, b.params.flat)
    assert not np.array_equal(a.params.flat, Autoencoder(6, 2, (4,), seed=2).params.flat)
