"""Missing data: masks, the masked likelihood and its gradients, training and imputation."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

from minivae import VAE, fit, masks
from minivae import imputation as impute
from minivae.gradcheck import numerical_gradient, rel_error
from minivae.likelihoods import Bernoulli
from minivae.losses import bernoulli_nll

LIKELIHOODS = ["bernoulli", "gaussian", "gaussian_learned"]


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 0.8])
def test_mcar_mask_rate_shape_and_seed(rate):
    mask = masks.mcar_mask((400, 50), rate, seed=3)
    assert mask.shape == (400, 50) and mask.dtype == np.bool_
    missing = 1 - mask.mean()
    # binomial: std of the realised rate is sqrt(r (1 - r) / 20000) <= 0.0036; 5 std
    assert abs(missing - rate) < 0.018, f"asked for {rate}, got {missing:.4f} missing"
    assert mask.any(axis=1).all(), "every row must keep an observed entry"
    assert np.array_equal(mask, masks.mcar_mask((400, 50), rate, seed=3)), "same seed, same mask"
    if rate > 0:
        assert not np.array_equal(mask, masks.mcar_mask((400, 50), rate, seed=4))


def test_mcar_mask_keeps_one_observed_entry_per_row():
    mask = masks.mcar_mask((300, 3), 0.95, seed=0)
    assert mask.any(axis=1).all()
    assert 1 - mask.mean() > 0.6  # still mostly missing


def test_block_mask_occludes_one_square_per_image():
    mask = masks.block_mask(50, (8, 8), 3, seed=1)
    assert mask.shape == (50, 64) and mask.dtype == np.bool_
    assert ((~mask).sum(axis=1) == 9).all(), "exactly block_size**2 pixels missing per image"
    images = mask.reshape(50, 8, 8)
    for img in images:
        rows, cols = np.nonzero(~img)
        assert rows.max() - rows.min() == 2 and cols.max() - cols.min() == 2, "a 3x3 square"
    tops = [np.nonzero(~img)[0].min() for img in images]
    assert len(set(tops)) > 1, "the block is placed at random, not always at the same place"
    assert np.array_equal(mask, masks.block_mask(50, (8, 8), 3, seed=1))
    assert not np.array_equal(mask, masks.block_mask(50, (8, 8), 3, seed=2))
    rect = masks.block_mask(4, (8, 8), (2, 5), seed=0)
    assert ((~rect).sum(axis=1) == 10).all()


@pytest.mark.parametrize(
    "args,error,words",
    [
        (((10, 4), 1.0), ValueError, "[0, 1)"),
        (((10, 4), -0.1), ValueError, "[0, 1)"),
        (((10, 4), "0.5"), TypeError, "number"),
        (((10, 0), 0.5), ValueError, ">= 1"),
    ],
)
def test_mcar_mask_bad_input(args, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace(")", r"\)")):
        masks.mcar_mask(*args)


def test_block_mask_bad_input():
    with pytest.raises(ValueError, match="must fit"):
        masks.block_mask(3, (8, 8), 9)
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        masks.block_mask(3, (64,), 2)


def test_check_mask_says_what_was_expected():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"shape of x \(4, 3\).*got shape \(3, 4\)"):
        masks.check_mask(np.ones((3, 4), dtype=bool), x.shape)
    with pytest.raises(TypeError, match="boolean.*True = observed.*got dtype float64"):
        masks.check_mask(np.ones((4, 3)), x.shape)
    with pytest.raises(TypeError, match="boolean array"):
        masks.check_mask("all", x.shape)
    bad = np.ones((4, 3), dtype=bool)
    bad[2] = False
    with pytest.raises(ValueError, match=r"no observed entry \(e.g. rows \[2\]\)"):
        masks.check_mask(bad, x.shape)


def test_imputers_refuse_bad_masks_and_data():
    model = VAE(5, 2, (4,), "gaussian", seed=0)
    x = np.random.default_rng(0).random((3, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="shape of x"):
        impute.importance_weighted_imputation(model, x, np.ones((3, 4), dtype=bool))
    with pytest.raises(TypeError, match="boolean"):
        impute.pseudo_gibbs(model, x, np.ones((3, 5), dtype=np.int64))
    with pytest.raises(ValueError, match=r"shape \(batch, 5\)"):
        impute.metropolis_within_gibbs(model, x[:, :4], np.ones((3, 4), dtype=bool))
    mask = np.ones((3, 5), dtype=bool)
    x_nan = x.copy()
    x_nan[0, 0] = np.nan  # observed NaN: refused
    with pytest.raises(ValueError, match="NaN"):
        impute.importance_weighted_imputation(model, x_nan, mask)
    with pytest.raises(ValueError, match="burn_in"):
        impute.pseudo_gibbs(model, x, mask, n_steps=5, burn_in=5)
    with pytest.raises(ValueError, match=r"\(K, 3, 2\)"):
        impute.importance_weighted_imputation(model, x, mask, eps=np.zeros((4, 2)))


# ----------------------------------------------------------------------------- masked likelihood


def test_masked_bernoulli_nll_gradient_and_zero_on_missing_entries():
    rng = np.random.default_rng(0)
    logits, x = rng.normal(size=(4, 6)) * 3, rng.random((4, 6))
    mask = masks.mcar_mask((4, 6), 0.4, seed=1)
    loss, dlogits = Bernoulli().nll(logits, x, mask)
    numeric = numerical_gradient(lambda: Bernoulli().nll(logits, x, mask)[0], logits)
    err = report("FD-ERR", "masked_bernoulli_nll", rel_error(dlogits, numeric))
    assert err < 1e-7, f"masked Bernoulli NLL gradient is off: {err:.2e}"
    assert np.all(dlogits[~mask] == 0), "a missing entry must get a zero gradient"
    full_loss, full_grad = bernoulli_nll(logits, x)
    all_true = np.ones_like(mask)
    assert Bernoulli().nll(logits, x, all_true)[0] == pytest.approx(full_loss, rel=1e-12)
    np.testing.assert_allclose(Bernoulli().nll(logits, x, all_true)[1], full_grad)
    # the values at missing entries do not matter
    x2 = np.where(mask, x, 1 - x)
    assert Bernoulli().nll(logits, x2, mask)[0] == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_masked_nll_gradient_every_likelihood(likelihood):
    model = VAE(5, 2, (4,), likelihood, obs_var=0.3, dtype="float64", seed=0)
    rng = np.random.default_rng(1)
    out = rng.normal(size=(3, model.decoder.sizes[-1]))
    x, mask = rng.random((3, 5)), masks.mcar_mask((3, 5), 0.5, seed=2)
    loss, dout = model.likelihood.nll(out, x, mask)
    numeric = numerical_gradient(lambda: model.likelihood.nll(out, x, mask)[0], out)
    err = report("FD-ERR", f"masked_nll {likelihood}", rel_error(dout, numeric))
    assert err < 1e-7, f"masked {likelihood} NLL gradient is off: {err:.2e}"
    for part in np.split(dout, dout.shape[1] // 5, axis=1):  # [dmean, dlogvar] if learned
        assert np.all(part[~mask] == 0), "a missing entry must get a zero gradient"
    full = float(-model.likelihood.log_prob(out, x).sum()) / 3
    assert model.likelihood.nll(out, x, np.ones_like(mask))[0] == pytest.approx(full)


def _tiny(likelihood: str, **kwargs):
    model = VAE(5, 2, (4,), likelihood, dtype="float64", seed=0, obs_var=0.5, **kwargs)
    rng = np.random.default_rng(1)
    x = rng.random((3, 5))
    mask = masks.mcar_mask((3, 5), 0.5, seed=3)
    return model, x, mask, rng.standard_normal((3, 2))


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("activation,beta", [("relu", 1.0), ("tanh", 2.0)])
def test_masked_loss_gradient_every_parameter(likelihood, activation, beta):
    model, x, mask, eps = _tiny(likelihood, activation=activation, beta=beta)
    x = np.where(mask, x, np.nan)  # missing entries may hold anything, NaN included
    terms, grads = model.loss_and_grads(x, eps, mask=mask)
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:
        return model.loss(x, eps, mask=mask)["loss"]

    assert f() == pytest.approx(terms["loss"], rel=1e-12)
    assert terms["loss"] == pytest.approx(terms["recon"] + beta * terms["kl"], rel=1e-12)
    err = fd_max_error(f"masked VAE {likelihood} {activation}", f, model.params, analytic)
    assert err < 1e-6, f"masked VAE ({likelihood}) gradient disagrees with FD: {err:.2e}"


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_masked_loss_with_everything_observed_is_the_vae_loss(likelihood):
    model, x, _, eps = _tiny(likelihood)
    terms, grads = model.loss_and_grads(x, eps, mask=np.ones(x.shape, dtype=bool))
    masked = {name: np.array(g) for name, g in grads.items()}
    ref_terms, ref_grads = model.loss_and_grads(x, eps)
    for key in ("loss", "recon", "kl"):
        assert terms[key] == pytest.approx(ref_terms[key], rel=1e-12)
    for name, g in ref_grads.items():
        np.testing.assert_allclose(masked[name], g, rtol=1e-12, atol=1e-14, err_msg=name)


def test_masked_loss_ignores_missing_values_and_encoder_sees_zeros():
    model, x, mask, eps = _tiny("gaussian")
    a, _ = model.loss_and_grads(np.where(mask, x, 5.0), eps, mask=mask)
    b, _ = model.loss_and_grads(np.where(mask, x, -7.0), eps, mask=mask)
    assert a == b, "values at missing entries must not change the loss"
    c, _ = model.loss_and_grads(np.where(mask, x, 0.0), eps)
    assert a["kl"] == pytest.approx(c["kl"], rel=1e-12), "the encoder sees zero-filled data"


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_masked_loss_gradient_equals_torch(likelihood):
    torch = pytest.importorskip("torch")
    model, x, mask, eps = _tiny(likelihood, activation="tanh")
    terms, grads = model.loss_and_grads(x, eps, mask=mask)
    tp = {n: torch.tensor(np.array(p), requires_grad=True) for n, p in model.params.items()}

    def mlp(prefix, h, n_layers):
        for i in range(n_layers):
            h = h @ tp[f"{prefix}W{i}"] + tp[f"{prefix}b{i}"]
            if i < n_layers - 1:
                h = torch.tanh(h)
        return h

    tx, tm = torch.from_numpy(np.where(mask, x, 0.0)), torch.from_numpy(mask.astype(np.float64))
    h = mlp("encoder.", tx, 2)
    mu, logvar = h[:, :2], h[:, 2:]
    z = mu + torch.exp(0.5 * logvar) * torch.from_numpy(eps)
    out = mlp("decoder.", z, 2)
    if likelihood == "bernoulli":
        log_p = -torch.nn.functional.binary_cross_entropy_with_logits(out, tx, reduction="none")
    elif likelihood == "gaussian":
        log_p = torch.distributions.Normal(out, 0.5**0.5).log_prob(tx)
    else:
        log_p = torch.distributions.Normal(out[:, :5], torch.exp(0.5 * out[:, 5:])).log_prob(tx)
    recon = -(log_p * tm).sum() / 3
    kl = -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum() / 3
    (recon + kl).backward()
    assert terms["recon"] == pytest.approx(float(recon.detach()), rel=1e-10)
    assert terms["kl"] == pytest.approx(float(kl.detach()), rel=1e-10)
    worst = max(rel_error(np.array(grads[n]), tp[n].grad.numpy()) for n in tp)
    report("TORCH-ERR", f"masked VAE {likelihood}", worst)
    assert worst < 1e-10, f"a masked gradient differs from torch autograd: {worst:.2e}"


# ----------------------------------------------------------------------------- training


def _low_rank(n=600, d=12, rank=2, noise=0.1, seed=0):
    """x = s @ A + noise: d columns that are linear mixtures of `rank` factors (standardized)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + noise * rng.normal(size=(n, d))
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


