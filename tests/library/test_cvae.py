"""The conditional VAE: every gradient by finite differences and against PyTorch, the label's
concatenation (no gradient into the one-hot columns), backends, bad labels, checkpoints, training.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the gradient is
checked by finite differences; on the other backends it must give NumPy's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

import minivae
from minivae import backend, fit, rel_error
from minivae.models import CVAE, MODELS
from minivae.models.cvae import concat_label, concat_label_backward

LIKELIHOODS = ["bernoulli", "gaussian", "gaussian_learned"]


def _tiny(likelihood: str = "bernoulli", **kwargs) -> tuple[CVAE, np.ndarray, np.ndarray,
                                                            np.ndarray]:
    """A float64 CVAE: 5 pixels, 2 latents, 3 classes, one hidden layer of 4; a batch of 4."""
    kwargs.setdefault("dtype", "float64")
    model = CVAE(5, 2, (4,), n_classes=3, likelihood=likelihood, seed=0, **kwargs)
    rng = np.random.default_rng(1)
    model.params.flat[...] += backend.to_device(
        0.3 * rng.standard_normal(model.n_params()), model.xp)  # weights of both signs, larger
    x = rng.random((4, 5))
    labels = np.array([2, 0, 1, 2])
    return model, x, labels, rng.standard_normal((4, 2))


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("activation,beta", [("relu", 1.0), ("tanh", 2.5)])
def test_cvae_gradient_every_parameter(likelihood, activation, beta, backend_name, to_xp,
                                       assert_matches_numpy):
    kwargs = dict(activation=activation, beta=beta, obs_var=0.5)
    model, x, labels, eps = _tiny(likelihood, backend=backend_name, **kwargs)
    terms, grads = model.loss_and_grads(*to_xp(x, eps), labels=to_xp(labels))
    if backend_name != "numpy":
        ref, _, _, _ = _tiny(likelihood, **kwargs)
        ref_terms, ref_grads = ref.loss_and_grads(x, eps, labels=labels)
        for key in ("loss", "recon", "kl"):
            assert_matches_numpy(terms[key], ref_terms[key], err_msg=f"{key} on {backend_name}")
        assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="gradients")
        return
    assert terms["loss"] == pytest.approx(terms["recon"] + beta * terms["kl"], rel=1e-12)
    analytic = {name: np.array(g) for name, g in grads.items()}
    err = fd_max_error(f"CVAE {likelihood} {activation} beta={beta}",
                       lambda: model.loss(x, eps, labels=labels)["loss"], model.params, analytic)
    assert err < 1e-6, f"CVAE ({likelihood}) gradient disagrees with finite differences: {err:.2e}"


def test_cvae_gradient_with_a_mask():
    model, x, labels, eps = _tiny("bernoulli")
    mask = np.random.default_rng(5).random(x.shape) > 0.3
    terms, grads = model.loss_and_grads(x, eps, mask=mask, labels=labels)
    analytic = {name: np.array(g) for name, g in grads.items()}
    err = fd_max_error("CVAE with a mask",
                       lambda: model.loss(x, eps, mask=mask, labels=labels)["loss"],
                       model.params, analytic)
    assert err < 1e-6


def test_concat_label_and_its_backward_drop_the_label_columns(backend_name, to_xp, to_numpy):
    rng = np.random.default_rng(2)
    h, c = rng.normal(size=(3, 4)), np.eye(5)[[1, 4, 0]]
    out, width = concat_label(*to_xp(h, c))
    assert width == 4 and tuple(out.shape) == (3, 9)
    np.testing.assert_array_equal(to_numpy(out), np.concatenate([h, c], axis=1))
    dout = rng.normal(size=(3, 9))
    dh = concat_label_backward(to_xp(dout), width)
    assert tuple(dh.shape) == (3, 4), "the gradient of [h, c] must go to h only"
    np.testing.assert_array_equal(to_numpy(dh), dout[:, :4])
    with pytest.raises(ValueError, match=r"the same batch, got \(3, 4\) and \(2, 5\)"):
        concat_label(*to_xp(h, c[:2]))


def test_the_label_changes_what_is_decoded_and_encoded(backend_name, to_numpy):
    model, x, labels, eps = _tiny(backend=backend_name)
    z = np.random.default_rng(3).standard_normal((4, 2))
    as_zeros = to_numpy(model.decode(z, np.zeros(4, dtype=np.int64)))
    as_twos = to_numpy(model.decode(z, np.full(4, 2)))
    assert as_zeros.shape == (4, 5) and not np.allclose(as_zeros, as_twos)
    mu_a, _ = model.encode(x, labels)
    mu_b, _ = model.encode(x, (labels + 1) % 3)
    assert not np.allclose(to_numpy(mu_a), to_numpy(mu_b))
    assert to_numpy(model.reconstruct(x, labels)).shape == (4, 5)
    assert to_numpy(model.kl_per_latent(x, labels)).shape == (2,)
    # the decoder's first weight matrix has z_dim + n_classes rows; row z_dim + y is label y's
    W0 = to_numpy(model.params["decoder.W0"])
    assert W0.shape == (2 + 3, 4)


def test_cvae_equals_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    model, x, labels, eps = _tiny("bernoulli", activation="tanh", beta=1.5)
    terms, grads = model.loss_and_grads(x, eps, labels=labels)
    p = {name: torch.tensor(np.array(v), requires_grad=True) for name, v in model.params.items()}
    tx, c = torch.from_numpy(x), F.one_hot(torch.from_numpy(labels), 3).double()
    h = torch.tanh(torch.cat([tx, c], 1) @ p["encoder.W0"] + p["encoder.b0"])
    h = h @ p["encoder.W1"] + p["encoder.b1"]
    mu, logvar = h[:, :2], h[:, 2:]
    z = mu + torch.exp(0.5 * logvar) * torch.from_numpy(eps)
    d = torch.tanh(torch.cat([z, c], 1) @ p["decoder.W0"] + p["decoder.b0"])
    logits = d @ p["decoder.W1"] + p["decoder.b1"]
    recon = F.binary_cross_entropy_with_logits(logits, tx, reduction="sum") / 4
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum() / 4
    loss = recon + 1.5 * kl
    loss.backward()
    err = max(rel_error(terms["loss"], loss.item()), rel_error(terms["kl"], kl.item()),
              *(rel_error(grads[name], p[name].grad.numpy()) for name in p))
    report("TORCH-ERR", "CVAE loss and every gradient", err)
    assert err < 1e-10


def test_float32_matches_float64(backend_name, to_xp, assert_matches_numpy):
    model, x, labels, eps = _tiny(backend=backend_name, dtype="float32")
    ref, _, _, _ = _tiny()
    ref.params.flat[...] = backend.to_numpy(model.params.flat).astype(np.float64)
    x32, eps32 = x.astype(np.float32), eps.astype(np.float32)
    terms, grads = model.loss_and_grads(*to_xp(x32, eps32), labels=labels)
    assert grads.dtype == np.float32
    ref_terms, ref_grads = ref.loss_and_grads(x32.astype(np.float64), eps32.astype(np.float64),
                                              labels=labels)
    assert_matches_numpy(terms["loss"], ref_terms["loss"], dtype=np.float32)
    assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="float32 gradients")


@pytest.mark.parametrize(
    "labels,error,match",
    [
        (None, TypeError, r"labels are required: an integer array of shape \(4,\)"),
        (np.array([0, 1, 3, 0]), ValueError, r"labels must be in 0\.\.2, got \[3\]"),
        (np.array([0, -1, 2, 0]), ValueError, r"labels must be in 0\.\.2, got \[-1\]"),
        (np.array([0.0, 1.0, 2.0, 0.0]), TypeError,
         "integer class indices 0..2, got dtype float64"),
        (np.eye(3)[[0, 1, 2, 0]], TypeError, r"pass labels\.argmax\(axis=1\) instead of one-hot"),
        (np.eye(4, dtype=np.int64)[[0, 1, 2, 0]], ValueError,
         r"labels must have shape \(4,\), one per row of x, got \(4, 4\)"),
        (np.array([0, 1, 2]), ValueError, r"labels must have shape \(4,\), one per row of x"),
        (np.array([True, False, True, True]), TypeError, "got dtype bool"),
    ],
)
def test_bad_labels_are_refused_everywhere(labels, error, match, backend_name, to_xp):
    model, x, _, eps = _tiny(backend=backend_name)
    given = [labels] if labels is None or labels.ndim == 0 else [labels, to_xp(labels)]
    for bad in given:  # as a NumPy array and as an array of the backend
        calls = (lambda b: model.loss_and_grads(x, eps, labels=b),
                 lambda b: model.loss(x, eps, labels=b),
                 lambda b: model.encode(x, b),
                 lambda b: model.reconstruct(x, b),
                 lambda b: fit(model, x, labels=b, epochs=1, progress=False))
        for call in calls:
            with pytest.raises(error, match=match):
                call(bad)


def test_other_bad_input(backend_name):
    model, x, labels, eps = _tiny(backend=backend_name)
    with pytest.raises(TypeError, match=r"takes the labels to draw, e.g\. np\.repeat"):
        model.sample(5)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2, got \[7\]"):
        model.sample(np.array([0, 7]))
    with pytest.raises(TypeError, match="labels are required"):
        model.decode(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        model.decode(np.zeros((2, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"eps must be \(batch, z_dim\) = \(4, 2\), got \(3, 2\)"):
        model.loss(x, np.zeros((3, 2)), labels=labels)
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        CVAE(5, 2, n_classes=1)
    with pytest.raises(TypeError, match="n_classes must be a positive integer"):
        CVAE(5, 2, n_classes=2.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        model.beta = -1
    with pytest.raises(TypeError, match="labels are required"):  # log p(x | y) needs y
        model.log_likelihood(x)


def test_samples_and_pieces_stay_on_the_backend(backend_name, xp):
    model, x, labels, _ = _tiny(backend=backend_name)
    outputs = [model.sample(np.array([0, 1, 2, 2, 1])), *model.encode(x, labels),
               model.reconstruct(x, labels)]
    assert all(backend.array_module(a) is xp for a in outputs), "a result left the backend"
    samples = backend.to_numpy(outputs[0])
    assert samples.shape == (5, 5) and np.all((samples > 0) & (samples < 1))


def test_checkpoint_round_trip(tmp_path, backend_name, to_numpy):
    model, x, labels, eps = _tiny("gaussian_learned", backend=backend_name, beta=0.7)
    path = minivae.save(model, tmp_path / "cvae.npz")
    loaded = minivae.load(path, backend=backend_name)
    assert type(loaded) is CVAE and loaded.config() == model.config()
    assert MODELS["CVAE"] is CVAE
    np.testing.assert_array_equal(to_numpy(loaded.params.flat), to_numpy(model.params.flat))
    assert loaded.loss(x, eps, labels=labels) == model.loss(x, eps, labels=labels)


@pytest.mark.slow
def test_training_lowers_the_held_out_loss_and_is_reproducible():
    from minivae.data import binarize, load_digits, train_test_split

    x, y = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(binarize(x), y, seed=0, stratify=y)
    runs = []
    for _ in range(2):
        model = CVAE(64, 2, (64,), n_classes=10, seed=0)
        history = fit(model, x_train, x_test, labels=y_train, val_labels=y_test, epochs=8,
                      batch_size=64, progress=False)
        runs.append((history.val["loss"], model.params.flat.copy()))
    assert history.val["loss"][-1] < history.val["loss"][0] - 5, history.val["loss"]
    assert runs[0][0] == runs[1][0], "the same seed gave other losses"
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    # the label is used: decoding the held-out codes under the wrong label costs more
    mu, _ = model.encode(x_test, y_test)
    right = model.likelihood.log_prob(model.decoder_output(mu, y_test), x_test).mean()
    wrong = model.likelihood.log_prob(model.decoder_output(mu, (y_test + 1) % 10), x_test).mean()
    assert right > wrong + 2, f"log p(x | z, y): right label {right:.1f}, wrong {wrong:.1f}"


def test_importance_sampling_decodes_every_sample_with_its_rows_label(backend_name, to_numpy):
    """log p(x | y) by importance sampling: a sample's log p(x|z, y) is the loss's, for its
    row's label; another label gives other numbers; k = 200 tightens the one-sample ELBO."""
    model, x, y, _ = _tiny(backend=backend_name)
    batch = model.prepare(x, labels=y)
    eps = np.random.default_rng(3).standard_normal((1, x.shape[0], model.z_dim))
    one = model.importance_samples(batch, 1, eps=eps)
    terms = model.loss(batch, eps[0])
    assert float(-to_numpy(one.log_px_z).mean()) == pytest.approx(terms["recon"], rel=1e-12)
    other = model.prepare(x, labels=(y + 1) % model.n_classes)
    moved = to_numpy(model.importance_samples(other, 1, eps=eps).log_px_z)
    assert not np.allclose(moved, to_numpy(one.log_px_z)), "the label must reach the decoder"
    log_px = to_numpy(model.log_likelihood(batch, k=200, rng=np.random.default_rng(4)))
    elbo = -np.mean([model.loss(batch, rng.standard_normal((x.shape[0], model.z_dim)))["loss"]
                     for rng in [np.random.default_rng(s) for s in range(50)]])
    assert log_px.shape == (x.shape[0],) and np.isfinite(log_px).all()
    assert log_px.mean() >= elbo - 0.5, "the IWAE bound at k = 200 should not be below the ELBO"
