"""FlowVAE: every gradient by finite differences and PyTorch autograd, log p(x) against an exact
quadrature (the test that a density bug cannot pass), every backend, checkpoints, training.

The encoder's flow outputs are pushed to O(1) values with both signs of wᵀu (``_spread_flow``):
at initialisation they are all near 0, where a ‖w‖ for ‖w‖², a flipped log-det or the prior
evaluated at z_0 instead of z_K change the loss by too little to see.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

from minivae import backend, evaluate, fit, load, rel_error, save
from minivae.importance import log_mean_exp
from minivae.models import MODELS, VAE, FlowVAE

LIKELIHOODS = ["bernoulli", "gaussian", "gaussian_learned"]


def _spread_flow(model: FlowVAE, seed: int = 0) -> None:
    """Set the encoder's last-layer bias so every step's (u, w, b) is O(1), wᵀu of both signs."""
    rng = np.random.default_rng(seed)
    d, k = model.z_dim, model.n_flows
    last = model.encoder.n_layers - 1
    bias = backend.to_numpy(model.params[f"encoder.b{last}"]).astype(np.float64).copy()
    w = rng.normal(size=(k, d)) * 1.2
    sign = np.where(np.arange(k) % 2 == 0, 1.0, -1.0)[:, None]
    u = sign * 2.0 * w / np.linalg.norm(w, axis=1, keepdims=True) + 0.3 * rng.normal(size=(k, d))
    bias[2 * d : 2 * d + k * d] = u.ravel()
    bias[2 * d + k * d : 2 * d + 2 * k * d] = w.ravel()
    bias[2 * d + 2 * k * d :] = rng.normal(size=k)
    bias[d : 2 * d] -= 0.5  # a narrower q_0 than the prior
    model.params[f"encoder.b{last}"] = bias.astype(model.dtype)


def _tiny(likelihood: str = "bernoulli", **kwargs) -> tuple[FlowVAE, np.ndarray, np.ndarray]:
    kwargs.setdefault("dtype", "float64")
    kwargs.setdefault("n_flows", 3)
    model = FlowVAE(5, 2, hidden=(4,), likelihood=likelihood, seed=0, **kwargs)
    if model.n_flows:
        _spread_flow(model)
    rng = np.random.default_rng(1)
    return model, rng.random((3, 5)), rng.standard_normal((3, 2))


def _wu(model: FlowVAE, x: np.ndarray) -> np.ndarray:
    _, _, steps = model.flow_posterior(x)
    return np.concatenate([backend.to_numpy((u * w).sum(axis=-1)) for u, w, _ in steps])


def test_the_test_model_has_both_signs_of_wu():
    model, x, _ = _tiny()
    a = _wu(model, x)
    assert (a < -0.5).any() and (a > 0.5).any(), f"wᵀu must take both signs: {np.round(a, 2)}"


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("activation,beta,n_flows,base_kl", [
    ("relu", 1.0, 3, "closed_form"), ("tanh", 0.6, 2, "sampled"), ("relu", 1.3, 2, "closed_form"),
    ("relu", 1.0, 0, "sampled")])
def test_every_gradient_finite_differences(likelihood, activation, beta, n_flows, base_kl,
                                           backend_name, to_xp, assert_matches_numpy):
    kwargs = dict(activation=activation, beta=beta, obs_var=0.5, n_flows=n_flows, base_kl=base_kl)
    model, x, eps = _tiny(likelihood, backend=backend_name, **kwargs)
    terms, grads = model.loss_and_grads(*to_xp(x, eps))
    if backend_name != "numpy":  # checked once on NumPy; the other backends must agree
        ref, _, _ = _tiny(likelihood, **kwargs)
        ref_terms, ref_grads = ref.loss_and_grads(x, eps)
        for key in ref_terms:
            assert_matches_numpy(terms[key], ref_terms[key], err_msg=key)
        assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="gradients")
        return
    assert terms["loss"] == pytest.approx(terms["recon"] + beta * terms["kl"], rel=1e-12)
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:
        return model.loss(x, eps)["loss"]

    assert f() == pytest.approx(terms["loss"], rel=1e-12)
    err = fd_max_error(f"FlowVAE {likelihood} {activation} beta={beta} K={n_flows} {base_kl}", f,
                       model.params, analytic)
    assert err < 1e-6, f"FlowVAE gradient disagrees with finite differences: {err:.2e}"


def test_loss_terms_match_the_importance_weights_of_the_same_sample():
    """'sampled': -loss = log p(x|z_K) + log p(z_K) - log q_K(z_K|x) for one shared eps (beta 1);
    'closed_form': the same recon, and kl = KL(q_0 || p) + log p(z_0) - log p(z_K) - log|det|."""
    model, x, eps = _tiny(base_kl="sampled")
    terms = model.loss(x, eps)
    samples = model.importance_samples(x, 1, eps=eps[None])
    assert -terms["loss"] == pytest.approx(float(samples.log_w.mean()), rel=1e-12)
    assert terms["recon"] == pytest.approx(-float(samples.log_px_z.mean()), rel=1e-12)
    assert terms["kl"] == pytest.approx(float((samples.log_qz - samples.log_pz).mean()), rel=1e-12)
    # and log q_K is q_0's density minus the log-determinant of the same draw
    z0, z_k, log_q = model.posterior_sample(x, eps)
    mu, logvar = model.posterior(x)
    np.testing.assert_allclose(z0, mu + np.exp(0.5 * logvar) * eps, rtol=1e-13)
    np.testing.assert_allclose(log_q, samples.log_qz[0], rtol=1e-12)
    log_q0 = -0.5 * (eps**2 + np.log(2 * np.pi) + logvar).sum(1)
    log_det = log_q0 - log_q
    assert terms["log_det"] == pytest.approx(float(log_det.mean()), rel=1e-12)

    closed, _, _ = _tiny()  # the same weights, the default estimator
    c_terms = closed.loss(x, eps)
    assert c_terms["recon"] == terms["recon"] and c_terms["log_det"] == terms["log_det"]
    kl_q0 = (-0.5 * (1 + logvar - mu**2 - np.exp(logvar))).sum(1)
    log_p = lambda z: -0.5 * (z**2 + np.log(2 * np.pi)).sum(-1)  # noqa: E731
    expected = np.mean(kl_q0 + log_p(z0) - log_p(z_k) - log_det)
    assert c_terms["kl"] == pytest.approx(float(expected), rel=1e-12)


def _exact_log_px(model: FlowVAE, x: np.ndarray, half_width: float = 7.0, n: int = 501):
    """log p(x) = log ∫ p(x|z) p(z) dz by a 2-D grid quadrature (z_dim = 2): (batch,)."""
    grid = np.linspace(-half_width, half_width, n)
    g1, g2 = np.meshgrid(grid, grid)
    z = np.stack([g1.ravel(), g2.ravel()], axis=1)
    out = model.decoder_output(z)
    log_pz = -0.5 * (z**2).sum(1) - np.log(2 * np.pi)
    cell = np.log((grid[1] - grid[0]) ** 2)
    return np.array([log_mean_exp(model.likelihood.log_prob(out, np.tile(row, (len(z), 1)))
                                  + log_pz, axis=0) + np.log(len(z)) + cell for row in x])


def test_log_likelihood_matches_an_exact_quadrature_and_the_elbo_is_below_it():
    """The IWAE estimate with the flow posterior as proposal is unbiased for p(x) only if
    log q_K is the true density of z_K: a flipped or batch-summed log-det, ‖w‖ for ‖w‖², or
    p(z_0) for p(z_K) all move it away from the quadrature."""
    model = FlowVAE(6, 2, n_flows=4, hidden=(8,), dtype="float64", seed=2)
    _spread_flow(model, seed=3)
    x = (np.random.default_rng(4).random((4, 6)) > 0.5).astype(np.float64)
    exact = _exact_log_px(model, x)
    k = 40_000
    samples = model.importance_samples(x, k, rng=np.random.default_rng(5))
    log_w = samples.log_w
    estimate = log_mean_exp(log_w, axis=0)
    w = np.exp(log_w - log_w.max(0))
    se = w.std(0) / w.mean(0) / np.sqrt(k)  # delta method: the s.e. of log mean w
    elbo = log_w.mean(0)
    report("FD-ERR", "FlowVAE log p(x) vs quadrature (max |diff| / s.e.)",
           float(np.max(np.abs(estimate - exact) / se)))
    print("exact", np.round(exact, 4), "IS", np.round(estimate, 4), "ELBO", np.round(elbo, 4))
    assert np.all(np.abs(estimate - exact) < 5 * se + 1e-4), (
        f"importance-sampled log p(x) {estimate} differs from the quadrature {exact}"
    )
    assert np.all(elbo < exact), "the ELBO must lie below log p(x)"
    # the model's own log_likelihood agrees (same draws)
    np.testing.assert_allclose(model.log_likelihood(x, k=k, rng=np.random.default_rng(5)),
                               estimate, rtol=1e-12)


@pytest.mark.parametrize("base_kl", ["closed_form", "sampled"])
def test_flow_and_loss_equal_torch_autograd(base_kl):
    torch = pytest.importorskip("torch")
    from test_torch_crosscheck import _compare_grads, _twin

    model = FlowVAE(7, 3, n_flows=3, hidden=(6,), likelihood="bernoulli", beta=1.3,
                    activation="tanh", base_kl=base_kl, dtype="float64", seed=1)
    _spread_flow(model, seed=1)
    rng = np.random.default_rng(2)
    x = rng.random((4, 7))
    eps = rng.standard_normal((4, 3))
    terms, grads = model.loss_and_grads(x, eps)

    enc = _twin(model.encoder, model.params, "tanh")
    dec = _twin(model.decoder, model.params, "tanh")
    tx, teps = torch.from_numpy(x), torch.from_numpy(eps)
    h = enc(tx)
    d, k = 3, 3
    mu, logvar = h[:, :d], h[:, d : 2 * d]
    u = h[:, 2 * d : 2 * d + k * d].reshape(4, k, d)
    w = h[:, 2 * d + k * d : 2 * d + 2 * k * d].reshape(4, k, d)
    b = h[:, 2 * d + 2 * k * d :]
    z0 = mu + torch.exp(0.5 * logvar) * teps
    z, log_det = z0, torch.zeros(4, dtype=torch.float64)
    for i in range(k):
        ui, wi, bi = u[:, i], w[:, i], b[:, i]
        a = (wi * ui).sum(-1, keepdim=True)
        m = -1 + torch.logaddexp(a, torch.zeros_like(a))
        u_hat = ui + (m - a) * wi / (wi * wi).sum(-1, keepdim=True)
        s = (wi * z).sum(-1) + bi
        psi = (1 - torch.tanh(s) ** 2)[:, None] * wi
        log_det = log_det + torch.log(torch.abs(1 + (u_hat * psi).sum(-1)))
        z = z + u_hat * torch.tanh(s)[:, None]
    q0 = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z0).sum(-1)
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    recon = torch.nn.functional.binary_cross_entropy_with_logits(dec(z), tx, reduction="sum") / 4
    if base_kl == "sampled":
        kl = (q0 - log_det - prior).mean()
    else:  # KL(q_0 || p) by torch's closed form, + log p(z_0) - log p(z_K) - log|det|
        q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
        closed = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
        prior0 = torch.distributions.Normal(0.0, 1.0).log_prob(z0).sum(-1)
        kl = (closed.sum(-1) + prior0 - prior - log_det).mean()
    loss = recon + 1.3 * kl
    loss.backward()
    err = max(rel_error(terms["loss"], loss.item()), rel_error(terms["recon"], recon.item()),
              rel_error(terms["kl"], kl.item()),
              rel_error(terms["log_det"], log_det.mean().item()))
    report("TORCH-ERR", f"FlowVAE ({base_kl}) loss/recon/kl/log_det", err)
    assert err < 1e-10
    err = max(_compare_grads("FlowVAE encoder grads", model.encoder, enc, grads),
              _compare_grads("FlowVAE decoder grads", model.decoder, dec, grads))
    assert err < 1e-10, f"a FlowVAE gradient differs from torch autograd: {err:.2e}"


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_float32_on_every_backend_matches_float64(likelihood, backend_name, to_xp,
                                                  assert_matches_numpy):
    model, _, _ = _tiny(likelihood, dtype="float32", backend=backend_name)
    ref, x, eps = _tiny(likelihood)
    ref.params.flat[...] = backend.to_numpy(model.params.flat).astype(np.float64)
    terms, grads = model.loss_and_grads(*to_xp(x.astype(np.float32), eps.astype(np.float32)))
    assert grads.dtype == np.float32 and backend.array_module(grads.flat) is model.xp
    ref_terms, ref_grads = ref.loss_and_grads(x, eps)
    for key in ref_terms:
        assert_matches_numpy(terms[key], ref_terms[key], dtype=np.float32, err_msg=key)
    assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="float32 gradients")


def test_pieces_on_every_backend(backend_name, xp, to_xp, to_numpy, assert_matches_numpy):
    model, x, eps = _tiny(backend=backend_name)
    ref, _, _ = _tiny()
    xd = to_xp(x)
    outputs = {
        "reconstruct": (model.reconstruct(xd), ref.reconstruct(x)),
        "posterior mu": (model.posterior(xd)[0], ref.posterior(x)[0]),
        "log_likelihood": (model.log_likelihood(xd, k=7, rng=np.random.default_rng(0)),
                           ref.log_likelihood(x, k=7, rng=np.random.default_rng(0))),
        "posterior_mean": (model.posterior_mean(xd, k=9, rng=np.random.default_rng(1)),
                           ref.posterior_mean(x, k=9, rng=np.random.default_rng(1))),
    }
    for what, (got, expected) in outputs.items():
        assert backend.array_module(got) is xp, f"{what} left the backend"
        assert_matches_numpy(got, expected, err_msg=what)
    assert model.posterior_mean(xd, k=9).shape == (3, 2)
    assert model.sample(4).shape == (4, 5)
    z0, z_k, log_q = model.posterior_sample(xd, to_xp(np.stack([eps, eps])))
    assert z_k.shape == (2, 3, 2) and log_q.shape == (2, 3)
    chunked = model.log_likelihood(xd, k=7, rng=np.random.default_rng(0), max_chunk=3 * 5 * 2)
    assert_matches_numpy(chunked, ref.log_likelihood(x, k=7, rng=np.random.default_rng(0)))


def test_masked_data_counts_observed_entries_only(backend_name, to_xp):
    model, x, eps = _tiny(backend=backend_name)
    mask = np.array([[1, 1, 0, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1]], dtype=bool)
    x_nan = np.where(mask, x, np.nan)
    terms, _ = model.loss_and_grads(to_xp(x_nan), to_xp(eps), mask=to_xp(mask))
    filled = np.where(mask, x, 0.0)
    ref, _, _ = _tiny()
    samples = ref.importance_samples(ref.prepare(filled, mask=mask), 1, eps=eps[None])
    assert terms["recon"] == pytest.approx(-float(samples.log_px_z.mean()), rel=1e-12)


def test_checkpoint_round_trip(tmp_path, backend_name, to_xp, to_numpy):
    model, x, eps = _tiny(backend=backend_name, dtype="float32", beta=0.8)
    path = save(model, tmp_path / "flow.npz")
    again = load(path, backend=backend_name)
    assert type(again) is FlowVAE and again.config() == model.config()
    assert MODELS["FlowVAE"] is FlowVAE
    np.testing.assert_array_equal(to_numpy(again.params.flat), to_numpy(model.params.flat))
    xd, epsd = to_xp(x.astype(np.float32), eps.astype(np.float32))
    assert again.loss(xd, epsd) == model.loss(xd, epsd)


def test_same_seed_same_numbers():
    a, b = (FlowVAE(8, 3, 2, (6,), seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.params.flat, b.params.flat)
    x = np.random.default_rng(0).random((4, 8))
    assert a.loss_and_grads(x)[0] == b.loss_and_grads(x)[0]
    assert not np.array_equal(a.params.flat, FlowVAE(8, 3, 2, (6,), seed=6).params.flat)


@pytest.mark.slow
def test_training_lowers_the_held_out_loss_and_is_reproducible():
    from minivae.data import binarize, load_digits

    x = binarize(load_digits()[0])
    x_train, x_val = x[:400], x[400:600]

    def run() -> tuple[float, float]:
        model = FlowVAE(64, 4, n_flows=4, hidden=(32,), seed=0)
        before = evaluate(model, x_val)["loss"]
        fit(model, x_train, epochs=15, batch_size=50, lr=3e-3, progress=False)
        return before, evaluate(model, x_val)["loss"]

    before, after = run()
    assert after < before - 5, f"training should lower the loss: {before:.2f} -> {after:.2f}"
    assert run() == (before, after), "the same seeds must give the same numbers"


def test_bad_input():
    with pytest.raises(ValueError, match="n_flows must be an integer >= 0, got -1"):
        FlowVAE(5, 2, n_flows=-1)
    with pytest.raises(ValueError, match="n_flows must be an integer >= 0, got 2.5"):
        FlowVAE(5, 2, n_flows=2.5)
    with pytest.raises(TypeError, match="hidden must be a sequence"):
        FlowVAE(5, 2, hidden=8)
    with pytest.raises(ValueError, match="beta"):
        FlowVAE(5, 2, beta=-1.0)
    with pytest.raises(ValueError, match="base_kl must be 'closed_form' or 'sampled', got 'exact'"):
        FlowVAE(5, 2, base_kl="exact")
    model, x, eps = _tiny()
    with pytest.raises(ValueError, match=r"eps must have 2 features per row"):
        model.loss(x, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"eps must be \(K, batch, z_dim\)"):
        model.importance_samples(x, 2, eps=np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match=r"x must have 5 features"):
        model.loss(np.zeros((3, 4)), eps)
    with pytest.raises(TypeError, match="does not split into one term per latent"):
        model.kl_per_latent(x)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        model.posterior_mean(x, k=0)


def test_zero_flows_is_exactly_the_vae_or_a_vae_with_a_sampled_kl():
    """K = 0: the same networks as a VAE; 'closed_form' gives its loss and every gradient exactly,
    'sampled' its recon and a one-sample KL."""
    vae = VAE(5, 2, (4,), dtype="float64", seed=0)
    flow, x, eps = _tiny(n_flows=0)
    np.testing.assert_array_equal(flow.params.flat, vae.params.flat)
    terms, grads = flow.loss_and_grads(x, eps)
    grads = np.array(grads.flat)
    vterms, vgrads = vae.loss_and_grads(x, eps)
    for key in vterms:
        assert terms[key] == pytest.approx(vterms[key], rel=1e-12, abs=1e-15), key
    np.testing.assert_allclose(grads, vgrads.flat, rtol=1e-12, atol=1e-15)
    sampled, _, _ = _tiny(n_flows=0, base_kl="sampled")
    s_terms = sampled.loss(x, eps)
    assert s_terms["recon"] == pytest.approx(vterms["recon"], rel=1e-12)
    mu, logvar = vae.encode(x)
    z = mu + np.exp(0.5 * logvar) * eps
    sampled_kl = np.mean(-0.5 * (eps**2 + logvar).sum(1) + 0.5 * (z**2).sum(1))
    assert s_terms["kl"] == pytest.approx(sampled_kl, rel=1e-12)
    assert s_terms["log_det"] == 0.0
