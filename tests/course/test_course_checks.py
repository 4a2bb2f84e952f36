"""The chapter modules of minivae.course (ch00 ... ch06, and chapter 10's data-parallel check):
their reference maths agrees with the library, and each check passes the reference itself and
fails a wrong function with a message that names the slip (the planted mistakes in
tests/mistakes/ test them through the notebooks)."""

from __future__ import annotations

import numpy as np
import pytest

from minivae import VAE, Autoencoder
from minivae.course import (
    ch00_backprop,
    ch01_autoencoders,
    ch02_elbo,
    ch03_vae,
    ch04_beta_vae,
    ch05_imputation,
    ch06_gpu,
)
from minivae.course.feedback import ExerciseError
from minivae.optim import Adam


def test_adam_reference_is_minivae_adam():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4))
    params = {"p": p0.copy()}
    optimizer = Adam(params, lr=0.05, betas=(0.8, 0.99), eps=1e-6)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t in range(1, 6):
        g = rng.normal(size=p0.shape)
        optimizer.step({"p": g})
        p, m, v = ch00_backprop.adam_reference(
            p, g, m, v, t, lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6
        )
    np.testing.assert_allclose(p, params["p"], rtol=1e-12, atol=1e-14)


def test_autoencoder_references_are_minivae_autoencoder():
    model, params = ch01_autoencoders.make_model(6, 2, (5, 4), loss="bernoulli", seed=1)
    assert isinstance(model, Autoencoder)
    x = np.random.default_rng(1).uniform(size=(7, 6))
    _, logits, cache = ch01_autoencoders.autoencoder_forward(params, x)
    _, dlogits = ch01_autoencoders.bce_with_logits(logits, x)
    grads = ch01_autoencoders.autoencoder_backward(dlogits, cache)
    terms, grads_ref = model.loss_and_grads(x)
    assert ch01_autoencoders.bce_with_logits(logits, x)[0] == pytest.approx(
        terms["loss"], rel=1e-12
    )
    for name in params:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-10, atol=1e-13)


def test_negative_elbo_reference_is_minivae_vae():
    model = VAE(x_dim=12, z_dim=3, hidden=(5,), activation="tanh", dtype="float64", seed=3)
    params = {name: np.array(value) for name, value in model.params.items()}
    rng = np.random.default_rng(2)
    x = (rng.random((4, 12)) > 0.5).astype(float)
    eps = rng.standard_normal((4, 3))
    terms, grads = ch03_vae.negative_elbo_and_grads(params, x, eps)
    terms_ref, grads_ref = model.loss_and_grads(x, eps)
    for key in ("loss", "recon", "kl"):
        assert terms[key] == pytest.approx(terms_ref[key], rel=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-10, atol=1e-13)


def test_iwae_reference_is_minivae_log_likelihood():
    model = VAE(x_dim=64, z_dim=4, hidden=(16,), dtype="float64", seed=1)
    x = (np.random.default_rng(3).random((5, 64)) > 0.5).astype(float)
    eps = np.random.default_rng(4).standard_normal((30, 5, 4))
    np.testing.assert_allclose(
        ch03_vae.iwae_log_likelihood(model, x, eps),
        model.log_likelihood(x, k=30, rng=np.random.default_rng(4)),
        rtol=1e-10,
    )


def test_importance_weighted_imputation_pieces_give_the_library_result():
    model = VAE(x_dim=64, z_dim=4, hidden=(16,), dtype="float64", seed=2)
    rng = np.random.default_rng(5)
    x = rng.random((6, 64))
    mask = rng.random((6, 64)) > 0.4
    eps = rng.standard_normal((20, 6, 4))
    parts = ch05_imputation.iw_parts(model, x, mask, eps)
    mine = ch05_imputation.iw_impute(parts, x, mask, parts["px"] + parts["pz"] - parts["qz"])
    library = ch05_imputation.importance_weighted_imputation(model, x, mask, eps=eps)
    np.testing.assert_allclose(mine, library, rtol=1e-9, atol=1e-12)


def test_the_checks_pass_the_references():
    rng = np.random.default_rng(6)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    ch02_elbo.check_kl_standard_normal(ch02_elbo.reference_kl, mu, logvar)
    ch02_elbo.check_kl_monte_carlo(
        ch02_elbo.kl_monte_carlo, mu, logvar, rng.standard_normal((9, 5, 3))
    )
    ch03_vae.check_reparameterize(ch03_vae.reparameterize, mu, logvar, rng.normal(size=(5, 3)))
    ch04_beta_vae.check_active_units(ch04_beta_vae.active_units, rng.normal(size=(40, 3)))
    scores, labels = rng.normal(size=20).round(1), np.r_[np.ones(6, int), np.zeros(14, int)]
    ch05_imputation.check_roc_auc(ch05_imputation.roc_auc, scores, labels)
    ch06_gpu.check_softplus(ch06_gpu.reference_softplus, np.linspace(-1e4, 1e4, 9))


def test_a_check_names_the_slip_and_never_blames_the_reference_input():
    rng = np.random.default_rng(7)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))

    def kl_in_place(mu, logvar):  # right numbers, but mu is overwritten
        kl, dmu, dlogvar = ch02_elbo.reference_kl(mu, logvar)
        mu *= 0.0
        return kl, dmu, dlogvar

    with pytest.raises(ExerciseError, match="changed its argument `mu` in place"):
        ch02_elbo.check_kl_standard_normal(kl_in_place, mu, logvar)
    assert np.all(mu != 0), "the test's own mu is untouched"

    def kl_bits(mu, logvar):
        kl, dmu, dlogvar = ch02_elbo.reference_kl(mu, logvar)
        return kl / np.log(2), dmu, dlogvar

    with pytest.raises(ExerciseError, match="bits instead of nats"):
        ch02_elbo.check_kl_standard_normal(kl_bits, mu, logvar)


def test_a_warm_up_that_returns_1_after_the_warm_up_is_named():
    def warmup(step, warmup_steps, beta_max=1.0):
        return beta_max * step / warmup_steps if step < warmup_steps else 1.0

    with pytest.raises(ExerciseError, match="after the warm-up your schedule returns 1"):
        ch04_beta_vae.check_kl_warmup_schedule(warmup)


def test_a_peer_that_left_is_explained_however_gloo_words_it():
    """average_gradients' check in two processes: when the learner's code makes a peer leave, gloo
    says "Connection closed by peer", "Connection reset by peer" or "Broken pipe" (whichever side
    notices first, a race); each gets the collective's explanation, not gloo's raw text."""
    pytest.importorskip("torch")
    from minivae.course import ch10_pytorch

    rng = np.random.default_rng(0)
    model = VAE(6, 2, (4,), dtype="float64", seed=0)
    x, eps = rng.random((4, 6)), rng.standard_normal((4, 2))
    for words in ("Connection closed by peer [127.0.0.1]:1234",
                  "[gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:11394: Connection "
                  "reset by peer",
                  "[gloo/transport/tcp/pair.cc:598] Write error [127.0.0.1]:11394: Broken pipe"):
        def fn(_model, _words=words):
            raise RuntimeError(_words)

        with pytest.raises(ExerciseError, match="Every process must call dist.all_reduce"):
            ch10_pytorch.check_average_gradients(fn, model, x, eps, timeout=20)
