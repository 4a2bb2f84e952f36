"""minivae against PyTorch autograd and torch.optim, in float64, with the same weights and eps.

minivae stores a linear layer's weight as W (n_in, n_out) with out = x @ W + b; nn.Linear stores
the transpose, weight (n_out, n_in). The twins below are built from nn.Linear and loaded with W.T.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import report

from minivae import SGD, VAE, Adam, Autoencoder, rel_error
from minivae.params import Parameters

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
TOL = 1e-10
ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus,
        "leaky_relu": lambda: nn.LeakyReLU(0.01)}


def _twin(mlp, params, activation: str) -> nn.Sequential:
    """An nn.Sequential equal to a minivae MLP, its weights copied from ``params`` (transposed)."""
    modules: list[nn.Module] = []
    for i in range(mlp.n_layers):
        w, b = mlp.names(i)
        linear = nn.Linear(mlp.sizes[i], mlp.sizes[i + 1], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.array(params[w]).T))
            linear.bias.copy_(torch.from_numpy(np.array(params[b])))
        modules.append(linear)
        if i < mlp.n_layers - 1:
            modules.append(ACTS[activation]())
    return nn.Sequential(*modules)


def _compare_grads(what: str, mlp, net: nn.Sequential, grads) -> float:
    worst = 0.0
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for i, linear in enumerate(linears):
        w, b = mlp.names(i)
        worst = max(worst, rel_error(grads[w], linear.weight.grad.numpy().T))
        worst = max(worst, rel_error(grads[b], linear.bias.grad.numpy()))
    return report("TORCH-ERR", what, worst)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus"])
def test_vae_loss_terms_and_every_gradient_equal_torch(likelihood, activation):
    model = VAE(12, 3, (8, 6), likelihood, beta=1.7, activation=activation, obs_var=0.4,
                dtype="float64", seed=0)
    rng = np.random.default_rng(1)
    x = rng.random((5, 12))
    eps = rng.standard_normal((5, 3))
    terms, grads = model.loss_and_grads(x, eps)

    enc = _twin(model.encoder, model.params, activation)
    dec = _twin(model.decoder, model.params, activation)
    tx, teps = torch.from_numpy(x), torch.from_numpy(eps)
    h = enc(tx)
    mu, logvar = h[:, :3], h[:, 3:]
    z = mu + torch.exp(0.5 * logvar) * teps
    out = dec(z)
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(out, tx, reduction="sum")
    elif likelihood == "gaussian":
        std = torch.full_like(out, 0.4**0.5)
        recon = -torch.distributions.Normal(out, std).log_prob(tx).sum()
    else:
        mean, out_logvar = out[:, :12], out[:, 12:]
        recon = -torch.distributions.Normal(mean, torch.exp(0.5 * out_logvar)).log_prob(tx).sum()
    recon = recon / 5
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = torch.distributions.kl_divergence(q, prior).sum() / 5
    loss = recon + 1.7 * kl
    loss.backward()

    what = f"VAE {likelihood} {activation}"
    err_terms = max(
        rel_error(terms["loss"], loss.item()),
        rel_error(terms["recon"], recon.item()),
        rel_error(terms["kl"], kl.item()),
    )
    report("TORCH-ERR", f"{what} loss/recon/kl", err_terms)
    assert err_terms <= TOL, f"{what}: loss terms differ from torch: {err_terms:.2e}"
    err = max(
        _compare_grads(f"{what} encoder grads", model.encoder, enc, grads),
        _compare_grads(f"{what} decoder grads", model.decoder, dec, grads),
    )
    assert err <= TOL, f"{what}: a gradient differs from torch autograd: {err:.2e}"


@pytest.mark.parametrize("loss_name", ["mse", "bernoulli"])
def test_autoencoder_loss_and_every_gradient_equal_torch(loss_name):
    model = Autoencoder(10, 3, (7,), loss_name, "tanh", dtype="float64", seed=0)
    x = np.random.default_rng(2).random((6, 10))
    terms, grads = model.loss_and_grads(x)
    enc = _twin(model.encoder, model.params, "tanh")
    dec = _twin(model.decoder, model.params, "tanh")
    tx = torch.from_numpy(x)
    out = dec(enc(tx))
    if loss_name == "mse":
        loss = ((out - tx) ** 2).sum() / 6
    else:
        loss = F.binary_cross_entropy_with_logits(out, tx, reduction="sum") / 6
    loss.backward()
    err = max(
        report("TORCH-ERR", f"Autoencoder {loss_name} loss", rel_error(terms["loss"], loss.item())),
        _compare_grads(f"Autoencoder {loss_name} encoder grads", model.encoder, enc, grads),
        _compare_grads(f"Autoencoder {loss_name} decoder grads", model.decoder, dec, grads),
    )
    assert err <= TOL, f"Autoencoder ({loss_name}) differs from torch autograd: {err:.2e}"


def _run_both(make_ours, make_torch, flat: bool, steps: int = 6) -> float:
    """Same start, same gradient rule g = p * c_t + n_t for several steps; largest rel. error."""
    rng = np.random.default_rng(3)
    shapes = {"W": (4, 3), "b": (3,)}
    start = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
    if flat:  # the Parameters path (one flat buffer), as every model uses
        ours = Parameters.zeros(shapes, np.float64)
        for name in shapes:
            ours[name] = start[name]
        grads = ours.zeros_like()
    else:  # the plain dict path
        ours = {name: value.copy() for name, value in start.items()}
        grads = {name: np.zeros(shape) for name, shape in shapes.items()}
    theirs = {name: torch.tensor(value, requires_grad=True) for name, value in start.items()}
    opt_ours, opt_theirs = make_ours(ours), make_torch(list(theirs.values()))
    worst = 0.0
    for t in range(steps):
        noise = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
        for name in shapes:
            grads[name][...] = np.array(ours[name]) * (0.5 + t) + noise[name]
            theirs[name].grad = theirs[name].detach() * (0.5 + t) + torch.from_numpy(noise[name])
        opt_ours.step(grads)
        opt_theirs.step()
        for name in shapes:
            worst = max(worst, rel_error(ours[name], theirs[name].detach().numpy()))
    return worst


@pytest.mark.parametrize("flat", [True, False], ids=["Parameters", "dict"])
def test_adam_steps_equal_torch(flat):
    err = _run_both(
        lambda p: Adam(p, lr=0.01, betas=(0.8, 0.95), eps=1e-6),
        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.95), eps=1e-6),
        flat,
    )
    report("TORCH-ERR", f"Adam 6 steps ({'flat' if flat else 'dict'})", err)
    assert err <= TOL, f"Adam differs from torch.optim.Adam after 6 steps: {err:.2e}"


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("flat", [True, False], ids=["Parameters", "dict"])
def test_sgd_momentum_steps_equal_torch(flat, momentum):
    err = _run_both(
        lambda p: SGD(p, lr=0.05, momentum=momentum),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=momentum),
        flat,
    )
    report("TORCH-ERR", f"SGD momentum={momentum} 6 steps ({'flat' if flat else 'dict'})", err)
    assert err <= TOL, f"SGD (momentum {momentum}) differs from torch.optim.SGD: {err:.2e}"


def test_adam_trains_a_vae_like_torch():
    """Three Adam steps on a VAE (fixed eps) give the same weights as the torch twin."""
    model = VAE(6, 2, (5,), "bernoulli", dtype="float64", seed=4)
    x = np.random.default_rng(5).random((4, 6))
    eps = np.random.default_rng(6).standard_normal((3, 4, 2))
    enc = _twin(model.encoder, model.params, "relu")
    dec = _twin(model.decoder, model.params, "relu")
    opt = Adam(model.params, lr=0.05)
    topt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=0.05)
    tx = torch.from_numpy(x)
    for t in range(3):
        _, grads = model.loss_and_grads(x, eps[t])
        opt.step(grads)
        topt.zero_grad()
        h = enc(tx)
        z = h[:, :2] + torch.exp(0.5 * h[:, 2:]) * torch.from_numpy(eps[t])
        recon = F.binary_cross_entropy_with_logits(dec(z), tx, reduction="sum") / 4
        kl = -0.5 * (1 + h[:, 2:] - h[:, :2] ** 2 - torch.exp(h[:, 2:])).sum() / 4
        (recon + kl).backward()
        topt.step()
    worst = 0.0
    for mlp, net in ((model.encoder, enc), (model.decoder, dec)):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for i, linear in enumerate(linears):
            w, b = mlp.names(i)
            worst = max(worst, rel_error(model.params[w], linear.weight.detach().numpy().T),
                        rel_error(model.params[b], linear.bias.detach().numpy()))
    report("TORCH-ERR", "VAE + Adam 3 steps weights", worst)
    assert worst <= TOL, f"after 3 Adam steps the VAE's weights differ from torch's: {worst:.2e}"
