"""M2 (Kingma et al. 2014): every gradient by finite differences (through the softmax of q(y | x)
in the unlabelled bound U(x) too) and against PyTorch autograd; U(x) against its definition from
the labelled bound; backends; bad labels and noise; checkpoints; training.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the gradient is
checked by finite differences; on the other backends it must give NumPy's numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

import minivae
from minivae import backend, fit, rel_error
from minivae.models import M2, MODELS
from minivae.models.m2 import semi_supervised_set
from minivae.softmax import entropy, log_softmax

LIKELIHOODS = ["bernoulli", "gaussian", "gaussian_learned"]
#: labelled and unlabelled rows mixed, all labelled, all unlabelled
LABELS = {
    "mixed": np.array([2, -1, 0, -1, 1]),
    "labelled": np.array([2, 1, 0, 0, 1]),
    "unlabelled": np.full(5, -1),
}


def _tiny(likelihood: str = "bernoulli", **kwargs) -> tuple[M2, np.ndarray, np.ndarray]:
    """A float64 M2 with 5 pixels, 2 latents, 3 classes, small networks; x (5, 5), eps (5, 3, 2).

    The weights are perturbed so that the classifier is far from uniform (both signs, larger).
    """
    kwargs.setdefault("dtype", "float64")
    kwargs.setdefault("alpha", 2.5)
    kwargs.setdefault("classifier_hidden", (3,))
    model = M2(5, 2, (4,), n_classes=3, likelihood=likelihood, seed=0, **kwargs)
    rng = np.random.default_rng(1)
    model.params.flat[...] += backend.to_device(
        0.5 * rng.standard_normal(model.n_params()), model.xp)
    return model, rng.random((5, 5)), rng.standard_normal((5, 3, 2))


@pytest.mark.parametrize("kind", sorted(LABELS))
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("activation,beta", [("relu", 1.0), ("tanh", 1.7)])
def test_m2_gradient_every_parameter(kind, likelihood, activation, beta, backend_name, to_xp,
                                     assert_matches_numpy):
    kwargs = dict(activation=activation, beta=beta, obs_var=0.5)
    model, x, eps = _tiny(likelihood, backend=backend_name, **kwargs)
    labels = LABELS[kind]
    terms, grads = model.loss_and_grads(*to_xp(x, eps), labels=to_xp(labels))
    if backend_name != "numpy":
        ref, _, _ = _tiny(likelihood, **kwargs)
        ref_terms, ref_grads = ref.loss_and_grads(x, eps, labels=labels)
        for key in ref_terms:
            assert_matches_numpy(terms[key], ref_terms[key], err_msg=f"{key} on {backend_name}")
        assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="gradients")
        return
    assert terms["loss"] == pytest.approx(
        terms["labelled"] + terms["unlabelled"] + 2.5 * terms["classification"], rel=1e-12)
    analytic = {name: np.array(g) for name, g in grads.items()}
    if kind == "unlabelled":  # the classifier learns from U(x) alone: its gradient is not zero
        assert np.abs(analytic["classifier.W0"]).max() > 1e-3
    err = fd_max_error(f"M2 {kind} {likelihood} {activation} beta={beta}",
                       lambda: model.loss(x, eps, labels=labels)["loss"], model.params, analytic)
    assert err < 1e-6, f"M2 ({kind}, {likelihood}) gradient disagrees with FD: {err:.2e}"


def _labelled_bound(model: M2, x_row: np.ndarray, y: int, eps_row: np.ndarray) -> float:
    """L(x, y) of one row from the model's own labelled term, with its noise eps_row[y]."""
    alpha, model.alpha = model.alpha, 0.0
    try:
        return model.loss(x_row[None], eps_row[None], labels=np.array([y]))["labelled"]
    finally:
        model.alpha = alpha


