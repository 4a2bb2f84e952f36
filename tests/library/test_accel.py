"""minivae.accel: one switch for every fast path, and each fast path against its plain reference.

The optimizers' fast updates are compared in test_optim_fast.py, the fused kernels in
test_kernels.py; here: the switch, the in-place Bernoulli loss, the MLP backward into the
gradient buffer, and whole training runs with and without acceleration, bit for bit, on every
backend (NumPy, the stand-in; CuPy where a GPU answers).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

from minivae import SGD, VAE, Adam, Autoencoder, accel, fit
from minivae.accel import inplace, kernels
from minivae.layers import sigmoid, softplus
from minivae.likelihoods import make_likelihood
from minivae.losses import bernoulli_log_prob, bernoulli_nll, bernoulli_nll_rows
from minivae.mlp import MLP
from minivae.params import Parameters

# ---------------------------------------------------------------------------------------------
# The switch
# ---------------------------------------------------------------------------------------------


def test_the_switch_and_its_context_manager():
    assert accel.enabled(), "acceleration is on by default (MINIVAE_ACCEL unset)"
    with accel.disabled():
        assert not accel.enabled()
        with accel.disabled():  # nests
            assert not accel.enabled()
        assert not accel.enabled()
        assert accel.set_enabled(True) is False  # returns the previous setting
        assert accel.enabled()
    assert accel.enabled()
    with pytest.raises(KeyError), accel.disabled():
        raise KeyError("an error inside the block")
    assert accel.enabled(), "the switch must be restored when the block raises"


def test_environment_variables_switch_acceleration_and_the_kernels_apart():
    code = ("from minivae import accel; from minivae.accel import kernels; "
            "print(accel.enabled(), kernels.enabled())")
    for env, expected in [({}, "True True"), ({"MINIVAE_ACCEL": "0"}, "False True"),
                          ({"MINIVAE_ACCEL": "no"}, "False True"),
                          ({"MINIVAE_FUSED_KERNELS": "0"}, "True False"),
                          ({"MINIVAE_ACCEL": "1"}, "True True")]:
        full = {k: v for k, v in os.environ.items()
                if k not in ("MINIVAE_ACCEL", "MINIVAE_FUSED_KERNELS")}
        out = subprocess.run([sys.executable, "-c", code], env={**full, **env},
                             capture_output=True, text=True, check=False)
        assert out.stdout.strip() == expected, (env, out.stderr)


def test_no_fast_path_runs_when_acceleration_is_off(monkeypatch):
    """With the switch off, training runs the plain references only (each fast path, replaced
    by a recorder here, is never called); with it on, each is."""
    called = []
    for module, name in ((inplace, "bernoulli_entries"), (inplace, "mlp_backward_into")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: (
            called.append(_n), _f(*a, **k))[1])
    from minivae.accel import updates

    original_adam = updates.adam
    monkeypatch.setattr(updates, "adam", lambda *a, **k: (called.append("adam"),
                                                          original_adam(*a, **k))[1])
    x = (np.random.default_rng(0).random((32, 10)) < 0.5).astype(np.float32)
    with accel.disabled():
        fit(VAE(10, 2, (8,), seed=0), x, epochs=1, batch_size=32, progress=False)
    assert called == []
    fit(VAE(10, 2, (8,), seed=0), x, epochs=1, batch_size=32, progress=False)
    assert sorted(set(called)) == ["adam", "bernoulli_entries", "mlp_backward_into"]


# ---------------------------------------------------------------------------------------------
# The Bernoulli loss
# ---------------------------------------------------------------------------------------------


def _logits_and_x(dtype, shape=(33, 17), seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(shape) * 8).astype(dtype)
    logits[0, :6] = [1e4, -1e4, 0.0, -0.0, 88.0, -104.0]  # saturated, zero, exp's limits
    x = (rng.random(shape) < 0.4).astype(dtype)
    x[1] = rng.random(shape[1])  # grey levels too
    return logits, x


# (33, 17): SIMD loops' tails everywhere; (300, 787): full vector lengths, a training batch's size
@pytest.mark.parametrize("shape", [(33, 17), (300, 787)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_bernoulli_loss_equals_the_plain_formula_bit_for_bit(dtype, shape, xp, to_xp,
                                                                     to_numpy):
    logits, x = to_xp(*_logits_and_x(dtype, shape))
    batch = shape[0]
    per_entry, dlogits = inplace.bernoulli_entries(logits, x)
    loss = float(per_entry.sum()) / batch  # as losses.bernoulli_nll sums it
    with accel.disabled():
        plain_loss, plain_dlogits = bernoulli_nll(logits, x)
    assert loss == plain_loss and isinstance(plain_loss, float)
    assert dlogits.dtype == dtype
    np.testing.assert_array_equal(to_numpy(dlogits), to_numpy(plain_dlogits))
    # the plain code is the formula: softplus(l) - x l and (sigmoid(l) - x) / batch
    host_logits, host_x = to_numpy(logits), to_numpy(x)
    assert plain_loss == float((softplus(host_logits) - host_x * host_logits).sum()) / batch
    np.testing.assert_array_equal(to_numpy(plain_dlogits),
                                  (sigmoid(host_logits) - host_x) / batch)
    # and the library's function takes the in-place path by default (no kernel on these)
    if kernels.get("bernoulli_nll", xp) is None:
        default_loss, default_dlogits = bernoulli_nll(logits, x)
        assert default_loss == loss
        np.testing.assert_array_equal(to_numpy(default_dlogits), to_numpy(dlogits))


@pytest.mark.parametrize("shape", [(33, 17), (300, 787)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bernoulli_rows_equal_minus_log_prob_and_the_nll_gradient_bit_for_bit(dtype, shape, xp,
                                                                             to_xp, to_numpy):
    """nll_rows (IWAE's and M2's per-row term with its gradient, in one pass) is -log_prob per row
    and bernoulli_nll's gradient, bit for bit, on the fast path and on the plain one."""
    logits, x = to_xp(*_logits_and_x(dtype, shape, seed=3))
    per_entry, dlogits = inplace.bernoulli_entries(logits, x)
    rows = per_entry.sum(axis=1)  # as losses.bernoulli_nll_rows sums it
    with accel.disabled():
        plain_rows, plain_dlogits = bernoulli_nll_rows(logits, x)
        minus_log_prob = -bernoulli_log_prob(logits, x)
        _, nll_dlogits = bernoulli_nll(logits, x)
    assert rows.shape == (shape[0],) and rows.dtype == dtype and dlogits.dtype == dtype
    for got, want in [(rows, plain_rows), (plain_rows, minus_log_prob), (dlogits, plain_dlogits),
                      (plain_dlogits, nll_dlogits)]:
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
    if kernels.get("bernoulli_nll", xp) is None:  # the default path is the in-place one
        default_rows, default_dlogits = bernoulli_nll_rows(logits, x)
        np.testing.assert_array_equal(to_numpy(default_rows), to_numpy(rows))
        np.testing.assert_array_equal(to_numpy(default_dlogits), to_numpy(dlogits))


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "gaussian_learned"])
@pytest.mark.parametrize("masked", [False, True])
def test_every_likelihoods_nll_rows_is_minus_log_prob_and_the_nll_gradient(name, masked, xp,
                                                                          to_xp, to_numpy):
    rng = np.random.default_rng(5)
    likelihood = make_likelihood(name)
    width = 11 * likelihood.outputs_per_pixel
    out = rng.standard_normal((7, width)) * 3
    x = (rng.random((7, 11)) < 0.5).astype(np.float64)
    mask = rng.random((7, 11)) < 0.7 if masked else None
    out, x = to_xp(out, x)
    mask = None if mask is None else to_xp(mask)
    rows, dout = likelihood.nll_rows(out, x, mask)
    _, nll_dout = likelihood.nll(out, x, mask)
    np.testing.assert_array_equal(to_numpy(rows), to_numpy(-likelihood.log_prob(out, x, mask)))
    np.testing.assert_array_equal(to_numpy(dout), to_numpy(nll_dout))
    assert rows.shape == (7,) and dout.shape == out.shape


