"""The VQ-VAE: nearest codes, the straight-through backward checked by finite differences (with the
code assignment held fixed) and against PyTorch autograd, backends, bad input, checkpoints, code
usage and restarts, training.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the maths is
checked; on the other backends the numbers must be NumPy's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

import minivae
from minivae import backend, evaluate, fit, rel_error
from minivae.models import MODELS, VQVAE
from minivae.models.vqvae import CodeUsage, code_perplexity, nearest_code, one_hot

LIKELIHOODS = ["bernoulli", "gaussian", "gaussian_learned"]


def _tiny(likelihood: str = "bernoulli", **kwargs) -> tuple[VQVAE, np.ndarray]:
    """A float64 VQ-VAE: 6 pixels, hidden (5,), z_dim 6 read as 3 positions x 2 dims, K = 4
    codes, every one picked; a batch of 7 examples (NumPy; the model on ``backend=``)."""
    kwargs.setdefault("dtype", "float64")
    kwargs.setdefault("hidden", (5,))
    kwargs.setdefault("activation", "tanh")  # smooth: finite differences straddle no kink
    model = VQVAE(6, n_codes=4, z_dim=6, positions=3, likelihood=likelihood, seed=0, **kwargs)
    rng = np.random.default_rng(3)
    x = rng.random((7, 6))
    # codes at four of the 21 encoder outputs, moved a little: each is picked at least once,
    # and no output sits on a code (z_e - z_q is never 0)
    z_e = backend.to_numpy(model.encode(x)).reshape(-1, 2)
    codebook = z_e[[0, 5, 10, 15]] + 0.05 * rng.standard_normal((4, 2))
    model.params["codebook"] = backend.to_device(codebook.astype(model.dtype), model.xp)
    return model, x


def _host_codes(model: VQVAE, x) -> np.ndarray:
    return backend.to_numpy(model.codes(x))


# ----------------------------------------------------------------------------- nearest codes


def test_nearest_code_is_the_brute_force_argmin(backend_name, to_xp, to_numpy):
    rng = np.random.default_rng(0)
    z, codebook = rng.standard_normal((50, 3)), rng.standard_normal((9, 3))
    brute = np.argmin(((z[:, None, :] - codebook[None, :, :]) ** 2).sum(axis=2), axis=1)
    got = to_numpy(nearest_code(*to_xp(z, codebook)))
    np.testing.assert_array_equal(got, brute)
    assert not np.array_equal(got, np.argmax(-(z @ codebook.T), axis=1)), "not a dot-product rule"


def test_nearest_code_of_a_code_is_itself_and_ties_go_to_the_lowest_index():
    codebook = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-2.0, 3.0]])
    np.testing.assert_array_equal(nearest_code(codebook, codebook), [0, 1, 0, 3])


def test_one_hot_rows(backend_name, to_xp, to_numpy):
    got = to_numpy(one_hot(to_xp(np.array([2, 0, 2])), 4, np.float32))
    np.testing.assert_array_equal(got, [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0]])
    assert got.dtype == np.float32


# ----------------------------------------------------------------------------- the loss


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_loss_is_recon_plus_codebook_plus_beta_commitment(likelihood):
    model, x = _tiny(likelihood, beta=0.7)
    terms = model.loss(x)
    z_e = np.asarray(model.encode(x)).reshape(-1, 2)
    codebook = np.asarray(model.params["codebook"])
    brute = np.argmin(((z_e[:, None] - codebook[None]) ** 2).sum(axis=2), axis=1)
    squared = ((z_e - codebook[brute]) ** 2).sum() / 7  # summed over positions and dims, batch mean
    assert terms["codebook"] == pytest.approx(squared, rel=1e-12)
    assert terms["commitment"] == pytest.approx(squared, rel=1e-12)
    z_q = codebook[brute].reshape(7, 6)
    out = model.decoder.forward(model.params, z_q)[0]
    recon = -float(model.likelihood.log_prob(out, x).sum()) / 7
    assert terms["recon"] == pytest.approx(recon, rel=1e-12)
    assert terms["loss"] == pytest.approx(recon + (1 + 0.7) * squared, rel=1e-12)
    # deterministic: the same number every time, and loss() agrees with loss_and_grads()
    assert model.loss(x) == terms
    assert model.loss_and_grads(x)[0] == terms


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("beta", [0.25, 1.9])
def test_every_gradient_by_finite_differences_with_the_codes_fixed(likelihood, beta):
    """The gradient is that of the loss with its stop-gradients written out: every sg[.] is a
    constant frozen at the current parameters,

        L_sg = recon(decoder(z_e + sg[z_q - z_e])) + ||sg[z_e] - z_q||^2 + beta ||z_e - sg[z_q]||^2,

    with the codes held fixed (asserted: no perturbation of +-h changes one). Its value is the
    loss; finite differences of it check every parameter's gradient at once."""
    model, x = _tiny(likelihood, beta=beta, obs_var=0.6)
    codes = _host_codes(model, x).reshape(-1)
    assert len(np.unique(codes)) == 4, "the test needs every code picked"
    terms, grads = model.loss_and_grads(x)
    analytic = {name: np.array(g) for name, g in grads.items()}
    z_e0 = np.asarray(model.encode(x)).reshape(-1, 2).copy()  # sg[z_e]
    z_q0 = np.asarray(model.params["codebook"])[codes].copy()  # sg[z_q]
    changed = []

    def loss_with_stop_gradients() -> float:
        if not np.array_equal(_host_codes(model, x).reshape(-1), codes):
            changed.append(True)
        z_e = np.asarray(model.encode(x)).reshape(-1, 2)
        z_q = np.asarray(model.params["codebook"])[codes]
        out = model.decoder.forward(model.params, (z_e + (z_q0 - z_e0)).reshape(7, 6))[0]
        recon = -float(model.likelihood.log_prob(out, x).sum()) / 7
        codebook_term = float(((z_e0 - z_q) ** 2).sum()) / 7
        commitment = float(((z_e - z_q0) ** 2).sum()) / 7
        return recon + codebook_term + beta * commitment

    assert loss_with_stop_gradients() == pytest.approx(terms["loss"], rel=1e-12)
    err = fd_max_error(f"VQ-VAE {likelihood} beta={beta}", loss_with_stop_gradients,
                       model.params, analytic)
    assert not changed, "a perturbation changed a code assignment; the check is not valid"
    assert err < 1e-6, f"VQ-VAE gradient disagrees with finite differences: {err:.2e}"

    # the decoder's parameters see no stop-gradient: the plain loss gives the same derivative
    decoder = {k: v for k, v in model.params.items() if k.startswith("decoder.")}
    err = fd_max_error(f"VQ-VAE {likelihood} decoder, plain loss",
                       lambda: model.loss(x)["loss"], decoder, analytic)
    assert err < 1e-6


