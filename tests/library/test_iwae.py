"""IWAE: the k-sample bound as a training loss, its gradient with the normalised importance weights
by finite differences and PyTorch autograd, k = 1 against the VAE, every backend, checkpoints,
stability for sharp decoders, training.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

from minivae import backend, evaluate, fit, load, rel_error, save
from minivae.importance import log_mean_exp
from minivae.models import IWAE, MODELS, VAE
from minivae.regularizers import FreeBits

LIKELIHOODS = ["bernoulli", "gaussian", "gaussian_learned"]


def _broad(model) -> None:
    """A broader posterior than at initialisation (logvar bias +1): log-weights spread apart,
    so the normalised weights are far from uniform and a mistake in them shows."""
    last = model.encoder.n_layers - 1
    bias = backend.to_numpy(model.params[f"encoder.b{last}"]).astype(np.float64).copy()
    bias[model.z_dim :] += 1.0
    model.params[f"encoder.b{last}"] = bias.astype(model.dtype)


def _tiny(likelihood: str = "bernoulli", k: int = 4, **kwargs):
    kwargs.setdefault("dtype", "float64")
    model = IWAE(5, 2, k=k, hidden=(4,), likelihood=likelihood, seed=0, **kwargs)
    _broad(model)
    rng = np.random.default_rng(1)
    return model, rng.random((3, 5)), rng.standard_normal((k, 3, 2))


def test_the_test_weights_are_far_from_uniform():
    model, x, eps = _tiny()
    samples = model.importance_samples(x, 4, eps=eps)
    w = np.exp(samples.log_w - log_mean_exp(samples.log_w, 0) - np.log(4))
    assert w.max() > 0.5 and w.min() < 0.1, f"weights too uniform to test: {np.round(w, 3)}"


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("k,beta,activation", [(4, 1.0, "relu"), (3, 0.6, "tanh"),
                                               (1, 1.0, "relu")])
def test_every_gradient_finite_differences(likelihood, k, beta, activation, backend_name, to_xp,
                                           assert_matches_numpy):
    kwargs = dict(beta=beta, activation=activation, obs_var=0.5)
    model, x, eps = _tiny(likelihood, k, backend=backend_name, **kwargs)
    terms, grads = model.loss_and_grads(*to_xp(x, eps))
    if backend_name != "numpy":
        ref, _, _ = _tiny(likelihood, k, **kwargs)
        ref_terms, ref_grads = ref.loss_and_grads(x, eps)
        for key in ref_terms:
            assert_matches_numpy(terms[key], ref_terms[key], err_msg=key)
        assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="gradients")
        return
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:
        return model.loss(x, eps)["loss"]

    assert f() == pytest.approx(terms["loss"], rel=1e-12)
    err = fd_max_error(f"IWAE {likelihood} k={k} beta={beta}", f, model.params, analytic)
    assert err < 1e-6, f"IWAE gradient disagrees with finite differences: {err:.2e}"


def test_loss_is_the_k_sample_bound_of_minivae_importance():
    """loss = -mean_b log (1/k) sum_i w_i with the VAE's own importance samples (same eps), and
    it is at most the k-sample average negative ELBO (Jensen)."""
    model, x, eps = _tiny(k=6)
    eps = np.random.default_rng(3).standard_normal((6, 3, 2))
    terms = model.loss(x, eps)
    samples = model.importance_samples(x, 6, eps=eps)
    assert terms["loss"] == pytest.approx(-float(log_mean_exp(samples.log_w, 0).mean()),
                                          rel=1e-12)
    assert terms["recon"] == pytest.approx(-float(samples.log_px_z.mean()), rel=1e-12)
    assert terms["kl"] == pytest.approx(float((samples.log_qz - samples.log_pz).mean()),
                                        rel=1e-12)
    assert terms["loss"] < terms["recon"] + terms["kl"], "L_k must be above the average ELBO"


def test_k1_equals_the_vae_loss_and_decoder_gradients_exactly():
    """k = 1: the VAE's negative ELBO with the KL estimated by the same sample. The loss differs
    from the VAE's (closed-form KL) by exactly that estimator's error, the decoder gradients are
    identical, and the encoder's differ by exactly the gradient of (sampled KL - closed-form KL)."""
    iwae, x, eps = _tiny(k=1)
    vae = VAE(5, 2, (4,), dtype="float64", seed=0)
    vae.params.flat[...] = iwae.params.flat
    i_terms, i_grads = iwae.loss_and_grads(x, eps)
    i_grads = {n: np.array(g) for n, g in i_grads.items()}
    v_terms, v_grads = vae.loss_and_grads(x, eps[0])
    assert i_terms["recon"] == pytest.approx(v_terms["recon"], rel=1e-13)
    mu, logvar = vae.encode(x)
    z = mu + np.exp(0.5 * logvar) * eps[0]
    sampled_kl = float(np.mean(0.5 * (z**2).sum(1) - 0.5 * (eps[0] ** 2 + logvar).sum(1)))
    assert i_terms["kl"] == pytest.approx(sampled_kl, rel=1e-12)
    assert i_terms["loss"] == pytest.approx(v_terms["recon"] + sampled_kl, rel=1e-12)
    for name in v_grads:
        if name.startswith("decoder."):
            np.testing.assert_allclose(i_grads[name], v_grads[name], rtol=1e-13, atol=1e-15,
                                       err_msg=f"{name}: k=1 decoder gradient differs from VAE")
    # d(sampled KL - closed-form KL)/d(mu, logvar), then through the VAE's encoder
    n, std = x.shape[0], np.exp(0.5 * logvar)
    dmu = (z - mu) / n
    dlogvar = (z * eps[0] * 0.5 * std - 0.5 - 0.5 * (np.exp(logvar) - 1)) / n
    _, enc_cache = vae.encoder.forward(vae.params, x)
    _, diff = vae.encoder.backward(np.concatenate([dmu, dlogvar], 1), enc_cache, None)
    for name, g in diff.items():
        np.testing.assert_allclose(i_grads[name], np.array(v_grads[name]) + g, rtol=1e-11,
                                   atol=1e-14, err_msg=f"{name}: k=1 encoder gradient")


