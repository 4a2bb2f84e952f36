"""The MLP: parameter names and shapes, forward values, backward by finite differences.

Tests that take ``backend_name`` run on every backend (see conftest.py): on NumPy the backward
pass is checked by finite differences; on the other backends it must give NumPy's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error

from minivae.mlp import MLP
from minivae.params import Parameters


def _mlp_with_params(activation: str, sizes=(3, 5, 4, 2), seed: int = 0, xp=np):
    """An MLP and its float64 parameters on the backend ``xp`` (initialised on the host)."""
    mlp = MLP(list(sizes), activation, "net.")
    host = Parameters.zeros(mlp.param_shapes(), np.float64)
    mlp.init_params(host, np.random.default_rng(seed))
    if xp is np:
        return mlp, host
    params = Parameters.zeros(mlp.param_shapes(), np.float64, xp)
    params.flat[...] = xp.asarray(host.flat)
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
def test_mlp_backward_matches_finite_differences(activation, backend_name, xp, to_xp,
                                                 assert_matches_numpy):
    mlp, params = _mlp_with_params(activation, xp=xp)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    dout = rng.standard_normal((4, 2))
    out, caches = mlp.forward(params, to_xp(x))
    dx, grads = mlp.backward(to_xp(dout), caches)
    if backend_name != "numpy":  # the maths is checked once, on NumPy, by finite differences
        _, host = _mlp_with_params(activation)
        ref_out, ref_caches = mlp.forward(host, x)
        ref_dx, ref_grads = mlp.backward(dout, ref_caches)
        assert_matches_numpy(out, ref_out, err_msg=f"MLP forward on {backend_name}")
        assert_matches_numpy(dx, ref_dx, err_msg=f"MLP dx on {backend_name}")
        for name in ref_grads:
            assert_matches_numpy(grads[name], ref_grads[name], err_msg=f"MLP d{name}")
        return

    def f() -> float:
        return float((mlp.forward(params, x)[0] * dout).sum())

    arrays = {"x": x, **{k: params[k] for k in params}}
    err = fd_max_error(f"mlp[{activation}]", f, arrays, {"x": dx, **grads})
    assert err < 1e-7, f"MLP ({activation}) backward wrong: rel. error {err:.2e}"


def test_mlp_forward_is_linear_act_linear_without_output_activation(backend_name, xp, to_xp,
                                                                     to_numpy):
    mlp, params = _mlp_with_params("tanh", sizes=(3, 4, 2), xp=xp)
    x = np.random.default_rng(2).standard_normal((5, 3))
    host = {name: to_numpy(value) for name, value in params.items()}
    hidden = np.tanh(x @ host["net.W0"] + host["net.b0"])
    expected = hidden @ host["net.W1"] + host["net.b1"]
    rtol = 1e-14 if backend_name != "cupy" else 1e-12  # the GPU's tanh may differ in the last bit
    np.testing.assert_allclose(to_numpy(mlp.forward(params, to_xp(x))[0]), expected, rtol=rtol,
                               err_msg="the output layer must have no activation")


def test_backward_writes_into_given_grads(xp, to_xp, to_numpy):
    mlp, params = _mlp_with_params("relu", xp=xp)
    grads = params.zeros_like()
    x = to_xp(np.random.default_rng(3).standard_normal((2, 3)))
    out, caches = mlp.forward(params, x)
    _, returned = mlp.backward(xp.ones_like(out), caches, grads)
    assert returned is grads, "backward must fill and return the given grads mapping"
    _, fresh = mlp.backward(xp.ones_like(out), caches)
    assert float(xp.abs(grads.flat).sum()) > 0, "all-zero gradients would prove nothing"
    for name in params:
        np.testing.assert_array_equal(to_numpy(grads[name]), to_numpy(fresh[name]))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match=r"sizes must be at least \[n_in, n_out\]"):
        MLP([3])
    with pytest.raises(ValueError, match="positive ints, got"):
        MLP([3, 0, 2])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP([3, 2], "swish")