def test_codebook_gets_no_decoder_gradient_and_unpicked_codes_get_none():
    model, x = _tiny()
    codebook = np.array(model.params["codebook"])
    codebook[3] = [50.0, -50.0]  # far from everything: never picked
    model.params["codebook"] = codebook
    codes = _host_codes(model, x)
    assert 3 not in codes
    grads = model.loss_and_grads(x)[1]
    np.testing.assert_array_equal(grads["codebook"][3], 0.0)
    # the codebook's gradient is the codebook term's alone: (2/B) sum (e_k - z_e) per code
    z_e = np.asarray(model.encode(x)).reshape(-1, 2)
    expected = np.zeros_like(codebook)
    for m, k in enumerate(codes.reshape(-1)):
        expected[k] += 2 * (codebook[k] - z_e[m]) / 7
    assert rel_error(grads["codebook"], expected) < 1e-12


def test_beta_weighs_the_encoder_side_only():
    """Changing beta changes the encoder's gradient by 2 (beta' - beta)(z_e - z_q)/B backpropagated,
    and leaves the codebook's and the decoder's gradients alone."""
    model, x = _tiny(beta=0.25)
    g1 = model.loss_and_grads(x)[1].copy()
    model.beta = 2.0
    g2 = model.loss_and_grads(x)[1]
    for name in g1:
        same = np.array_equal(np.asarray(g1[name]), np.asarray(g2[name]))
        assert same == (not name.startswith("encoder.")), name