@pytest.fixture(scope="module")
def trained():
    """A small Gaussian VAE trained by fit_masked on a low-rank table with 40% MCAR."""
    x = _low_rank()
    mask = masks.mcar_mask(x.shape, 0.4, seed=0)
    model = VAE(12, 2, (32,), "gaussian", obs_var=0.05, activation="tanh", seed=0)
    history = fit(model, x, mask=mask, epochs=60, batch_size=64, lr=3e-3, progress=False)
    return model, x, mask, history


@pytest.mark.slow
def test_fit_masked_learns_and_is_reproducible(trained):
    model, x, mask, history = trained
    loss = history.train["loss"]
    assert history.epochs == 60 and loss[-1] < 0.5 * loss[0], f"loss {loss[0]} -> {loss[-1]}"
    again = VAE(12, 2, (32,), "gaussian", obs_var=0.05, activation="tanh", seed=0)
    h2 = fit(again, x[:128], mask=mask[:128], epochs=2, batch_size=64, progress=False)
    h3_model = VAE(12, 2, (32,), "gaussian", obs_var=0.05, activation="tanh", seed=0)
    h3 = fit(h3_model, x[:128], mask=mask[:128], epochs=2, batch_size=64, progress=False)
    assert h2.train == h3.train, "same seeds, same training"
    np.testing.assert_array_equal(again.params.flat, h3_model.params.flat)


