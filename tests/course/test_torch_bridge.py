"""minivae.course.torch_bridge and torch_ddp (chapter 10): the PyTorch twins equal minivae's
models in float64, the backward graph split by forward step, training on minivae.fit's draws,
process worlds (forked, gloo) and the torchrun data-parallel script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minivae import VAE, evaluate, fit, rel_error  # noqa: E402
from minivae.course import torch_bridge as tb  # noqa: E402
from minivae.course.feedback import ExerciseError  # noqa: E402
from minivae.course.torch_ddp import shard_rows  # noqa: E402
from minivae.data import binarize, load_digits  # noqa: E402
from minivae.models import VQVAE  # noqa: E402

TOL = 1e-12


@pytest.fixture(scope="module")
def digits():
    return binarize(load_digits()[0]).astype(np.float64)


def test_minivae_itself_does_not_import_torch():
    code = ("import sys, minivae, minivae.course, minivae.course.feedback; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_vae_twin_gives_minivae_loss_and_every_gradient(digits, activation):
    model = VAE(64, 3, (9, 7), activation=activation, beta=1.3, dtype="float64", seed=2)
    x = digits[:6]
    eps = np.random.default_rng(0).standard_normal((6, 3))
    terms, grads = model.loss_and_grads(x, eps)
    twin = tb.TorchVAE.from_minivae(model)
    out = twin(torch.from_numpy(x), torch.from_numpy(eps))
    out["loss"].backward()
    for key in ("loss", "recon", "kl"):
        assert rel_error(terms[key], out[key].item()) < TOL, key
    got = tb.minivae_grads(twin)
    assert set(got) == set(grads)
    for name in grads:
        assert got[name].shape == grads[name].shape
        assert rel_error(got[name], grads[name]) < TOL, name


def test_weights_round_trip_in_minivae_layout():
    model = VAE(10, 2, (5,), dtype="float64", seed=1)
    twin = tb.TorchVAE.from_minivae(model)
    assert twin.encoder[0].weight.shape == (5, 10)  # nn.Linear keeps W.T
    params = tb.minivae_params(twin)
    for name, value in model.params.items():
        np.testing.assert_array_equal(params[name], value)
    with torch.no_grad():
        twin.decoder[0].weight.mul_(-2.0)
    other = VAE(10, 2, (5,), dtype="float64", seed=7)
    tb.copy_to_minivae(twin, other)
    np.testing.assert_array_equal(other.params["decoder.W0"],
                                  -2.0 * np.array(model.params["decoder.W0"]))
    np.testing.assert_array_equal(other.params["encoder.W0"], model.params["encoder.W0"])


def test_twin_refuses_what_it_cannot_mirror():
    with pytest.raises(ValueError, match="Bernoulli"):
        tb.TorchVAE.from_minivae(VAE(8, 2, (4,), likelihood="gaussian", seed=0))
    with pytest.raises(ValueError, match="no PyTorch twin for the activation"):
        mlp = VAE(8, 2, (4,), seed=0).encoder
        mlp.activation_name = "swish"
        tb.mlp_twin(mlp, VAE(8, 2, (4,), seed=0).params)
    with pytest.raises(ValueError, match="ema_decay"):
        tb.TorchVQVAE(VQVAE(8, n_codes=4, z_dim=4, positions=2, hidden=(4,), ema_decay=0.9))
    with pytest.raises(TypeError, match="float32 or float64"):
        tb.TorchVAE(8, 2, (4,), dtype="int64")


def test_vqvae_twin_with_detach_gives_minivae_loss_and_every_gradient(digits):
    model = VQVAE(64, n_codes=6, z_dim=8, positions=4, hidden=(12,), beta=0.4, dtype="float64",
                  seed=3)
    x = digits[10:17]
    terms, grads = model.loss_and_grads(x)
    twin = tb.TorchVQVAE(model)
    out = twin(torch.from_numpy(x))
    out["loss"].backward()
    for key in ("loss", "recon", "codebook", "commitment"):
        assert rel_error(terms[key], out[key].item()) < TOL, key
    got = tb.minivae_grads(twin)
    for name in grads:
        assert rel_error(got[name], grads[name]) < TOL, name
    codes = tb.nearest_code(twin.encoder(torch.from_numpy(x)).reshape(-1, 2), twin.codebook)
    np.testing.assert_array_equal(codes.numpy().reshape(7, 4), model.codes(x))


def test_straight_through_has_the_value_of_z_q_and_the_gradient_of_z_e():
    z_e = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    z_q = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    out = tb.straight_through(z_e, z_q)
    assert torch.equal(out.detach(), (z_e + (z_q - z_e)).detach())
    dz = torch.randn(5, 3, dtype=torch.float64)
    (out * dz).sum().backward()
    assert torch.equal(z_e.grad, dz)
    assert z_q.grad is None


def test_nodes_by_stage_counts_each_node_once():
    twin = tb.TorchVAE.from_minivae(VAE(6, 2, (4, 3), dtype="float64", seed=0))
    x = torch.rand(3, 6, dtype=torch.float64).round()
    h = twin.encoder(x)
    mu, logvar = h[:, :2], h[:, 2:]
    z = mu + torch.exp(0.5 * logvar) * torch.randn(3, 2, dtype=torch.float64)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(twin.decoder(z), x) + mu.sum()
    table = dict(tb.nodes_by_stage([("encoder", h), ("split", (mu, logvar)), ("z", z),
                                    ("loss", loss)]))
    assert table["encoder"]["AddmmBackward0"] == 3
    assert table["encoder"]["AccumulateGrad"] == 6
    assert table["encoder"]["ReluBackward0"] == 2
    assert dict(table["split"]) == {"SliceBackward0": 2}
    assert table["z"] == {"AddBackward0": 1, "MulBackward0": 2, "ExpBackward0": 1}
    assert table["loss"]["AddmmBackward0"] == 3  # the decoder, seen first from the loss
    total = sum(sum(c.values()) for c in table.values())
    assert total == len(tb.autograd_nodes(loss))


def test_draw_backward_graph_draws_one_box_per_node():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    twin = tb.TorchVAE.from_minivae(VAE(6, 2, (4,), dtype="float64", seed=0))
    x = torch.rand(3, 6, dtype=torch.float64)
    h = twin.encoder(x)
    loss = (h**2).sum()
    ax = tb.draw_backward_graph([("encoder", h), ("loss", loss)])
    transposes = sum(type(n).__name__ == "TBackward0" for n in tb.autograd_nodes(loss))
    assert len(ax.texts) == len(tb.autograd_nodes(loss)) - transposes
    plt.close("all")


def test_fit_like_minivae_takes_fits_steps(digits):
    """In float64 the twin's history is minivae.fit's: the same shuffling, eps and Adam."""
    x_train, x_val = digits[:300], digits[300:400]
    model = VAE(64, 3, (16,), dtype="float64", seed=5)
    twin = tb.TorchVAE.from_minivae(model)
    history = fit(model, x_train, x_val, epochs=2, batch_size=32, lr=2e-3, seed=9, progress=False)
    ours = tb.fit_like_minivae(twin, x_train, x_val, epochs=2, batch_size=32, lr=2e-3, seed=9,
                               eps_seed=6)
    for split in ("train", "val"):
        for key in ("loss", "recon", "kl"):
            np.testing.assert_allclose(ours[split][key], getattr(history, split)[key], rtol=1e-10)
    for name, value in tb.minivae_params(twin).items():
        assert rel_error(value, model.params[name]) < 1e-10, name


def test_evaluate_like_minivae_is_evaluate(digits):
    model = VAE(64, 2, (8,), dtype="float64", seed=0)
    ours = tb.evaluate_like_minivae(tb.TorchVAE.from_minivae(model), digits[:50], seed=3,
                                    batch_size=16)
    theirs = evaluate(model, digits[:50], batch_size=16, seed=3)
    for key in theirs:
        assert rel_error(ours[key], theirs[key]) < TOL


# ----------------------------------------------------------------------------- processes


def _sum_ranks(rank, world_size, scale):
    import torch.distributed as dist

    t = torch.full((3,), float(rank + 1) * scale)
    dist.all_reduce(t)
    return t.numpy(), world_size


def _raise(rank, world_size, kind):
    if rank == 1:
        raise {"not": NotImplementedError("fn is not written yet"),
               "exercise": ExerciseError("a check failed"),
               "other": ValueError("bad value")}[kind]
    return rank


def _sleep(rank, world_size):
    time.sleep(60)


@pytest.mark.parametrize("world_size", [2, 3])
def test_run_world_joins_the_processes_in_one_group(world_size):
    results = tb.run_world(_sum_ranks, world_size, args=(2.0,), timeout=30)
    expected = 2.0 * sum(range(1, world_size + 1))
    assert [r[1] for r in results] == [world_size] * world_size
    for values, _ in results:
        np.testing.assert_array_equal(values, np.full(3, expected, dtype=np.float32))


def test_run_world_reports_what_a_process_raised():
    with pytest.raises(NotImplementedError, match="^fn is not written yet$"):
        tb.run_world(_raise, 2, args=("not",))
    with pytest.raises(ExerciseError, match=r"a check failed \(in process 1 of 2\)"):
        tb.run_world(_raise, 2, args=("exercise",))
    with pytest.raises(tb.WorldError, match="process 1 of 2 raised ValueError: bad value"):
        tb.run_world(_raise, 2, args=("other",))


@pytest.mark.slow
def test_run_world_stops_processes_that_do_not_finish():
    start = time.monotonic()
    with pytest.raises(tb.WorldError, match="did not finish in 1 s"):
        tb.run_world(_sleep, 2, timeout=1)
    assert time.monotonic() - start < 30


def test_shard_rows_needs_equal_shards():
    assert shard_rows(128, 1, 2) == slice(64, 128)
    with pytest.raises(ValueError, match="does not split into 3 equal shards"):
        shard_rows(128, 0, 3)


def test_loopback_env_keeps_the_processes_on_this_machine():
    env = tb.loopback_env()
    assert env["GLOO_SOCKET_IFNAME"] == "lo"
    assert env["OMP_NUM_THREADS"] == "1"
    root = str(Path(tb.__file__).resolve().parents[2])  # the folder holding the package
    assert env["PYTHONPATH"].split(os.pathsep)[0] == root
    assert 1024 <= tb.free_port() < 65536


@pytest.mark.slow
def test_torchrun_data_parallel_script(tmp_path):
    out = tmp_path / "ddp.json"
    tb.torchrun("minivae.course.torch_ddp", ["--out", str(out), "--epochs", "1",
                                             "--batch-size", "64", "--hidden", "32",
                                             "--z-dim", "3"], nproc=2, timeout=300)
    result = json.loads(out.read_text())
    check = result["gradient_check"]
    assert result["world_size"] == 2 and result["backend"] == "gloo"
    assert check["batch"] == 64 and check["shard"] == 32
    assert check["worst_rel_error_averaged"] < TOL
    assert check["worst_rel_error_ddp"] < TOL
    assert check["worst_rel_error_own_shard"] > 1e-3  # one shard alone is not the batch's
    np.testing.assert_allclose(check["summed_over_whole"], [2.0, 2.0], rtol=1e-12)
    assert len(result["history"]["train"]["loss"]) == 1
    assert np.isfinite(result["history"]["val"]["loss"]).all()


@pytest.mark.slow
def test_torchrun_failure_names_the_command_and_shows_the_output(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)exited with status.*--out"):
        tb.torchrun("minivae.course.torch_ddp", ["--epochs", "1"], nproc=2, timeout=300)