@pytest.mark.parametrize(("likelihood", "ema_decay"),
                         [(name, None) for name in LIKELIHOODS] + [("bernoulli", 0.9)])
def test_backends_give_numpy_numbers(likelihood, ema_decay, device_backend_name):
    ref, x = _tiny(likelihood, ema_decay=ema_decay)
    model, _ = _tiny(likelihood, backend=device_backend_name, ema_decay=ema_decay)
    xp = model.xp

    def to_xp(a):
        return backend.to_device(a, xp)

    def assert_matches_numpy(got, expected, err_msg=""):
        got = backend.to_numpy(got) if hasattr(got, "shape") else got
        expected = np.asarray(expected)
        np.testing.assert_allclose(got, expected, rtol=1e-12,
                                   atol=1e-12 * float(np.abs(expected).max()), err_msg=err_msg)

    model.params.flat[...] = to_xp(np.asarray(ref.params.flat))
    terms, grads = model.loss_and_grads(to_xp(x))
    ref_terms, ref_grads = ref.loss_and_grads(x)
    for key in ref_terms:
        assert_matches_numpy(terms[key], ref_terms[key], err_msg=key)
    for name in ref_grads:
        assert_matches_numpy(grads[name], ref_grads[name], err_msg=f"gradient of {name}")
    np.testing.assert_array_equal(backend.to_numpy(model.codes(to_xp(x))), ref.codes(x))
    np.testing.assert_array_equal(model.code_counts(x), ref.code_counts(x))
    assert_matches_numpy(model.reconstruct(x), np.asarray(ref.reconstruct(x)), err_msg="x_hat")
    if ema_decay is not None:  # the EMA step moved both codebooks alike
        assert_matches_numpy(model.params["codebook"], np.asarray(ref.params["codebook"]),
                             err_msg="EMA codebook")
    # restarts and k-means run on the device too
    assert_matches_numpy(model.kmeans_init(to_xp(x), iterations=2, seed=0),
                         ref.kmeans_init(x, iterations=2, seed=0), err_msg="k-means")
    np.testing.assert_array_equal(model.restart_dead_codes(x, np.array([0, 1, 0, 1]), seed=0),
                                  ref.restart_dead_codes(x, np.array([0, 1, 0, 1]), seed=0))
    assert_matches_numpy(model.params["codebook"], np.asarray(ref.params["codebook"]),
                         err_msg="restarted codebook")


def test_float32_matches_float64(backend_name, to_xp, assert_matches_numpy):
    ref, x = _tiny()
    model, _ = _tiny(dtype="float32", backend=backend_name)
    model.params.flat[...] = to_xp(np.asarray(ref.params.flat).astype(np.float32))
    ref.params.flat[...] = backend.to_numpy(model.params.flat).astype(np.float64)
    terms, grads = model.loss_and_grads(to_xp(x.astype(np.float32)))
    ref_terms, ref_grads = ref.loss_and_grads(x.astype(np.float32).astype(np.float64))
    for key in ref_terms:
        assert_matches_numpy(terms[key], ref_terms[key], dtype=np.float32, err_msg=key)
    assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="float32 gradients")


def test_masked_loss_counts_observed_pixels_only():
    model, x = _tiny()
    mask = np.ones_like(x, dtype=bool)
    mask[:, 0] = False
    masked = model.loss(x, mask=mask)
    x_changed = x.copy()
    x_changed[:, 0] = np.nan  # missing entries are never read
    assert model.loss(x_changed, mask=mask)["recon"] == pytest.approx(masked["recon"], rel=1e-12)
    assert masked["recon"] < model.loss(np.where(mask, x, 0.0))["recon"] + 1e-9