def test_the_unlabelled_bound_is_the_expected_labelled_bound_minus_the_entropy():
    model, x, eps = _tiny("gaussian_learned", beta=1.3)
    pi = np.array(model.classify(x))
    logits = np.array(model.classifier_logits(x))
    terms = model.loss(x, eps, labels=LABELS["unlabelled"])
    # U(x) = sum_y pi_y L(x, y) - H(pi), each L(x, y) from the labelled path with eps[i, y]
    bounds = np.array([[_labelled_bound(model, x[i], y, eps[i]) for y in range(3)]
                       for i in range(5)])
    expected = (pi * bounds).sum(axis=1) - entropy(logits)
    assert terms["unlabelled"] == pytest.approx(expected.mean(), rel=1e-12)
    assert terms["labelled"] == 0 and terms["classification"] == 0
    # L(x, y) = recon + beta * KL + log K: log p(y) = -log K is part of the bound
    mu, logvar = model.encode(x[:1], np.array([1]))
    z = mu + np.exp(0.5 * logvar) * eps[:1, 1]
    recon = -model.likelihood.log_prob(model.decoder_output(z, np.array([1])), x[:1])[0]
    kl = -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar))
    assert bounds[0, 1] == pytest.approx(recon + 1.3 * kl + math.log(3), rel=1e-12)
    # the mixed batch is the sum of its rows' terms
    mixed = model.loss(x, eps, labels=LABELS["mixed"])
    per_row = [model.loss(x[i:i + 1], eps[i:i + 1], labels=LABELS["mixed"][i:i + 1])
               for i in range(5)]
    for key in ("labelled", "unlabelled", "classification", "recon", "kl"):
        assert mixed[key] == pytest.approx(np.mean([t[key] for t in per_row]), rel=1e-12)


def test_the_classifier_gradient_from_U_is_pi_times_L_plus_log_pi_minus_U():
    """dU/da = pi * (L + log pi - U) per unlabelled row, from dU/dpi = L + log pi + 1."""
    model, x, eps = _tiny("bernoulli", classifier_hidden=())  # logits = x @ W0 + b0
    model.alpha = 0.0
    labels = LABELS["unlabelled"]
    _, grads = model.loss_and_grads(x, eps, labels=labels)
    logits = np.array(model.classifier_logits(x))
    log_pi = log_softmax(logits)
    pi = np.exp(log_pi)
    bounds = np.array([[_labelled_bound(model, x[i], y, eps[i]) for y in range(3)]
                       for i in range(5)])
    u = (pi * (bounds + log_pi)).sum(axis=1, keepdims=True)
    dlogits = pi * (bounds + log_pi - u) / 5
    np.testing.assert_allclose(np.array(grads["classifier.b0"]), dlogits.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(np.array(grads["classifier.W0"]), x.T @ dlogits, rtol=1e-10)


def test_alpha_scales_the_classification_gradient_only():
    model, x, eps = _tiny()
    labels = LABELS["labelled"]
    grads = {}
    for alpha in (0.0, 1.0, 3.0):
        model.alpha = alpha
        grads[alpha] = {name: np.array(g) for name, g in model.loss_and_grads(
            x, eps, labels=labels)[1].items()}
    # all rows labelled, alpha = 0: nothing reaches the classifier
    assert not np.any(grads[0.0]["classifier.W0"])
    for name in grads[1.0]:
        if name.startswith("classifier."):
            np.testing.assert_allclose(grads[3.0][name], 3 * grads[1.0][name], rtol=1e-12)
        else:  # the encoder and decoder do not see alpha
            np.testing.assert_array_equal(grads[3.0][name], grads[0.0][name])


def _torch_loss(torch, model: M2, x: np.ndarray, eps: np.ndarray, labels: np.ndarray, p: dict):
    """The M2 objective written with PyTorch on the enumerated batch (Bernoulli, tanh nets)."""
    F = torch.nn.functional
    n, k = x.shape[0], model.n_classes
    tx = torch.from_numpy(x)

    def mlp(prefix, inp, layers):
        for i in range(layers):
            inp = inp @ p[f"{prefix}W{i}"] + p[f"{prefix}b{i}"]
            if i < layers - 1:
                inp = torch.tanh(inp)
        return inp

    logits = mlp("classifier.", tx, model.classifier.n_layers)
    log_pi = torch.log_softmax(logits, dim=1)
    pi = log_pi.exp()
    x_rep = tx.repeat_interleave(k, dim=0)
    c_rep = torch.eye(k, dtype=torch.float64).repeat(n, 1)
    h = mlp("encoder.", torch.cat([x_rep, c_rep], 1), model.encoder.n_layers)
    mu, logvar = h[:, :2], h[:, 2:]
    z = mu + torch.exp(0.5 * logvar) * torch.from_numpy(eps.reshape(n * k, 2))
    out = mlp("decoder.", torch.cat([z, c_rep], 1), model.decoder.n_layers)
    recon = F.binary_cross_entropy_with_logits(out, x_rep, reduction="none").sum(1)
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)
    bound = (recon + model.beta * kl).reshape(n, k) + math.log(k)
    lab = torch.from_numpy(labels >= 0)
    y = F.one_hot(torch.from_numpy(np.maximum(labels, 0)), k).double() * lab[:, None]
    unl = (~lab).double()[:, None]
    total = (y * bound).sum() + (unl * pi * (bound + log_pi)).sum() \
        - model.alpha * (y * log_pi).sum()
    return total / n


