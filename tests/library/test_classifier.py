"""The softmax pieces (minivae.softmax), the Classifier model and M1's features.

Every backward is checked by central finite differences in float64 (errors printed as FD-ERR,
run with -s) and against PyTorch autograd (TORCH-ERR); tests that take ``backend_name`` run on
every backend (see conftest.py) and compare with NumPy there.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

import minivae
from minivae import VAE, backend, fit, rel_error
from minivae.gradcheck import numerical_gradient
from minivae.models import Classifier
from minivae.models.classifier import posterior_mean_features
from minivae.softmax import (
    cross_entropy,
    entropy,
    log_softmax,
    one_hot,
    softmax,
    softmax_backward,
)

# ----------------------------------------------------------------------------- the pieces


def test_log_softmax_cannot_overflow_and_matches_the_definition(backend_name, to_xp, to_numpy):
    logits = np.array([[1e4, 0.0, -1e4], [-3.0, 2.0, 0.5], [800.0, 799.0, 798.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow on NumPy
        log_probs = to_numpy(log_softmax(to_xp(logits)))
        probs = to_numpy(softmax(to_xp(logits)))
    assert np.all(np.isfinite(log_probs)), f"log_softmax gave non-finite values: {log_probs}"
    np.testing.assert_allclose(log_probs[0], [0.0, -1e4, -2e4], rtol=1e-12)
    moderate = logits[1]
    direct = moderate - np.log(np.exp(moderate).sum())  # fine for moderate logits
    np.testing.assert_allclose(log_probs[1], direct, rtol=1e-12)
    np.testing.assert_allclose(log_probs[2], log_probs[2] - log_probs[2].max() + np.log(
        1 / (1 + np.exp(-1.0) + np.exp(-2.0))), rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(probs, np.exp(log_probs), rtol=1e-12)
    f32 = to_numpy(log_softmax(to_xp(logits.astype(np.float32))))
    assert f32.dtype == np.float32 and np.all(np.isfinite(f32)), "float32 log_softmax overflowed"


def test_softmax_backward_by_finite_differences():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5)) * 2
    upstream = rng.normal(size=(4, 5))  # loss = sum(upstream * softmax(logits))
    analytic = softmax_backward(upstream, softmax(logits))
    numeric = numerical_gradient(lambda: float((upstream * softmax(logits)).sum()), logits)
    err = report("FD-ERR", "softmax_backward", rel_error(analytic, numeric))
    assert err < 1e-8
    # a constant added to a row of dpi drops out (the probabilities sum to one)
    shifted = softmax_backward(upstream + rng.normal(size=(4, 1)), softmax(logits))
    np.testing.assert_allclose(shifted, analytic, atol=1e-14)


def test_cross_entropy_value_and_gradient():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2, 3])
    y = one_hot(labels, 4)
    loss, dlogits = cross_entropy(logits, y)
    expected = -np.mean(log_softmax(logits)[np.arange(6), labels])
    assert loss == pytest.approx(expected, rel=1e-12)
    numeric = numerical_gradient(lambda: cross_entropy(logits, y)[0], logits)
    assert report("FD-ERR", "cross_entropy", rel_error(dlogits, numeric)) < 1e-8
    big = np.array([[1e4, -1e4], [-1e4, 1e4]])
    loss_big, grad_big = cross_entropy(big, one_hot(np.array([1, 1]), 2))
    assert loss_big == pytest.approx(1e4, rel=1e-12) and np.all(np.isfinite(grad_big))


def test_entropy_of_uniform_and_certain_rows(backend_name, to_xp, to_numpy):
    logits = np.array([[0.0, 0.0, 0.0, 0.0], [1e4, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    h = to_numpy(entropy(to_xp(logits)))
    p = softmax(logits[2])
    np.testing.assert_allclose(h, [np.log(4), 0.0, -np.sum(p * np.log(p))], atol=1e-12)


def test_one_hot_rows(backend_name, xp, to_xp, to_numpy):
    y = to_numpy(one_hot(to_xp(np.array([2, 0, 1])), 3, np.float32))
    np.testing.assert_array_equal(y, np.eye(3, dtype=np.float32)[[2, 0, 1]])
    assert y.dtype == np.float32


def test_the_pieces_equal_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 3)) * 4
    labels = np.array([2, 0, 1, 1, 0])
    t = torch.tensor(logits, requires_grad=True)
    torch_loss = torch.nn.functional.cross_entropy(t, torch.from_numpy(labels))
    torch_loss.backward()
    loss, dlogits = cross_entropy(logits, one_hot(labels, 3))
    err = max(rel_error(loss, torch_loss.item()), rel_error(dlogits, t.grad.numpy()),
              rel_error(log_softmax(logits),
                        torch.log_softmax(torch.from_numpy(logits), 1).numpy()))
    t2 = torch.tensor(logits, requires_grad=True)
    probs = torch.softmax(t2, dim=1)
    upstream = rng.normal(size=(5, 3))
    (probs * torch.from_numpy(upstream)).sum().backward()
    err = max(err, rel_error(softmax_backward(upstream, softmax(logits)), t2.grad.numpy()))
    report("TORCH-ERR", "softmax pieces", err)
    assert err < 1e-12


# ----------------------------------------------------------------------------- the Classifier


def _data(n: int = 7, d: int = 6, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), np.arange(n) % k


@pytest.mark.parametrize("hidden,weight_decay", [((), 0.0), ((5,), 0.3), ((5, 4), 1.5)])
def test_classifier_gradient_every_parameter(hidden, weight_decay, backend_name, to_xp,
                                             assert_matches_numpy):
    x, y = _data()
    model = Classifier(6, 3, hidden, "tanh", weight_decay, dtype="float64", seed=1,
                       backend=backend_name)
    terms, grads = model.loss_and_grads(to_xp(x), labels=to_xp(y))
    if backend_name != "numpy":
        ref = Classifier(6, 3, hidden, "tanh", weight_decay, dtype="float64", seed=1)
        ref_terms, ref_grads = ref.loss_and_grads(x, labels=y)
        for key in ref_terms:
            assert_matches_numpy(terms[key], ref_terms[key], err_msg=key)
        assert_matches_numpy(grads.flat, ref_grads.flat, err_msg="gradients")
        return
    assert terms["loss"] >= terms["cross_entropy"]
    analytic = {name: np.array(g) for name, g in grads.items()}
    err = fd_max_error(f"Classifier {hidden} wd={weight_decay}",
                       lambda: model.loss(x, labels=y)["loss"], model.params, analytic)
    assert err < 1e-7


def test_classifier_equals_torch():
    torch = pytest.importorskip("torch")
    x, y = _data(9, 6, 4)
    model = Classifier(6, 4, (5,), "relu", weight_decay=0.2, dtype="float64", seed=2)
    terms, grads = model.loss_and_grads(x, labels=y)
    params = {name: torch.tensor(np.array(v), requires_grad=True)
              for name, v in model.params.items()}
    h = torch.relu(torch.from_numpy(x) @ params["classifier.W0"] + params["classifier.b0"])
    logits = h @ params["classifier.W1"] + params["classifier.b1"]
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    for name in ("classifier.W0", "classifier.W1"):  # weight_decay / 2 * ||W||^2
        loss = loss + 0.1 * (params[name] ** 2).sum()
    loss.backward()
    err = max(rel_error(terms["loss"], loss.item()),
              *(rel_error(grads[name], params[name].grad.numpy()) for name in params))
    report("TORCH-ERR", "Classifier", err)
    assert err < 1e-12


def test_classifier_predictions_and_accuracy(backend_name, xp, to_numpy):
    x, y = _data(20, 6, 3)
    model = Classifier(6, 3, (5,), seed=0, backend=backend_name)
    probs = to_numpy(model.predict_proba(x))
    assert probs.shape == (20, 3) and np.allclose(probs.sum(axis=1), 1, rtol=1e-6)
    predicted = model.predict(x)
    assert backend.array_module(predicted) is xp
    np.testing.assert_array_equal(to_numpy(predicted), probs.argmax(axis=1))
    assert model.accuracy(x, y) == pytest.approx(np.mean(probs.argmax(axis=1) == y))
    assert model.loss(x, labels=y)["accuracy"] == pytest.approx(model.accuracy(x, y))


@pytest.mark.parametrize(
    "labels,error,match",
    [
        (np.array([0, 1, 3, 0]), ValueError, r"labels must be in 0\.\.2, got \[3\]"),
        (np.array([0, 1, -1, 0]), ValueError, r"labels must be in 0\.\.2, got \[-1\]"),
        (np.array([0.0, 1.0, 2.0, 0.0]), TypeError, "must hold integer class indices"),
        (np.eye(3)[[0, 1, 2, 0]], TypeError, r"labels\.argmax\(axis=1\)"),
        (np.array([0, 1, 2]), ValueError, r"labels must have shape \(4,\), one per row of x"),
        ("0120", TypeError, "labels must be an integer array of shape"),
    ],
)
def test_classifier_bad_labels(labels, error, match, backend_name):
    model = Classifier(6, 3, seed=0, backend=backend_name)
    x = np.zeros((4, 6), dtype=np.float32)
    with pytest.raises(error, match=match):
        model.loss_and_grads(x, labels=labels)
    with pytest.raises(error, match=match):
        fit(model, x, labels=labels, epochs=1, progress=False)


def test_classifier_bad_arguments():
    with pytest.raises(TypeError, match="a Classifier's loss needs labels"):
        Classifier(6, 3).loss(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        Classifier(6, 1)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        Classifier(6, 3, weight_decay=-1.0)
    with pytest.raises(TypeError, match="hidden must be a sequence"):
        Classifier(6, 3, hidden=5)
    with pytest.raises(ValueError, match="must have 6 features per row"):
        Classifier(6, 3).predict(np.zeros((2, 5)))


def test_classifier_round_trips(tmp_path):
    x, y = _data()
    model = Classifier(6, 3, (5,), weight_decay=0.1, seed=4)
    fit(model, x.astype(np.float32), labels=y, epochs=3, batch_size=4, progress=False)
    loaded = minivae.load(minivae.save(model, tmp_path / "clf.npz"))
    assert loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.params.flat, model.params.flat)
    assert loaded.loss(x, labels=y) == model.loss(x, labels=y)


@pytest.mark.slow
def test_training_learns_the_digits_and_is_reproducible():
    from minivae.data import load_digits, train_test_split

    x, y = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(x, y, seed=0, stratify=y)
    runs = []
    for _ in range(2):
        model = Classifier(64, 10, (), weight_decay=1e-3, seed=0)
        before = model.accuracy(x_test, y_test)
        history = fit(model, x_train, x_test, labels=y_train, val_labels=y_test, epochs=10,
                      batch_size=64, lr=1e-2, progress=False)
        runs.append((history.val["loss"], model.params.flat.copy()))
    assert history.val["loss"][-1] < history.val["loss"][0]
    assert before < 0.3 and model.accuracy(x_test, y_test) > 0.9, (
        f"logistic regression on the 8x8 digits: accuracy {before:.2f} -> "
        f"{model.accuracy(x_test, y_test):.2f}, expected > 0.9"
    )
    assert runs[0][0] == runs[1][0], "the same seed gave other losses"
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


# ----------------------------------------------------------------------------- M1's features


def test_posterior_mean_features_are_the_means_in_chunks(backend_name, to_numpy):
    rng = np.random.default_rng(3)
    x = rng.random((11, 6))
    vae = VAE(6, 3, (5,), seed=0, dtype="float64", backend=backend_name)
    features = posterior_mean_features(vae, x, batch_size=4)  # 4 + 4 + 3 rows
    assert isinstance(features, np.ndarray) and features.dtype == np.float64
    assert features.shape == (11, 3)
    mu, _ = vae.encode(x)
    np.testing.assert_allclose(features, to_numpy(mu), rtol=1e-12)
    with pytest.raises(TypeError, match="batch_size must be a positive integer"):
        posterior_mean_features(vae, x, batch_size=2.5)