# ----------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_loss_and_every_gradient_equal_torch_with_detach_as_stop_gradient(likelihood):
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional
    model, x = _tiny(likelihood, beta=0.6, obs_var=0.6, hidden=(5, 4), activation="relu")
    terms, grads = model.loss_and_grads(x)

    def twin(mlp) -> nn.Sequential:
        modules: list = []
        for i in range(mlp.n_layers):
            w, b = mlp.names(i)
            linear = nn.Linear(mlp.sizes[i], mlp.sizes[i + 1], dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(model.params[w]).T))
                linear.bias.copy_(torch.from_numpy(np.array(model.params[b])))
            modules.append(linear)
            if i < mlp.n_layers - 1:
                modules.append(nn.ReLU())
        return nn.Sequential(*modules)

    enc, dec = twin(model.encoder), twin(model.decoder)
    codebook = torch.tensor(np.array(model.params["codebook"]), requires_grad=True)
    tx = torch.from_numpy(x)
    z_e = enc(tx).reshape(7 * 3, 2)
    k = torch.cdist(z_e, codebook).argmin(dim=1)  # torch's own distances, not ours
    e = codebook[k]
    z_q = z_e + (e - z_e).detach()  # straight-through
    out = dec(z_q.reshape(7, 6))
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(out, tx, reduction="sum")
    elif likelihood == "gaussian":
        recon = -torch.distributions.Normal(out, math.sqrt(0.6)).log_prob(tx).sum()
    else:
        recon = -torch.distributions.Normal(out[:, :6], torch.exp(0.5 * out[:, 6:])).log_prob(
            tx).sum()
    recon = recon / 7
    codebook_term = ((z_e.detach() - e) ** 2).sum() / 7
    commitment = ((z_e - e.detach()) ** 2).sum() / 7
    loss = recon + codebook_term + 0.6 * commitment
    loss.backward()

    np.testing.assert_array_equal(k.numpy(), _host_codes(model, x).reshape(-1))
    assert terms["loss"] == pytest.approx(loss.item(), rel=1e-12)
    assert terms["codebook"] == pytest.approx(codebook_term.item(), rel=1e-12)
    worst = rel_error(grads["codebook"], codebook.grad.numpy())
    for mlp, net in ((model.encoder, enc), (model.decoder, dec)):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for i, linear in enumerate(linears):
            w, b = mlp.names(i)
            worst = max(worst, rel_error(grads[w], linear.weight.grad.numpy().T))
            worst = max(worst, rel_error(grads[b], linear.bias.grad.numpy()))
    report("TORCH-ERR", f"VQ-VAE {likelihood}", worst)
    assert worst < 1e-10


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(n_codes=0), ValueError, "n_codes (K, the number of codebook vectors) must be >= 1"),
        (dict(z_dim=0), ValueError, "z_dim (the encoder's output width P * D) must be >= 1"),
        (dict(positions=0), ValueError, "positions (P) must be >= 1"),
        (dict(z_dim=12, positions=5), ValueError, "positions=5 must divide z_dim=12"),
        (dict(n_codes=2.5), TypeError, "n_codes (K, the number of codebook vectors) must be a "
                                       "positive integer"),
        (dict(beta=-1.0), ValueError, "beta (the commitment weight) must be >= 0"),
        (dict(beta=float("nan")), ValueError, "beta (the commitment weight) must be finite"),
        (dict(hidden=64), TypeError, "hidden must be a sequence"),
        (dict(likelihood="poisson"), ValueError, "unknown likelihood 'poisson'"),
        (dict(dtype="float16"), TypeError, "dtype must be float32 or float64"),
        (dict(codebook_scale=-0.1), ValueError, "codebook_scale must be >= 0"),
    ],
)
def test_bad_construction_is_refused_clearly(kwargs, error, message):
    with pytest.raises(error) as info:
        VQVAE(**{"x_dim": 10, **kwargs})
    assert message in str(info.value)


def test_divide_error_lists_the_positions_that_fit():
    with pytest.raises(ValueError, match=r"try positions in \[1, 2, 3, 4, 6, 12\]"):
        VQVAE(10, z_dim=12, positions=5)