@pytest.mark.parametrize("kind", sorted(LABELS))
def test_m2_equals_torch(kind):
    torch = pytest.importorskip("torch")
    model, x, eps = _tiny("bernoulli", activation="tanh", beta=1.4,
                          classifier_hidden=(4, 3))
    labels = LABELS[kind]
    terms, grads = model.loss_and_grads(x, eps, labels=labels)
    p = {name: torch.tensor(np.array(v), requires_grad=True) for name, v in model.params.items()}
    loss = _torch_loss(torch, model, x, eps, labels, p)
    loss.backward()
    err = max(rel_error(terms["loss"], loss.item()),
              *(rel_error(grads[name], p[name].grad.numpy()) for name in p))
    report("TORCH-ERR", f"M2 {kind} loss and every gradient", err)
    assert err < 1e-10


def test_float32_matches_float64(backend_name, to_xp, assert_matches_numpy):
    model, x, eps = _tiny(backend=backend_name, dtype="float32")
    ref, _, _ = _tiny()
    ref.params.flat[...] = backend.to_numpy(model.params.flat).astype(np.float64)
    x32, eps32 = x.astype(np.float32), eps.astype(np.float32)
    labels = LABELS["mixed"]
    terms, grads = model.loss_and_grads(*to_xp(x32, eps32), labels=labels)
    ref_terms, ref_grads = ref.loss_and_grads(x32.astype(np.float64), eps32.astype(np.float64),
                                              labels=labels)
    for key in ref_terms:
        assert_matches_numpy(terms[key], ref_terms[key], dtype=np.float32, err_msg=key)
    assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="float32 gradients")


def test_classifier_outputs(backend_name, xp, to_numpy):
    model, x, _ = _tiny(backend=backend_name)
    probs = model.classify(x)
    assert backend.array_module(probs) is xp
    probs = to_numpy(probs)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(model.predict(x)), probs.argmax(axis=1))
    samples = to_numpy(model.sample(np.array([0, 1, 2])))
    assert samples.shape == (3, 5)


def test_no_labels_means_every_row_is_unlabelled(backend_name):
    model, x, eps = _tiny(backend=backend_name)
    assert model.loss(x, eps) == model.loss(x, eps, labels=LABELS["unlabelled"])
    fit(model, x, epochs=1, batch_size=2, progress=False)  # unlabelled data only


@pytest.mark.parametrize(
    "labels,error,match",
    [
        (np.array([0, 1, 3, -1, 0]), ValueError, r"labels must be in 0\.\.2 or -1 \(unlabelled\), "
                                                 r"got \[3\]"),
        (np.array([0, -2, 2, -1, 0]), ValueError, r"or -1 \(unlabelled\), got \[-2\]"),
        (np.array([0.0, 1.0, -1.0, 0.0, 1.0]), TypeError, "integer class indices 0..2"),
        (np.eye(3)[[0, 1, 2, 0, 1]], TypeError, r"labels\.argmax\(axis=1\)"),
        (np.array([0, 1, -1]), ValueError, r"labels must have shape \(5,\), one per row of x, "
                                           r"got \(3,\)"),
        (np.full((5, 1), -1), ValueError, r"labels must have shape \(5,\)"),
    ],
)
def test_bad_labels_are_refused(labels, error, match, backend_name, to_xp):
    model, x, eps = _tiny(backend=backend_name)
    for bad in (labels, to_xp(labels)):
        with pytest.raises(error, match=match):
            model.loss_and_grads(x, eps, labels=bad)
        with pytest.raises(error, match=match):
            fit(model, x, labels=bad, epochs=1, progress=False)


