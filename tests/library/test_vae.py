"""The VAE: the whole negative ELBO's gradient by finite differences, IWAE, reproducibility.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the gradient is
checked by finite differences; on the other backends it must give NumPy's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae import VAE, backend
from minivae.kl import kl_standard_normal

LIKELIHOODS = ["bernoulli", "gaussian", "gaussian_learned"]


def _tiny(likelihood: str, **kwargs) -> tuple[VAE, np.ndarray, np.ndarray]:
    """A float64 VAE with 5 pixels, 2 latents, one hidden layer of 4; a batch of 3 and its eps.

    x and eps are NumPy arrays; pass ``backend=`` to put the model elsewhere.
    """
    kwargs.setdefault("dtype", "float64")
    model = VAE(5, 2, (4,), likelihood, seed=0, **kwargs)
    rng = np.random.default_rng(1)
    x = rng.random((3, 5))  # in [0, 1]: valid for every likelihood
    return model, x, rng.standard_normal((3, 2))


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("activation,beta", [("relu", 1.0), ("tanh", 2.5)])
def test_negative_elbo_gradient_every_parameter(likelihood, activation, beta, backend_name,
                                                to_xp, assert_matches_numpy):
    kwargs = dict(activation=activation, beta=beta, obs_var=0.5)
    model, x, eps = _tiny(likelihood, backend=backend_name, **kwargs)
    terms, grads = model.loss_and_grads(*to_xp(x, eps))
    if backend_name != "numpy":  # the maths is checked once, on NumPy, by finite differences
        ref, _, _ = _tiny(likelihood, **kwargs)
        ref_terms, ref_grads = ref.loss_and_grads(x, eps)
        for key in ("loss", "recon", "kl"):
            assert_matches_numpy(terms[key], ref_terms[key], err_msg=f"{key} on {backend_name}")
        for name in ref_grads:
            assert_matches_numpy(grads[name], ref_grads[name], err_msg=f"gradient of {name}")
        return
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:  # the same eps every time: the loss is a deterministic function of params
        return model.loss(x, eps)["loss"]

    assert f() == pytest.approx(terms["loss"], rel=1e-12)
    err = fd_max_error(f"VAE {likelihood} {activation} beta={beta}", f, model.params, analytic)
    assert err < 1e-6, f"VAE ({likelihood}) gradient disagrees with finite differences: {err:.2e}"


def _float32_with_float64_reference(likelihood: str, backend_name: str):
    """The tiny VAE in float32 on the backend, and in float64 on NumPy with the same weights."""
    model, x, eps = _tiny(likelihood, backend=backend_name, dtype="float32")
    ref, _, _ = _tiny(likelihood)
    ref.params.flat[...] = backend.to_numpy(model.params.flat).astype(np.float64)
    x, eps = x.astype(np.float32), eps.astype(np.float32)
    return model, ref, x, eps


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_loss_and_grads_in_float32_match_float64(likelihood, backend_name, to_xp,
                                                  assert_matches_numpy):
    """float32 (the default) on any backend gives NumPy's float64 numbers to float32 precision."""
    model, ref, x, eps = _float32_with_float64_reference(likelihood, backend_name)
    terms, grads = model.loss_and_grads(*to_xp(x, eps))
    assert grads.dtype == np.float32 and backend.array_module(grads.flat) is model.xp
    ref_terms, ref_grads = ref.loss_and_grads(x.astype(np.float64), eps.astype(np.float64))
    for key in ("loss", "recon", "kl"):
        assert_matches_numpy(terms[key], ref_terms[key], dtype=np.float32, err_msg=key)
    assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="float32 gradients")


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_loss_is_recon_plus_beta_kl(likelihood, backend_name, to_xp):
    model, x, eps = _tiny(likelihood, beta=3.0, backend=backend_name)
    x, eps = to_xp(x, eps)
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
    assert float(model.kl_per_latent(x).sum()) == pytest.approx(terms["kl"], rel=1e-12)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_shapes_of_the_pieces(likelihood, backend_name, xp, to_xp, to_numpy):
    model, x, _ = _tiny(likelihood, backend=backend_name)
    for data in (x, to_xp(x)):  # host data is copied to the backend; backend data is used as is
        mu, logvar = model.encode(data)
        assert mu.shape == (3, 2) and logvar.shape == (3, 2)
        assert model.decode(mu).shape == (3, 5) and model.reconstruct(data).shape == (3, 5)
        outputs = (mu, logvar, model.decode(mu), model.reconstruct(data), model.sample(7))
        assert all(backend.array_module(a) is xp for a in outputs), "a result left the backend"
        assert all(a.dtype == np.float64 for a in outputs), "the model's dtype must be kept"
    assert model.sample(7).shape == (7, 5)
    width = 10 if likelihood == "gaussian_learned" else 5
    assert model.decoder_output(mu).shape == (3, width)
    if likelihood == "bernoulli":
        p = to_numpy(model.sample(50))
        assert np.all((p > 0) & (p < 1)), "a Bernoulli decoder's mean must be a probability"


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_pieces_in_float32_match_float64(likelihood, backend_name, to_xp, assert_matches_numpy):
    model, ref, x, eps = _float32_with_float64_reference(likelihood, backend_name)
    xd, epsd = to_xp(x, eps)
    x64, eps64 = x.astype(np.float64), eps.astype(np.float64)
    for got, expected, what in [
        (model.encode(xd)[0], ref.encode(x64)[0], "mu"),
        (model.encode(xd)[1], ref.encode(x64)[1], "logvar"),
        (model.decode(epsd), ref.decode(eps64), "decode"),
        (model.decoder_output(epsd), ref.decoder_output(eps64), "decoder_output"),
        (model.reconstruct(xd), ref.reconstruct(x64), "reconstruct"),
        (model.kl_per_latent(xd), ref.kl_per_latent(x64), "kl_per_latent"),
    ]:
        assert got.dtype == np.float32, f"{what}: float32 model gave {got.dtype}"
        assert_matches_numpy(got, expected, err_msg=f"{what} on {backend_name}")
    got, expected = model.loss(xd, epsd), ref.loss(x64, eps64)
    for key in expected:
        assert_matches_numpy(got[key], expected[key], dtype=np.float32, err_msg=f"loss {key!r}")