def test_bad_data_and_codes_are_refused_clearly():
    model, x = _tiny()
    with pytest.raises(ValueError, match="must have 6 features per row"):
        model.loss(x[:, :5])
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        model.loss(x * 3)
    with pytest.raises(ValueError, match="NaN"):
        model.loss(np.where(x > 0.5, np.nan, x))
    with pytest.raises(TypeError, match="floating-point"):
        model.loss((x > 0.5).astype(np.int64))
    with pytest.raises(ValueError, match=r"codes must be in 0\.\.3, got values in \[0, 4\]"):
        model.decode_codes(np.array([[0, 1, 4]]))
    with pytest.raises(ValueError, match=r"codes must have shape \(n, 3\)"):
        model.decode_codes(np.array([[0, 1]]))
    with pytest.raises(TypeError, match="integer code indices, got dtype float64"):
        model.decode_codes(np.array([[0.0, 1.0, 2.0]]))
    with pytest.raises(TypeError, match="VQVAE takes no labels"):
        model.loss(x, labels=np.zeros(7, dtype=int))
    with pytest.raises(ValueError, match=r"counts must have shape \(4,\)"):
        model.restart_dead_codes(x, counts=np.ones(5))
    with pytest.raises(ValueError, match="min_count must be >= 1"):
        model.restart_dead_codes(x, min_count=0)


def test_perplexity_values_and_bad_counts():
    assert code_perplexity(np.array([5, 0, 0, 0])) == pytest.approx(1.0)
    assert code_perplexity(np.array([3, 3, 3, 3])) == pytest.approx(4.0)
    assert code_perplexity(np.array([1, 1, 0, 0])) == pytest.approx(2.0)
    p = np.array([0.5, 0.25, 0.25])
    assert code_perplexity(np.array([2, 1, 1])) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    for bad, message in [(np.zeros(3), "all zero"), (np.array([1, -1]), ">= 0"),
                         (np.ones((2, 2)), "non-empty \\(K,\\)"), (np.array([]), "non-empty")]:
        with pytest.raises(ValueError, match=message):
            code_perplexity(bad)


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_keeps_the_codebook(tmp_path, backend_name):
    model, x = _tiny(beta=0.4, backend=backend_name)
    path = minivae.save(model, tmp_path / "vq.npz")
    loaded = minivae.load(path, backend=backend_name)
    assert isinstance(loaded, VQVAE) and loaded.config() == model.config()
    assert loaded.beta == 0.4 and MODELS["VQVAE"] is VQVAE
    np.testing.assert_array_equal(backend.to_numpy(loaded.params["codebook"]),
                                  backend.to_numpy(model.params["codebook"]))
    np.testing.assert_array_equal(backend.to_numpy(loaded.params.flat),
                                  backend.to_numpy(model.params.flat))
    assert loaded.loss(x) == model.loss(x)


def test_checkpoint_with_a_wrong_codebook_shape_is_refused(tmp_path):
    model, _ = _tiny()
    path = minivae.save(model, tmp_path / "vq.npz")
    with np.load(path) as archive:
        entries = {k: archive[k] for k in archive.files}
    entries["param/codebook"] = np.zeros((5, 2))
    np.savez(tmp_path / "bad.npz", **entries)
    with pytest.raises(ValueError, match="'codebook' has shape \\(5, 2\\)"):
        minivae.load(tmp_path / "bad.npz")


# ----------------------------------------------------------------------------- code usage


def test_code_counts_and_codes_agree(backend_name, to_xp):
    model, x = _tiny(backend=backend_name)
    codes = backend.to_numpy(model.codes(to_xp(x)))
    assert codes.shape == (7, 3) and codes.dtype.kind in "iu"
    counts = model.code_counts(to_xp(x), batch_size=3)  # batches of 3 rows give the same counts
    np.testing.assert_array_equal(counts, np.bincount(codes.reshape(-1), minlength=4))
    assert counts.sum() == 21 and isinstance(counts, np.ndarray)
    # decoding the codes is reconstructing
    np.testing.assert_allclose(backend.to_numpy(model.decode_codes(codes)),
                               backend.to_numpy(model.reconstruct(to_xp(x))), rtol=1e-12)