@pytest.mark.slow
def test_k1_equals_the_vae_loss_in_expectation():
    iwae, x, _ = _tiny(k=1)
    vae = VAE(5, 2, (4,), dtype="float64", seed=0)
    vae.params.flat[...] = iwae.params.flat
    rng = np.random.default_rng(0)
    x_rep = np.tile(x, (4000, 1))
    eps = rng.standard_normal((1, x_rep.shape[0], 2))
    per_row = iwae.importance_samples(x_rep, 1, eps=eps).log_w[0]
    vae_loss = vae.loss(x_rep, eps[0])["loss"]
    se = per_row.std() / np.sqrt(per_row.size)
    assert abs(-per_row.mean() - vae_loss) < 4 * se, (
        f"IWAE k=1 loss {-per_row.mean():.4f} +- {se:.4f} vs VAE loss {vae_loss:.4f}"
    )


def test_gradient_is_the_normalised_weight_average_of_per_sample_gradients():
    """d L_k = sum_i w~_i d log w_i: the gradient of the k-sample IWAE equals the w~-weighted sum
    of the k one-sample (k = 1) IWAE gradients, each taken with its own eps_i."""
    model, x, eps = _tiny(k=5)
    eps = np.random.default_rng(7).standard_normal((5, 3, 2))
    _, grads = model.loss_and_grads(x, eps)
    total = np.array(grads.flat)
    one = IWAE(5, 2, k=1, hidden=(4,), dtype="float64", seed=0)
    one.params.flat[...] = model.params.flat
    log_w = model.importance_samples(x, 5, eps=eps).log_w  # (5, 3)
    w_tilde = np.exp(log_w - log_mean_exp(log_w, 0) - np.log(5))
    expected = np.zeros_like(total)
    for b in range(3):  # one example at a time: its loss is -L_k(x_b) / batch
        for i in range(5):
            _, g = one.loss_and_grads(x[b : b + 1], eps[i : i + 1, b : b + 1])
            expected += w_tilde[i, b] * np.array(g.flat) / 3
    err = rel_error(total, expected)
    report("FD-ERR", "IWAE gradient vs sum_i w~_i grad log w_i", err)
    assert err < 1e-12
    uniform = np.zeros_like(total)
    for b in range(3):
        for i in range(5):
            _, g = one.loss_and_grads(x[b : b + 1], eps[i : i + 1, b : b + 1])
            uniform += np.array(g.flat) / 15
    assert rel_error(total, uniform) > 1e-2, "the weights must not be uniform 1/k here"


