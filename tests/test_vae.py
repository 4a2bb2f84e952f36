"""The VAE: the whole negative ELBO's gradient by finite differences, IWAE, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae import VAE
from minivae.kl import kl_standard_normal

LIKELIHOODS = ["bernoulli", "gaussian", "gaussian_learned"]


def _tiny(likelihood: str, **kwargs) -> tuple[VAE, np.ndarray, np.ndarray]:
    """A float64 VAE with 5 pixels, 2 latents, one hidden layer of 4; a batch of 3 and its eps."""
    model = VAE(5, 2, (4,), likelihood, dtype="float64", seed=0, **kwargs)
    rng = np.random.default_rng(1)
    x = rng.random((3, 5))  # in [0, 1]: valid for every likelihood
    return model, x, rng.standard_normal((3, 2))


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("activation,beta", [("relu", 1.0), ("tanh", 2.5)])
def test_negative_elbo_gradient_every_parameter(likelihood, activation, beta):
    model, x, eps = _tiny(likelihood, activation=activation, beta=beta, obs_var=0.5)
    terms, grads = model.loss_and_grads(x, eps)
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:  # the same eps every time: the loss is a deterministic function of params
        return model.loss(x, eps)["loss"]

    assert f() == pytest.approx(terms["loss"], rel=1e-12)
    err = fd_max_error(f"VAE {likelihood} {activation} beta={beta}", f, model.params, analytic)
    assert err < 1e-6, f"VAE ({likelihood}) gradient disagrees with finite differences: {err:.2e}"


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_loss_is_recon_plus_beta_kl(likelihood):
    model, x, eps = _tiny(likelihood, beta=3.0)
    terms, _ = model.loss_and_grads(x, eps)
    assert terms["loss"] == pytest.approx(terms["recon"] + 3.0 * terms["kl"], rel=1e-12), (
        "loss must be recon + beta * kl"
    )
    mu, logvar = model.encode(x)
    assert terms["kl"] == pytest.approx(kl_standard_normal(mu, logvar)[0], rel=1e-12)
    again = model.loss(x, eps)
    for key in ("loss", "recon", "kl"):
        assert again[key] == pytest.approx(terms[key], rel=1e-12), f"loss()[{key!r}] differs"
    assert model.kl_per_latent(x).shape == (2,)
    assert model.kl_per_latent(x).sum() == pytest.approx(terms["kl"], rel=1e-12)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_shapes_of_the_pieces(likelihood):
    model, x, _ = _tiny(likelihood)
    mu, logvar = model.encode(x)
    assert mu.shape == (3, 2) and logvar.shape == (3, 2)
    assert model.decode(mu).shape == (3, 5) and model.reconstruct(x).shape == (3, 5)
    assert model.sample(7).shape == (7, 5)
    width = 10 if likelihood == "gaussian_learned" else 5
    assert model.decoder_output(mu).shape == (3, width)
    if likelihood == "bernoulli":
        p = model.sample(50)
        assert np.all((p > 0) & (p < 1)), "a Bernoulli decoder's mean must be a probability"


def test_same_seed_same_weights_and_same_eps():
    a, b, c = VAE(8, 3, (6,), seed=5), VAE(8, 3, (6,), seed=5), VAE(8, 3, (6,), seed=6)
    np.testing.assert_array_equal(a.params.flat, b.params.flat, err_msg="same seed, other weights")
    assert not np.array_equal(a.params.flat, c.params.flat), "different seeds gave equal weights"
    np.testing.assert_array_equal(a.draw_eps(4), b.draw_eps(4), err_msg="same seed, other eps")
    x = np.random.default_rng(0).random((4, 8))
    ta, ga = a.loss_and_grads(x)
    tb, gb = b.loss_and_grads(x)
    assert ta == tb, "same seed: the loss with the model's own eps must be identical"
    np.testing.assert_array_equal(ga.flat, gb.flat)
    assert a.draw_eps(4).dtype == np.float32 and a.params.dtype == np.float32, "float32 default"


def _broad_posterior_vae() -> tuple[VAE, np.ndarray]:
    """A VAE on 16 digits whose posterior is too broad (logvar bias +1.5): a loose ELBO."""
    from minivae.data import load_digits

    x = load_digits()[0][:16].astype(np.float64)
    model = VAE(64, 2, (16,), "bernoulli", dtype="float64", seed=0)
    last = model.encoder.n_layers - 1
    bias = np.array(model.params[f"encoder.b{last}"])
    bias[2:] += 1.5
    model.params[f"encoder.b{last}"] = bias
    return model, x


def test_iwae_with_k1_is_the_elbo_in_expectation():
    model, x = _broad_posterior_vae()
    reps = 400
    x_rep = np.tile(x, (reps, 1))  # 6400 rows: many independent k=1 estimates
    rng = np.random.default_rng(0)
    log_w = model.log_likelihood(x_rep, k=1, rng=rng)
    neg_loss = -model.loss(x_rep, model.draw_eps(x_rep.shape[0], rng))["loss"]
    se = log_w.std() / np.sqrt(log_w.size)
    assert abs(log_w.mean() - neg_loss) < 4 * np.sqrt(2) * se, (
        f"IWAE with k=1 ({log_w.mean():.3f} +- {se:.3f}) must equal the ELBO -loss "
        f"({neg_loss:.3f}) in expectation"
    )


def test_iwae_bound_does_not_decrease_with_k():
    model, x = _broad_posterior_vae()
    rng = np.random.default_rng(1)
    means, ses = [], []
    for k in (1, 10, 100, 1000):
        reps = 1000 // k  # the same 1000 samples per image for every k
        est = model.log_likelihood(np.tile(x, (reps, 1)), k=k, rng=rng).reshape(reps, -1)
        per_rep = est.mean(axis=1)
        means.append(per_rep.mean())
        ses.append(per_rep.std() / np.sqrt(reps) if reps > 1 else 0.0)
    print("IWAE means for k = 1, 10, 100, 1000:", np.round(means, 3))
    for i in range(3):
        tol = 3 * np.hypot(ses[i], ses[i + 1])
        assert means[i + 1] >= means[i] - tol, (
            f"the IWAE bound decreased from {means[i]:.3f} to {means[i + 1]:.3f} as k grew"
        )
    assert means[-1] > means[0] + 3 * ses[0], "k=1000 must be tighter than k=1 here"


def test_log_likelihood_is_finite_float64_per_example():
    model, x = _broad_posterior_vae()
    ll = model.log_likelihood(x[:3], k=5, rng=np.random.default_rng(0))
    assert ll.shape == (3,) and ll.dtype == np.float64 and np.all(np.isfinite(ll))
    chunked = model.log_likelihood(x[:3], k=5, rng=np.random.default_rng(0), max_chunk=64 * 3)
    np.testing.assert_allclose(chunked, ll, rtol=1e-12, err_msg="chunking changed log p(x)")