def test_restart_moves_dead_codes_onto_encoder_outputs(backend_name, to_xp):
    model, x = _tiny(backend=backend_name)
    codebook = backend.to_numpy(model.params["codebook"]).copy()
    codebook[[1, 3]] = 100.0  # dead
    model.params["codebook"] = to_xp(codebook)
    counts = model.code_counts(x)
    assert counts[1] == counts[3] == 0
    restarted = model.restart_dead_codes(to_xp(x), seed=0)
    np.testing.assert_array_equal(restarted, [1, 3])
    after = backend.to_numpy(model.params["codebook"])
    z_e = backend.to_numpy(model.encode(to_xp(x))).reshape(-1, 2)
    for j in (1, 3):  # each restarted code is one of the encoder outputs, and now in use
        assert np.min(np.abs(z_e - after[j]).sum(axis=1)) == 0.0
    np.testing.assert_array_equal(after[[0, 2]], codebook[[0, 2]])  # live codes untouched
    assert (model.code_counts(x)[[1, 3]] > 0).all()
    assert model.restart_dead_codes(x).size == 0  # nothing dead any more


def test_kmeans_init_never_increases_the_distortion_and_uses_encoder_outputs():
    model, x = _tiny()
    rng = np.random.default_rng(5)
    x = rng.random((40, 6))
    inertia = model.kmeans_init(x, iterations=6, seed=0)
    assert len(inertia) == 6
    assert all(b <= a + 1e-12 for a, b in zip(inertia, inertia[1:], strict=False))
    z_e = np.asarray(model.encode(x)).reshape(-1, 2)
    codes = nearest_code(z_e, np.asarray(model.params["codebook"]))
    # at a fixed point of Lloyd's algorithm each used code is the mean of its outputs
    assert inertia[-1] == pytest.approx(
        ((z_e - np.asarray(model.params["codebook"])[codes]) ** 2).sum(axis=1).mean(), rel=1e-12)
    assert (model.code_counts(x) > 0).sum() >= 3


def test_code_usage_callback_records_and_restarts():
    model, x = _tiny()
    codebook = np.array(model.params["codebook"])
    codebook[2] = 100.0
    model.params["codebook"] = codebook
    usage = CodeUsage(x, restart=True, seed=0)
    usage(0, model)
    assert usage.in_use == [3] and usage.restarted == [1]
    assert usage.perplexity[0] == pytest.approx(code_perplexity(usage.counts[0]))
    usage(1, model)
    assert usage.in_use[1] == 4 and usage.restarted[1] == 0
    passive = CodeUsage(x)
    model.params["codebook"] = codebook
    passive(0, model)
    passive(1, model)
    assert passive.in_use == [3, 3] and passive.restarted == [0, 0]


# ----------------------------------------------------------------------------- training


def _digits():
    from minivae.data import load_digits, train_test_split

    x, _ = load_digits()
    return train_test_split(x, seed=0)


@pytest.mark.slow
def test_training_lowers_the_held_out_loss_and_restarts_keep_codes_alive():
    x_train, x_test = _digits()
    model = VQVAE(64, n_codes=16, z_dim=16, positions=4, hidden=(64,), seed=0)
    before = evaluate(model, x_test)["loss"]
    usage = CodeUsage(x_train, restart=True)
    history = fit(model, x_train, x_test, epochs=8, batch_size=64, on_epoch_end=usage,
                  progress=False)
    assert history.val["loss"][-1] < 0.8 * before
    assert usage.in_use[-1] >= 15, usage.in_use