def _imputers(model, x, mask, seed=0):
    return {
        "pseudo-Gibbs": impute.pseudo_gibbs(model, x, mask, n_steps=30, seed=seed),
        "Metropolis-within-Gibbs":
            impute.metropolis_within_gibbs(model, x, mask, n_steps=30, seed=seed),
        "importance-weighted":
            impute.importance_weighted_imputation(model, x, mask, k=200, seed=seed),
    }


@pytest.mark.slow
def test_imputations_keep_observed_entries_and_beat_mean_imputation(trained):
    """Trained on the incomplete table: every method keeps x_obs; IW and MwG halve the error.

    Pseudo-Gibbs feeds the encoder complete rows, which an encoder trained on zero-filled rows
    never saw: it only has to beat the mean here (it is checked well below it in the next test).
    """
    model, x, mask, _ = trained
    x_in = np.where(mask, x, np.nan)  # the imputers never read missing entries
    mean_mse = impute.imputation_mse(impute.mean_imputation(x_in, mask), x, mask)
    assert 0.8 < mean_mse < 1.3  # standardized columns: mean imputation errs by about the variance
    bound = {"pseudo-Gibbs": 0.9, "Metropolis-within-Gibbs": 0.5, "importance-weighted": 0.5}
    for name, x_imp in _imputers(model, x_in, mask).items():
        assert x_imp.shape == x.shape and np.isfinite(x_imp).all(), name
        np.testing.assert_array_equal(x_imp[mask], x[mask], err_msg=f"{name} changed observed")
        mse = impute.imputation_mse(x_imp, x, mask)
        print(f"IMPUTE masked-trained {name}: {mse:.3f} (mean imputation {mean_mse:.3f})")
        assert mse < bound[name] * mean_mse, f"{name}: MSE {mse:.3f}, mean {mean_mse:.3f}"