def test_negligible_importance_weights_are_set_to_zero_without_changing_the_gradient():
    """A sample far in the tail (w~ < 2**-64) adds nothing visible to the gradient, but times a
    dlogit its float32 gradient rows would be subnormal (100x slower in sgemm): they are zeros."""
    model, x, _ = _tiny(k=3)
    eps = np.random.default_rng(8).standard_normal((3, 3, 2))
    # sample 2 of row 0 in the tail: w~ = e**-84, a normal float32 whose products are not
    eps[2, 0] = [6.3, -6.3]
    log_w = model.importance_samples(x, 3, eps=eps).log_w
    w_tilde = np.exp(log_w - log_mean_exp(log_w, 0) - np.log(3))
    assert np.exp(-85) < w_tilde[2, 0] < np.exp(-84) and w_tilde[:, 1:].min() > 1e-3
    _, grads = model.loss_and_grads(x, eps)
    one = IWAE(5, 2, k=1, hidden=(4,), dtype="float64", seed=0)
    one.params.flat[...] = model.params.flat
    expected = np.zeros_like(np.array(grads.flat))
    for b in range(3):
        for i in range(3):  # every sample, the negligible one included
            _, g = one.loss_and_grads(x[b : b + 1], eps[i : i + 1, b : b + 1])
            expected += w_tilde[i, b] * np.array(g.flat) / 3
    assert rel_error(np.array(grads.flat), expected) < 1e-13

    model32 = IWAE(5, 2, k=3, hidden=(4,), seed=0)  # float32, the same weights
    model32.params.flat[...] = model.params.flat.astype(np.float32)
    seen = []
    backward = model32.decoder.backward
    model32.decoder.backward = lambda dout, *a, **k: (seen.append(np.array(dout)),
                                                      backward(dout, *a, **k))[1]
    model32.loss_and_grads(x.astype(np.float32), eps.astype(np.float32))
    dout = seen[0]
    tiny = np.finfo(np.float32).tiny
    assert np.all((dout == 0) | (np.abs(dout) >= tiny)), "subnormal entries in the decoder's dout"
    assert np.all(dout[2 * 3 + 0] == 0)  # the far sample's row (sample-major: i * batch + b)


def test_loss_and_gradients_equal_torch_autograd():
    torch = pytest.importorskip("torch")
    from test_torch_crosscheck import _compare_grads, _twin

    k, n, d, D = 5, 4, 3, 7
    model = IWAE(D, d, k=k, hidden=(6,), likelihood="gaussian_learned", beta=0.8,
                 activation="tanh", dtype="float64", seed=2)
    _broad(model)
    rng = np.random.default_rng(3)
    x = rng.random((n, D))
    eps = rng.standard_normal((k, n, d))
    terms, grads = model.loss_and_grads(x, eps)

    enc = _twin(model.encoder, model.params, "tanh")
    dec = _twin(model.decoder, model.params, "tanh")
    tx, teps = torch.from_numpy(x), torch.from_numpy(eps)
    h = enc(tx)
    mu, logvar = h[:, :d], h[:, d:]
    z = mu + torch.exp(0.5 * logvar) * teps
    out = dec(z.reshape(k * n, d))
    mean, out_logvar = out[:, :D], out[:, D:]
    log_px = torch.distributions.Normal(mean, torch.exp(0.5 * out_logvar)).log_prob(
        tx.repeat(k, 1)).sum(-1).reshape(k, n)
    log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_qz = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    bound = torch.logsumexp(log_px + 0.8 * (log_pz - log_qz), dim=0) - np.log(k)
    loss = -bound.mean()
    loss.backward()
    err = max(rel_error(terms["loss"], loss.item()),
              rel_error(terms["recon"], -log_px.mean().item()),
              rel_error(terms["kl"], (log_qz - log_pz).mean().item()))
    report("TORCH-ERR", "IWAE loss/recon/kl", err)
    assert err < 1e-10
    err = max(_compare_grads("IWAE encoder grads", model.encoder, enc, grads),
              _compare_grads("IWAE decoder grads", model.decoder, dec, grads))
    assert err < 1e-10, f"an IWAE gradient differs from torch autograd: {err:.2e}"