def test_other_bad_input(backend_name):
    model, x, eps = _tiny(backend=backend_name)
    labels = LABELS["mixed"]
    with pytest.raises(ValueError, match=r"eps must be \(batch, n_classes, z_dim\) = \(5, 3, 2\), "
                                         r"got \(5, 2, 2\)"):
        model.loss(x, eps[:, :2], labels=labels)
    with pytest.raises(ValueError, match="eps must have 3 axes"):
        model.loss(x, eps[:, 0], labels=labels)
    with pytest.raises(ValueError, match=r"needs a label for every row, got -1 \(unlabelled\) in "
                                         r"rows \[1, 3\]"):
        model.encode(x, labels)
    with pytest.raises(ValueError, match=r"q\(z \| x, y\) needs a label for every row"):
        model.reconstruct(x)
    with pytest.raises(ValueError, match=r"p\(x \| z, y\) needs a label for every row"):
        model.decode(np.zeros((2, 2)), np.array([0, -1]))
    with pytest.raises(ValueError, match=r"sampling p\(x \| z, y\) needs a label for every row"):
        model.sample(np.array([1, -1]))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        model.alpha = -0.5
    with pytest.raises(ValueError, match="alpha must be finite"):
        M2(5, 2, alpha=float("nan"))
    with pytest.raises(TypeError, match="hidden must be a sequence"):
        M2(5, 2, classifier_hidden=4)
    with pytest.raises(ValueError, match=r"must have 5 features per row"):
        model.classify(np.zeros((2, 4)))


def test_semi_supervised_set():
    rng = np.random.default_rng(0)
    x_lab, y_lab, x_unl = rng.random((3, 4)), np.array([2, 0, 1]), rng.random((5, 4))
    x, labels = semi_supervised_set(x_lab, y_lab, x_unl, repeat_labelled=2)
    assert x.shape == (11, 4) and labels.shape == (11,) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [-1] * 5 + [2, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(x[5:8], x_lab)
    np.testing.assert_array_equal(x[8:], x_lab)
    np.testing.assert_array_equal(x[:5], x_unl)
    with pytest.raises(ValueError, match=r"the same D, got \(3, 4\) and \(5, 3\)"):
        semi_supervised_set(x_lab, y_lab, x_unl[:, :3])
    with pytest.raises(ValueError, match=r"y_labelled must have shape \(3,\)"):
        semi_supervised_set(x_lab, y_lab[:2], x_unl)
    with pytest.raises(ValueError, match="integers >= 0"):
        semi_supervised_set(x_lab, np.array([0, -1, 1]), x_unl)
    with pytest.raises(ValueError, match="integers >= 0"):
        semi_supervised_set(x_lab, np.array([0.0, 1.0, 1.0]), x_unl)
    with pytest.raises(ValueError, match="repeat_labelled must be >= 1"):
        semi_supervised_set(x_lab, y_lab, x_unl, repeat_labelled=0)


def test_checkpoint_round_trip(tmp_path, backend_name, to_numpy):
    model, x, eps = _tiny("gaussian", backend=backend_name, alpha=7.0)
    path = minivae.save(model, tmp_path / "m2.npz")
    loaded = minivae.load(path, backend=backend_name)
    assert type(loaded) is M2 and loaded.config() == model.config() and loaded.alpha == 7.0
    assert MODELS["M2"] is M2
    np.testing.assert_array_equal(to_numpy(loaded.params.flat), to_numpy(model.params.flat))
    labels = LABELS["mixed"]
    assert loaded.loss(x, eps, labels=labels) == model.loss(x, eps, labels=labels)


@pytest.mark.slow
def test_training_on_few_labels_learns_and_is_reproducible():
    """100 labelled 8x8 digits and the rest unlabelled: the held-out loss falls, q(y|x) learns."""
    from minivae.data import binarize, load_digits, train_test_split

    x, y = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(binarize(x), y, seed=0, stratify=y)
    labelled = np.concatenate([np.flatnonzero(y_train == c)[:10] for c in range(10)])
    rest = np.setdiff1d(np.arange(len(x_train)), labelled)
    x_ss, labels = semi_supervised_set(x_train[labelled], y_train[labelled], x_train[rest], 3)
    runs = []
    for _ in range(2):
        model = M2(64, 4, (64,), n_classes=10, classifier_hidden=(64,), alpha=20.0, seed=0)
        chance = float((np.asarray(model.predict(x_test)) == y_test).mean())
        history = fit(model, x_ss, x_test, labels=labels, val_labels=y_test, epochs=6,
                      batch_size=64, lr=3e-3, progress=False)
        runs.append((history.val["loss"], model.params.flat.copy()))
    accuracy = float((np.asarray(model.predict(x_test)) == y_test).mean())
    assert history.val["loss"][-1] < history.val["loss"][0], history.val["loss"]
    assert chance < 0.3 and accuracy > 0.7, f"q(y|x) accuracy {chance:.2f} -> {accuracy:.2f}"
    assert runs[0][0] == runs[1][0], "the same seed gave other losses"
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