def test_same_seed_same_numbers(backend_name):
    x_train, x_test = _digits()
    runs = []
    for _ in range(2):
        model = VQVAE(64, n_codes=8, z_dim=8, positions=4, hidden=(16,), seed=3,
                      backend=backend_name)
        usage = CodeUsage(x_train[:200], restart=True, seed=1)
        history = fit(model, x_train[:200], x_test[:50], epochs=2, batch_size=50, seed=2,
                      on_epoch_end=usage, progress=False)
        runs.append((history.val["loss"], usage.counts, backend.to_numpy(model.params.flat)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(np.array(runs[0][1]), np.array(runs[1][1]))
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    other = VQVAE(64, n_codes=8, z_dim=8, positions=4, hidden=(16,), seed=4)
    assert not np.array_equal(backend.to_numpy(other.params.flat), runs[0][2])


# ----------------------------------------------------------------------------- EMA codebook


def test_ema_codebook_moves_codes_to_the_mean_of_their_outputs_and_sends_no_gradient():
    model, x = _tiny(ema_decay=0.0)  # decay 0: each code jumps to the mean of its batch outputs
    gradient_model, _ = _tiny()
    codes = _host_codes(model, x).reshape(-1)
    z_e = np.asarray(model.encode(x)).reshape(-1, 2)
    grads = model.loss_and_grads(x)[1]
    reference = gradient_model.loss_and_grads(x)[1]
    np.testing.assert_array_equal(grads["codebook"], 0.0)
    for name in grads:  # the encoder's and the decoder's gradients are those of the loss
        if name != "codebook":
            np.testing.assert_array_equal(grads[name], reference[name])
    codebook = np.asarray(model.params["codebook"])
    for j in range(4):
        np.testing.assert_allclose(codebook[j], z_e[codes == j].mean(axis=0), rtol=1e-12)


def test_ema_averages_over_steps_and_a_restart_forgets_the_code():
    model, x = _tiny(ema_decay=0.5)
    z_e = np.asarray(model.encode(x)).reshape(-1, 2)
    codes = _host_codes(model, x).reshape(-1)
    model.loss_and_grads(x)
    first = np.asarray(model.params["codebook"]).copy()
    # N_j = 0.5 n_j, m_j = 0.5 sum z_e: the ratio is the batch mean (no bias from the zero start)
    np.testing.assert_allclose(first[0], z_e[codes == 0].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.ema_counts, 0.5 * np.bincount(codes, minlength=4))
    model.reset_ema(np.array([1]))
    assert model.ema_counts[1] == 0 and (model.ema_sums[1] == 0).all()
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        VQVAE(6, ema_decay=1.0)


# ----------------------------------------------------------------------------- the code prior


def _tiny_prior(**kwargs):
    from minivae.models import CodePrior

    kwargs.setdefault("dtype", "float64")
    prior = CodePrior(3, 4, hidden=7, seed=0, **kwargs)
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 4, size=(9, 3))
    return prior, codes


def test_code_prior_is_a_normalised_autoregressive_distribution():
    import itertools

    from minivae.models.vqvae import codes_to_one_hot

    prior, _ = _tiny_prior()
    every = np.array(list(itertools.product(range(4), repeat=3)))
    assert np.exp(prior.log_prob(every)).sum() == pytest.approx(1.0, rel=1e-12)
    # position p's logits do not depend on positions >= p
    x = codes_to_one_hot(every[:1], 4).astype(np.float64)
    base = np.asarray(prior.logits(x))[0]
    for q in range(3):
        changed = every[:1].copy()
        changed[0, q] = (changed[0, q] + 1) % 4
        other = np.asarray(prior.logits(codes_to_one_hot(changed, 4).astype(np.float64)))[0]
        np.testing.assert_array_equal(other[: q + 1], base[: q + 1])
        assert not np.allclose(other[q + 1:], base[q + 1:]) or q == 2


def test_code_prior_gradient_by_finite_differences_and_torch():
    from minivae.models.vqvae import codes_to_one_hot

    prior, codes = _tiny_prior()
    rng = np.random.default_rng(4)
    for name in prior.params:  # non-trivial weights of both signs, masked entries kept at 0
        mask = {"made.W0": prior.mask0, "made.W1": prior.mask1}.get(name, 1.0)
        prior.params[name] = rng.standard_normal(prior.params[name].shape) * mask
    x = codes_to_one_hot(codes, 4).astype(np.float64)
    terms, grads = prior.loss_and_grads(x)
    assert terms["loss"] == pytest.approx(-prior.log_prob(codes).mean(), rel=1e-12)
    analytic = {name: np.array(g) for name, g in grads.items()}
    err = fd_max_error("CodePrior", lambda: prior.loss(x)["loss"], prior.params, analytic)
    assert err < 1e-6
    assert (analytic["made.W0"][prior.mask0 == 0] == 0).all()

    torch = pytest.importorskip("torch")
    w0 = torch.tensor(np.array(prior.params["made.W0"]), requires_grad=True)
    b0 = torch.tensor(np.array(prior.params["made.b0"]), requires_grad=True)
    w1 = torch.tensor(np.array(prior.params["made.W1"]), requires_grad=True)
    b1 = torch.tensor(np.array(prior.params["made.b1"]), requires_grad=True)
    h = torch.relu(torch.from_numpy(x) @ (w0 * torch.from_numpy(prior.mask0)) + b0)
    logits = (h @ (w1 * torch.from_numpy(prior.mask1)) + b1).reshape(9, 3, 4)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(27, 4), torch.from_numpy(codes.reshape(-1)), reduction="sum") / 9
    loss.backward()
    assert terms["loss"] == pytest.approx(loss.item(), rel=1e-12)
    worst = max(rel_error(grads[n], t.grad.numpy()) for n, t in
                (("made.W0", w0), ("made.b0", b0), ("made.W1", w1), ("made.b1", b1)))
    report("TORCH-ERR", "CodePrior", worst)
    assert worst < 1e-10