def test_same_seed_same_weights_and_same_eps(backend_name, xp, to_numpy):
    a, b, c = (VAE(8, 3, (6,), seed=s, backend=backend_name) for s in (5, 5, 6))
    np.testing.assert_array_equal(to_numpy(a.params.flat), to_numpy(b.params.flat),
                                  err_msg="same seed, other weights")
    assert not np.array_equal(to_numpy(a.params.flat), to_numpy(c.params.flat)), (
        "different seeds gave equal weights"
    )
    np.testing.assert_array_equal(to_numpy(a.params.flat), VAE(8, 3, (6,), seed=5).params.flat,
                                  err_msg="the same seed must give the same weights on NumPy")
    eps_a, eps_b = a.draw_eps(4), b.draw_eps(4)
    assert backend.array_module(eps_a) is xp, "eps must be drawn on the backend"
    np.testing.assert_array_equal(to_numpy(eps_a), to_numpy(eps_b), err_msg="same seed, other eps")
    x = np.random.default_rng(0).random((4, 8))
    ta, ga = a.loss_and_grads(x)
    tb, gb = b.loss_and_grads(x)
    assert ta == tb, "same seed: the loss with the model's own eps must be identical"
    np.testing.assert_array_equal(to_numpy(ga.flat), to_numpy(gb.flat))
    assert a.draw_eps(4).dtype == np.float32 and a.params.dtype == np.float32, "float32 default"


def _broad_posterior_vae(backend_name: str = "numpy") -> tuple[VAE, np.ndarray]:
    """A VAE on 16 digits whose posterior is too broad (logvar bias +1.5): a loose ELBO."""
    from minivae.data import load_digits

    x = load_digits()[0][:16].astype(np.float64)
    model = VAE(64, 2, (16,), "bernoulli", dtype="float64", seed=0, backend=backend_name)
    last = model.encoder.n_layers - 1
    bias = backend.to_numpy(model.params[f"encoder.b{last}"]).copy()
    bias[2:] += 1.5
    model.params[f"encoder.b{last}"] = bias
    return model, x