def _mlp_and_input(activation, dtype, seed, to_xp):
    """A 9-7-5-4 MLP, its parameters on the backend, a (6, 9) input, and the generator after."""
    rng = np.random.default_rng(seed)
    mlp = MLP([9, 7, 5, 4], activation, "enc.")
    host = Parameters.zeros(mlp.param_shapes(), dtype)
    mlp.init_params(host, rng)
    params = Parameters(to_xp(host.flat), host.shapes())
    return mlp, params, to_xp(rng.standard_normal((6, 9)).astype(dtype)), rng


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_forward_with_the_relu_in_place_equals_the_plain_forward(activation, dtype, xp, to_xp,
                                                                    to_numpy):
    """The fast forward overwrites each product with its ReLU; outputs and caches are the plain
    forward's, bit for bit, and the input is never written to."""
    mlp, params, x, rng = _mlp_and_input(activation, dtype, 6, to_xp)
    x_before = to_numpy(x).copy()
    out, caches = mlp.forward(params, x)
    with accel.disabled():
        plain_out, plain_caches = mlp.forward(params, x)
    np.testing.assert_array_equal(to_numpy(out), to_numpy(plain_out))
    np.testing.assert_array_equal(to_numpy(x), x_before)
    for (linear, act), (plain_linear, plain_act) in zip(caches, plain_caches, strict=True):
        np.testing.assert_array_equal(to_numpy(linear[0]), to_numpy(plain_linear[0]))
        if act is not None and not isinstance(act, tuple):
            np.testing.assert_array_equal(to_numpy(act), to_numpy(plain_act))