def test_code_prior_samples_follow_its_probabilities(backend_name):
    import itertools

    prior, _ = _tiny_prior(backend=backend_name)
    rng = np.random.default_rng(6)
    for name in prior.params:
        mask = {"made.W0": prior.mask0, "made.W1": prior.mask1}.get(name, 1.0)
        value = rng.standard_normal(prior.params[name].shape) * backend.to_numpy(mask)
        prior.params[name] = backend.to_device(value, prior.xp)
    samples = backend.to_numpy(prior.sample(20000, seed=np.random.default_rng(0)))
    assert samples.shape == (20000, 3) and samples.min() >= 0 and samples.max() <= 3
    every = np.array(list(itertools.product(range(4), repeat=3)))
    expected = np.exp(prior.log_prob(every))
    index = samples @ np.array([16, 4, 1])
    observed = np.bincount(index, minlength=64) / 20000
    # each of the 64 frequencies within 4 standard errors of its probability
    assert np.all(np.abs(observed - expected) <= 4 * np.sqrt(expected * (1 - expected) / 20000)
                  + 1e-4)


def test_code_prior_bad_input_and_checkpoint(tmp_path):
    from minivae.models.vqvae import codes_to_one_hot

    prior, codes = _tiny_prior()
    x = codes_to_one_hot(codes, 4).astype(np.float64)
    with pytest.raises(ValueError, match="one one-hot block of 4 per position"):
        prior.loss(x * 0.5)
    with pytest.raises(ValueError, match=r"codes must be in 0\.\.3"):
        codes_to_one_hot(codes + 1, 4)
    with pytest.raises(TypeError, match="integer array"):
        codes_to_one_hot(codes.astype(float), 4)
    with pytest.raises(ValueError, match="positions \\(P\\) must be >= 1"):
        type(prior)(0, 4)
    path = minivae.save(prior, tmp_path / "prior.npz")
    loaded = minivae.load(path)
    assert loaded.config() == prior.config() and loaded.loss(x) == prior.loss(x)


@pytest.mark.slow
def test_code_prior_learns_dependent_codes():
    """Codes where position 2 copies position 1: the prior learns the copy (its loss falls to
    near the best possible 2 log 4 nats; independent positions give 3 log 4), samples copy too."""
    from minivae.models.vqvae import codes_to_one_hot

    prior, _ = _tiny_prior(dtype="float32")
    rng = np.random.default_rng(0)
    first = rng.integers(0, 4, size=2000)
    codes = np.stack([first, first, rng.integers(0, 4, size=2000)], axis=1)
    x = codes_to_one_hot(codes, 4)
    history = fit(prior, x[:1600], x[1600:], epochs=40, batch_size=100, lr=1e-2, progress=False)
    assert history.val["loss"][-1] < 2 * math.log(4) + 0.1
    samples = backend.to_numpy(prior.sample(500, seed=0))
    assert (samples[:, 0] == samples[:, 1]).mean() > 0.9