@pytest.mark.slow
def test_chains_beat_mean_imputation_with_an_encoder_trained_on_complete_rows():
    x = _low_rank(seed=1)
    mask = masks.mcar_mask(x.shape, 0.4, seed=1)
    model = VAE(12, 2, (32,), "gaussian", obs_var=0.05, activation="tanh", seed=0)
    fit(model, x, epochs=60, batch_size=64, lr=3e-3, progress=False)
    mean_mse = impute.imputation_mse(impute.mean_imputation(x, mask), x, mask)
    for name, x_imp in _imputers(model, x, mask).items():
        np.testing.assert_array_equal(x_imp[mask], x[mask], err_msg=f"{name} changed observed")
        mse = impute.imputation_mse(x_imp, x, mask)
        print(f"IMPUTE complete-trained {name}: {mse:.3f} (mean imputation {mean_mse:.3f})")
        if name != "importance-weighted":  # its proposal q(z | zero-filled x) was never trained
            assert mse < 0.5 * mean_mse, f"{name}: MSE {mse:.3f}, mean {mean_mse:.3f}"


@pytest.mark.slow
def test_imputations_are_seeded(trained):
    model, x, mask, _ = trained
    a, b = _imputers(model, x[:40], mask[:40], 1), _imputers(model, x[:40], mask[:40], 1)
    c = _imputers(model, x[:40], mask[:40], 2)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"{name}: same seed differs")
        assert not np.array_equal(a[name], c[name]), f"{name}: the seed is ignored"