# ---------------------------------------------------------------------------------------------
# The MLP backward pass into the gradient buffer
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_backward_into_buffers_equals_the_plain_loop_bit_for_bit(activation, dtype, xp,
                                                                     to_xp, to_numpy):
    mlp, params, x, rng = _mlp_and_input(activation, dtype, 1, to_xp)
    out, caches = mlp.forward(params, x)
    dout = to_xp(rng.standard_normal(out.shape).astype(dtype))
    with accel.disabled():
        dx_plain, plain = mlp.backward(dout, caches)  # a new dict
        dx_plain_into, plain_into = mlp.backward(dout, caches, params.zeros_like())
    for need_dx in (True, False):
        grads = params.zeros_like()
        dx, returned = mlp.backward(dout, caches, grads, need_dx=need_dx)
        assert returned is grads
        if need_dx:
            np.testing.assert_array_equal(to_numpy(dx), to_numpy(dx_plain))
        else:
            assert dx is None
        for name in plain:
            np.testing.assert_array_equal(to_numpy(grads[name]), to_numpy(plain[name]),
                                          err_msg=f"{name}, need_dx={need_dx}")
            np.testing.assert_array_equal(to_numpy(plain_into[name]), to_numpy(plain[name]))
    np.testing.assert_array_equal(to_numpy(dx_plain_into), to_numpy(dx_plain))
    with accel.disabled():  # the plain loop also honours need_dx
        assert mlp.backward(dout, caches, params.zeros_like(), need_dx=False)[0] is None


def test_the_fast_mlp_backward_writes_into_the_buffer_without_a_copy():
    mlp = MLP([5, 4, 3], "relu")
    params = Parameters.zeros(mlp.param_shapes(), np.float64)
    mlp.init_params(params, np.random.default_rng(2))
    out, caches = mlp.forward(params, np.random.default_rng(3).standard_normal((4, 5)))
    grads = params.zeros_like()
    flat = grads.flat
    mlp.backward(np.ones_like(out), caches, grads, need_dx=False)
    assert grads.flat is flat and np.count_nonzero(flat) > 0


# ---------------------------------------------------------------------------------------------
# Whole training runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_training_with_and_without_acceleration_gives_the_same_numbers(likelihood, backend_name,
                                                                       to_numpy):
    """fit with every fast path against fit on the plain references: the same weights and the
    same losses, bit for bit (on CuPy, where the fused losses round differently, to float
    rounding)."""
    rng = np.random.default_rng(4)
    x = rng.random((96, 16)).astype(np.float32)
    runs = []
    for fast in (True, False):
        model = VAE(16, 3, (12,), likelihood=likelihood, seed=5, backend=backend_name)
        model.rng = np.random.default_rng(6)  # one generator kind on every backend
        optimizer = Adam(model.params, lr=3e-3)
        with contextlib.nullcontext() if fast else accel.disabled():
            history = fit(model, x, x[:32], epochs=3, batch_size=32, optimizer=optimizer,
                          progress=False)
        runs.append((to_numpy(model.params.flat), history.train["loss"], history.val["loss"]))
    (fast_w, fast_train, fast_val), (plain_w, plain_train, plain_val) = runs
    if backend_name == "cupy":
        np.testing.assert_allclose(fast_w, plain_w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(fast_train, plain_train, rtol=1e-5)
        return
    np.testing.assert_array_equal(fast_w, plain_w)
    assert fast_train == plain_train and fast_val == plain_val


@pytest.mark.parametrize("optimizer", ["sgd", "sgd-momentum"])
@pytest.mark.parametrize("loss", ["bernoulli", "mse"])
def test_autoencoder_training_with_and_without_acceleration_gives_the_same_numbers(optimizer,
                                                                                  loss):
    x = np.random.default_rng(7).random((64, 12)).astype(np.float32)
    runs = []
    for fast in (True, False):
        model = Autoencoder(12, 3, (8,), loss=loss, seed=8)
        opt = SGD(model.params, lr=0.05, momentum=0.9 if optimizer == "sgd-momentum" else 0.0)
        with contextlib.nullcontext() if fast else accel.disabled():
            history = fit(model, x, epochs=2, batch_size=16, optimizer=opt, progress=False)
        runs.append((model.params.flat.copy(), history.train["loss"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]