def test_sharp_decoder_log_weights_near_minus_ten_thousand_stay_finite(backend_name, to_xp,
                                                                       to_numpy):
    model = IWAE(64, 2, k=8, hidden=(8,), likelihood="gaussian", obs_var=1e-4, seed=0,
                 backend=backend_name)
    x = np.random.default_rng(0).random((5, 64)).astype(np.float32)
    terms, grads = model.loss_and_grads(to_xp(x))
    assert terms["loss"] > 1e4 and np.isfinite(terms["loss"])
    assert np.all(np.isfinite(to_numpy(grads.flat))), "exp of -1e4 underflows: subtract the max"


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_float32_on_every_backend_matches_float64(likelihood, backend_name, to_xp,
                                                  assert_matches_numpy):
    model, _, _ = _tiny(likelihood, dtype="float32", backend=backend_name)
    ref, x, eps = _tiny(likelihood)
    ref.params.flat[...] = backend.to_numpy(model.params.flat).astype(np.float64)
    terms, grads = model.loss_and_grads(*to_xp(x.astype(np.float32), eps.astype(np.float32)))
    ref_terms, ref_grads = ref.loss_and_grads(x, eps)
    for key in ref_terms:
        assert_matches_numpy(terms[key], ref_terms[key], dtype=np.float32, err_msg=key)
    assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="float32 gradients")


def test_masked_data(backend_name, to_xp):
    model, x, eps = _tiny(backend=backend_name)
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1]], dtype=bool)
    terms, _ = model.loss_and_grads(to_xp(np.where(mask, x, np.nan)), to_xp(eps),
                                    mask=to_xp(mask))
    ref, _, _ = _tiny()
    samples = ref.importance_samples(ref.prepare(np.where(mask, x, 0.0), mask=mask), 4, eps=eps)
    assert terms["loss"] == pytest.approx(-float(log_mean_exp(samples.log_w, 0).mean()),
                                          rel=1e-12)


def test_checkpoint_round_trip(tmp_path, backend_name, to_xp, to_numpy):
    model, x, eps = _tiny(k=3, dtype="float32", backend=backend_name, beta=0.9)
    eps = eps[:3]
    again = load(save(model, tmp_path / "iwae.npz"), backend=backend_name)
    assert type(again) is IWAE and again.k == 3 and again.config() == model.config()
    assert MODELS["IWAE"] is IWAE
    np.testing.assert_array_equal(to_numpy(again.params.flat), to_numpy(model.params.flat))
    xd, epsd = to_xp(x.astype(np.float32), eps.astype(np.float32))
    assert again.loss(xd, epsd) == model.loss(xd, epsd)


def test_same_seed_same_numbers_and_eps_shape(backend_name, to_numpy):
    a, b = (IWAE(8, 3, k=4, hidden=(6,), seed=5, backend=backend_name) for _ in range(2))
    eps = a.draw_eps(7)
    assert eps.shape == (4, 7, 3)
    np.testing.assert_array_equal(to_numpy(eps), to_numpy(b.draw_eps(7)))
    x = np.random.default_rng(0).random((4, 8)).astype(np.float32)
    ta, ga = a.loss_and_grads(x)
    tb, gb = b.loss_and_grads(x)
    assert ta == tb
    np.testing.assert_array_equal(to_numpy(ga.flat), to_numpy(gb.flat))


@pytest.mark.slow
def test_training_lowers_the_held_out_bound_and_is_reproducible():
    from minivae.data import binarize, load_digits

    x = binarize(load_digits()[0])
    x_train, x_val = x[:400], x[400:600]

    def run() -> tuple[float, float]:
        model = IWAE(64, 4, k=5, hidden=(32,), seed=0)
        before = evaluate(model, x_val)["loss"]
        fit(model, x_train, epochs=15, batch_size=50, lr=3e-3, progress=False)
        return before, evaluate(model, x_val)["loss"]

    before, after = run()
    assert after < before - 5, f"training should lower the bound: {before:.2f} -> {after:.2f}"
    assert run() == (before, after)


def test_bad_input():
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        IWAE(5, 2, k=0)
    with pytest.raises(TypeError, match="k must be a positive integer"):
        IWAE(5, 2, k=2.5)
    model, x, eps = _tiny(k=4)
    with pytest.raises(ValueError, match=r"eps must have 3 axes"):
        model.loss(x, eps[0])
    with pytest.raises(ValueError, match=r"eps must be \(k, batch, z_dim\) = \(4, 3, 2\) for an "
                                         r"IWAE with k = 4, got \(2, 3, 2\)"):
        model.loss(x, eps[:2])
    model.regularizer = FreeBits(0.5)
    with pytest.raises(TypeError, match="a KL regularizer \\(FreeBits\\) has no meaning"):
        model.loss(x, eps)