def test_pseudo_gibbs_step_fills_only_missing_entries():
    model, x, mask, eps = _tiny("bernoulli")
    x_tilde = np.where(mask, x, 0.5)
    new = impute.pseudo_gibbs_step(model, x_tilde, mask, eps=eps)
    mu, logvar = model.encode(x_tilde)  # the encoder sees the current completion, not zeros
    expected = model.decode(mu + np.exp(0.5 * logvar) * eps)
    np.testing.assert_allclose(new, np.where(mask, x, expected), rtol=1e-12)


def test_importance_weighted_imputation_by_hand():
    """K = 1 gives E[x | z_1]; with equal eps for all K the weights do not matter."""
    model, x, mask, eps = _tiny("gaussian")
    one = impute.importance_weighted_imputation(model, x, mask, eps=eps[None])
    mu, logvar = model.encode(np.where(mask, x, 0.0))
    expected = model.decode(mu + np.exp(0.5 * logvar) * eps)
    np.testing.assert_allclose(one, np.where(mask, x, expected), rtol=1e-12)
    same = impute.importance_weighted_imputation(model, x, mask, eps=np.stack([eps] * 4))
    np.testing.assert_allclose(same, one, rtol=1e-12)
    # the weights: the result is the self-normalised average over K draws
    rng = np.random.default_rng(5)
    eps_k = rng.standard_normal((6, 3, 2))
    got = impute.importance_weighted_imputation(model, x, mask, eps=eps_k)
    log_w, means = [], []
    for e in eps_k:
        z = mu + np.exp(0.5 * logvar) * e
        out = model.decoder_output(z)
        log_px = model.likelihood.log_prob(out, x, mask)
        log_pz = -0.5 * (z**2 + np.log(2 * np.pi)).sum(1)
        log_qz = -0.5 * (e**2 + np.log(2 * np.pi) + logvar).sum(1)
        log_w.append(log_px + log_pz - log_qz)
        means.append(out)
    w = np.exp(np.array(log_w) - np.max(log_w, axis=0))
    w /= w.sum(0)
    expected = (w[:, :, None] * np.array(means)).sum(0)
    np.testing.assert_allclose(got, np.where(mask, x, expected), rtol=1e-10)


def test_mean_imputation_and_mse():
    x = np.array([[1.0, 2.0], [3.0, np.nan], [np.nan, 6.0]])
    mask = ~np.isnan(x)
    filled = impute.mean_imputation(x, mask)
    np.testing.assert_allclose(filled, [[1, 2], [3, 4], [2, 6]])
    truth = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 6.0]])
    assert impute.imputation_mse(filled, truth, mask) == pytest.approx((1 + 4) / 2)
    with pytest.raises(ValueError, match="nothing to score"):
        impute.imputation_mse(truth, truth, np.ones((3, 2), dtype=bool))


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_training_and_imputation_on_a_device_give_numpys_numbers(likelihood, device_backend_name):
    """On the stand-in (no stray NumPy call on device data, what CuPy would refuse) and on CuPy:
    the numbers NumPy gives. NumPy generators drive every draw (a GPU's own generator gives
    other numbers), so the two runs see the same eps and proposals."""
    from minivae import backend

    x = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    mask = masks.mcar_mask(x.shape, 0.5, seed=0)
    results = {}
    for name in ("numpy", device_backend_name):
        model = VAE(6, 2, (5,), likelihood, backend=name, seed=0)
        model.rng = np.random.default_rng(2)
        history = fit(model, x, mask=mask, epochs=2, batch_size=8, progress=False)
        rng = np.random.default_rng  # a fresh NumPy generator per call, as seed=1 would give
        results[name] = [
            np.array(history.train["loss"]),
            backend.to_numpy(
                impute.importance_weighted_imputation(model, x, mask, k=5, seed=rng(1))
            ),
            backend.to_numpy(impute.pseudo_gibbs(model, x, mask, n_steps=3, seed=rng(1))),
            backend.to_numpy(
                impute.metropolis_within_gibbs(model, x, mask, n_steps=3, seed=rng(1))
            ),
        ]
    names = ("training losses", "importance-weighted", "pseudo-Gibbs", "Metropolis-within-Gibbs")
    for what, a, b in zip(names, results["numpy"], results[device_backend_name], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=what)