def test_iwae_with_k1_is_the_elbo_in_expectation(backend_name, to_xp, to_numpy):
    model, x = _broad_posterior_vae(backend_name)
    reps = 400
    x_rep = to_xp(np.tile(x, (reps, 1)))  # 6400 rows: many independent k=1 estimates
    rng = np.random.default_rng(0)
    log_w = to_numpy(model.log_likelihood(x_rep, k=1, rng=rng))
    neg_loss = -model.loss(x_rep, model.draw_eps(x_rep.shape[0], rng))["loss"]
    se = log_w.std() / np.sqrt(log_w.size)
    assert abs(log_w.mean() - neg_loss) < 4 * np.sqrt(2) * se, (
        f"IWAE with k=1 ({log_w.mean():.3f} +- {se:.3f}) must equal the ELBO -loss "
        f"({neg_loss:.3f}) in expectation"
    )


def test_iwae_bound_does_not_decrease_with_k(backend_name, to_numpy):
    model, x = _broad_posterior_vae(backend_name)
    rng = np.random.default_rng(1)
    means, ses = [], []
    for k in (1, 10, 100, 1000):
        reps = 1000 // k  # the same 1000 samples per image for every k
        est = to_numpy(model.log_likelihood(np.tile(x, (reps, 1)), k=k, rng=rng)).reshape(reps, -1)
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


def test_log_likelihood_is_finite_float64_per_example(backend_name, xp, to_numpy,
                                                      assert_matches_numpy):
    model, x = _broad_posterior_vae(backend_name)
    ll = model.log_likelihood(x[:3], k=5, rng=np.random.default_rng(0))
    assert backend.array_module(ll) is xp, "log p(x) must be computed on the model's backend"
    assert ll.shape == (3,) and ll.dtype == np.float64 and np.all(np.isfinite(to_numpy(ll)))
    chunked = model.log_likelihood(x[:3], k=5, rng=np.random.default_rng(0), max_chunk=64 * 3)
    np.testing.assert_allclose(to_numpy(chunked), to_numpy(ll), rtol=1e-12,
                               err_msg="chunking changed log p(x)")
    # the same host generator gives the same eps on every backend, hence NumPy's numbers
    ref, _ = _broad_posterior_vae()
    assert_matches_numpy(ll, ref.log_likelihood(x[:3], k=5, rng=np.random.default_rng(0)))
    # the model's own generator is the backend's: it must work too
    own = model.log_likelihood(x[:3], k=5)
    assert own.shape == (3,) and np.all(np.isfinite(to_numpy(own)))


def test_backend_outputs_feed_the_host_helpers(backend_name, xp, to_xp, to_numpy):
    """Model outputs on the backend go straight into the NumPy-side helpers (copied to the host),
    and NumPy masks or generators may go with backend data."""
    from minivae import anomaly, data, imputation, masks, metrics, plots

    model, x, _ = _tiny("bernoulli", backend=backend_name, dtype="float32")
    xd = to_xp(x.astype(np.float32))
    samples, mu = model.sample(6), model.encode(xd)[0]
    binary = data.binarize(samples)
    assert type(binary) is np.ndarray and set(np.unique(binary)) <= {0.0, 1.0}
    np.testing.assert_array_equal(binary, (to_numpy(samples) > 0.5).astype(np.float32))
    scaled = data.scale_to_unit(samples)
    assert type(scaled) is np.ndarray and scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_allclose(metrics.latent_activity(mu), to_numpy(mu).astype(np.float64).var(0),
                               rtol=1e-12)
    np.testing.assert_array_equal(plots.tile_images(samples, shape=(1, 5)),
                                  plots.tile_images(to_numpy(samples), shape=(1, 5)))
    assert anomaly.reconstruction_error(model, xd).shape == (3,)
    # a NumPy mask (as mcar_mask gives) with backend data; a NumPy generator for the draws
    mask = masks.mcar_mask((3, 5), 0.4, seed=0)
    filled = imputation.mean_imputation(xd, mask)
    assert backend.array_module(filled) is xp
    np.testing.assert_array_equal(to_numpy(filled)[mask], x.astype(np.float32)[mask])
    imputed = imputation.pseudo_gibbs(model, xd, mask, n_steps=2, seed=np.random.default_rng(0))
    assert backend.array_module(imputed) is xp and imputed.shape == (3, 5)
    for sample_rng in (np.random.default_rng(0), backend.default_rng(0, xp)):
        drawn = model.likelihood.sample(model.decoder_output(mu), sample_rng)
        assert backend.array_module(drawn) is xp and drawn.shape == (3, 5)
