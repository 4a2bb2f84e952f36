"""The MLP: parameter names and shapes, forward values, backward by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae.mlp import MLP
from minivae.params import Parameters


def _mlp_with_params(activation: str, sizes=(3, 5, 4, 2), seed: int = 0):
    mlp = MLP(list(sizes), activation, "net.")
    params = Parameters.zeros(mlp.param_shapes(), np.float64)
    mlp.init_params(params, np.random.default_rng(seed))
    return mlp, params


def test_param_names_and_shapes():
    mlp = MLP([3, 5, 2], "relu", "encoder.")
    assert mlp.param_shapes() == {
        "encoder.W0": (3, 5),
        "encoder.b0": (5,),
        "encoder.W1": (5, 2),
        "encoder.b1": (2,),
    }, "weights must be (n_in, n_out), biases (n_out,), named {prefix}W{i} / {prefix}b{i}"
    assert mlp.n_layers == 2


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "softplus"])
def test_mlp_backward_matches_finite_differences(activation):
    mlp, params = _mlp_with_params(activation)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    dout = rng.standard_normal((4, 2))

    def f() -> float:
        return float((mlp.forward(params, x)[0] * dout).sum())

    out, caches = mlp.forward(params, x)
    dx, grads = mlp.backward(dout, caches)
    arrays = {"x": x, **{k: params[k] for k in params}}
    err = fd_max_error(f"mlp[{activation}]", f, arrays, {"x": dx, **grads})
    assert err < 1e-7, f"MLP ({activation}) backward wrong: rel. error {err:.2e}"


def test_mlp_forward_is_linear_act_linear_without_output_activation():
    mlp, params = _mlp_with_params("tanh", sizes=(3, 4, 2))
    x = np.random.default_rng(2).standard_normal((5, 3))
    hidden = np.tanh(x @ params["net.W0"] + params["net.b0"])
    expected = hidden @ params["net.W1"] + params["net.b1"]
    np.testing.assert_allclose(mlp.forward(params, x)[0], expected, rtol=1e-14,
                               err_msg="the output layer must have no activation")


def test_backward_writes_into_given_grads():
    mlp, params = _mlp_with_params("relu")
    grads = params.zeros_like()
    x = np.random.default_rng(3).standard_normal((2, 3))
    out, caches = mlp.forward(params, x)
    _, returned = mlp.backward(np.ones_like(out), caches, grads)
    assert returned is grads, "backward must fill and return the given grads mapping"
    _, fresh = mlp.backward(np.ones_like(out), caches)
    for name in params:
        np.testing.assert_array_equal(grads[name], fresh[name])


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match=r"sizes must be at least \[n_in, n_out\]"):
        MLP([3])
    with pytest.raises(ValueError, match="positive ints, got"):
        MLP([3, 0, 2])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP([3, 2], "swish")
