"""Regularizers (beta-KL, free bits, capacity) and schedules (KL warm-up, capacity): the whole VAE
loss checked by finite differences in float64, the regularizers by torch autograd, and the contract
``regularizer(kl_per_latent, beta) -> (penalty, weight)``."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import fd_max_error, report

from minivae import VAE, fit
from minivae.regularizers import Capacity, FreeBits, beta_kl
from minivae.schedules import capacity_schedule, linear_warmup


def _tiny(**kwargs) -> tuple[VAE, np.ndarray, np.ndarray]:
    """A float64 VAE (6 pixels, 4 latents, tanh: no kinks) with a batch of 5 and fixed eps."""
    model = VAE(6, 4, (5,), "bernoulli", activation="tanh", dtype="float64", seed=2, **kwargs)
    rng = np.random.default_rng(3)
    x = rng.random((5, 6))
    # spread the encoder's outputs so that the latents' KLs differ clearly
    model.params["encoder.W1"][...] *= rng.uniform(0.5, 6.0, size=8)
    return model, x, rng.standard_normal((5, 4))


def _whole_loss_fd(model: VAE, x: np.ndarray, eps: np.ndarray, what: str) -> float:
    terms, grads = model.loss_and_grads(x, eps)
    analytic = {name: np.array(g) for name, g in grads.items()}

    def f() -> float:
        return model.loss(x, eps)["loss"]

    assert f() == pytest.approx(terms["loss"], rel=1e-12)
    return fd_max_error(what, f, model.params, analytic)


def test_beta_kl_whole_loss_gradient():
    model, x, eps = _tiny(beta=3.0)
    assert _whole_loss_fd(model, x, eps, "VAE beta_kl beta=3") < 1e-6


def test_free_bits_whole_loss_gradient_with_latents_on_both_sides_of_lambda():
    model, x, eps = _tiny(beta=2.0)
    kl = np.sort(np.asarray(model.kl_per_latent(x)))
    lam = 0.5 * (kl[1] + kl[2])  # two latents below the floor, two above
    assert kl[2] - kl[1] > 1e-3, "the test needs latents clearly on both sides of lambda"
    model.regularizer = FreeBits(lam)
    _, weight = model.regularizer(model.kl_per_latent(x), model.beta)
    assert sorted(weight.tolist()) == [0.0, 0.0, 2.0, 2.0]
    assert _whole_loss_fd(model, x, eps, f"VAE FreeBits({lam:.3f})") < 1e-6


@pytest.mark.parametrize("side", ["below", "above"])
def test_capacity_whole_loss_gradient_on_both_sides_of_c(side):
    model, x, eps = _tiny(beta=5.0)
    kl = float(np.asarray(model.kl_per_latent(x)).sum())
    model.regularizer = Capacity(1.5 * kl if side == "below" else 0.5 * kl)
    assert kl > 0.1
    assert _whole_loss_fd(model, x, eps, f"VAE Capacity KL {side} C") < 1e-6


def test_free_bits_values():
    kl = np.array([0.1, 0.5, 2.0])
    penalty, weight = FreeBits(0.4)(kl, 2.0)
    assert penalty == pytest.approx(2.0 * (0.4 + 0.5 + 2.0))
    np.testing.assert_array_equal(weight, [0.0, 2.0, 2.0])
    # lam = 0 is the plain beta-weighted KL
    for got, want in zip(FreeBits(0.0)(kl, 3.0), beta_kl(kl, 3.0), strict=True):
        np.testing.assert_allclose(got, want)


def test_capacity_values_and_sign():
    kl = np.array([1.0, 2.0])
    assert Capacity(1.0)(kl, 10.0)[0] == pytest.approx(20.0)
    np.testing.assert_array_equal(Capacity(1.0)(kl, 10.0)[1], [10.0, 10.0])
    assert Capacity(5.0)(kl, 10.0)[0] == pytest.approx(20.0)
    np.testing.assert_array_equal(Capacity(5.0)(kl, 10.0)[1], [-10.0, -10.0])


@pytest.mark.parametrize("name", ["beta_kl", "free_bits", "capacity"])
def test_weight_matches_torch_autograd(name):
    torch = pytest.importorskip("torch")
    kl = np.array([0.05, 0.3, 1.7, 4.0])
    beta = 1.5
    regularizer = {"beta_kl": beta_kl, "free_bits": FreeBits(0.5), "capacity": Capacity(3.0)}[name]
    penalty, weight = regularizer(kl, beta)
    t = torch.tensor(kl, dtype=torch.float64, requires_grad=True)
    if name == "beta_kl":
        t_penalty = beta * t.sum()
    elif name == "free_bits":
        t_penalty = beta * torch.clamp(t, min=0.5).sum()
    else:
        t_penalty = beta * torch.abs(t.sum() - 3.0)
    t_penalty.backward()
    assert penalty == pytest.approx(float(t_penalty.detach()), rel=1e-12)
    err = report("TORCH-ERR", f"regularizer {name}", float(np.abs(weight - t.grad.numpy()).max()))
    assert err < 1e-12


def test_linear_warmup():
    schedule = linear_warmup(100)
    assert [schedule(s) for s in (0, 25, 50, 100, 1000)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert linear_warmup(10, start=2.0, end=4.0)(5) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="steps"):
        linear_warmup(0)


def test_capacity_schedule_sets_c_and_returns_gamma():
    capacity = Capacity()
    schedule = capacity_schedule(capacity, c_max=20.0, steps=200, gamma=50.0)
    assert schedule(50) == 50.0 and capacity.capacity == pytest.approx(5.0)
    schedule(10_000)
    assert capacity.capacity == pytest.approx(20.0)
    with pytest.raises(TypeError, match="Capacity"):
        capacity_schedule(FreeBits(0.5), c_max=1.0, steps=10)


def test_fit_follows_the_warmup_and_capacity_schedules():
    rng = np.random.default_rng(0)
    x = (rng.random((64, 6)) < 0.5).astype(np.float32)
    model = VAE(6, 2, (8,), seed=0)
    history = fit(model, x, epochs=4, batch_size=16, beta_schedule=linear_warmup(8),
                  progress=False)
    # 4 steps per epoch; beta recorded at the end of each epoch is the last step's: 3, 7, 11, 15
    np.testing.assert_allclose(history.beta, [3 / 8, 7 / 8, 1.0, 1.0])
    capacity = Capacity()
    model.regularizer = capacity
    fit(model, x, epochs=2, batch_size=16, progress=False,
        beta_schedule=capacity_schedule(capacity, c_max=4.0, steps=16, gamma=20.0))
    assert model.beta == 20.0 and capacity.capacity == pytest.approx(4.0 * 7 / 16)


@pytest.mark.parametrize("name", ["beta_kl", "free_bits", "capacity"])
def test_regularizers_and_schedules_on_a_device_give_numpys_numbers(name, device_backend_name):
    """Each regularizer inside the VAE's loss and gradients, then training under a schedule,
    on the stand-in (no stray NumPy call) and on CuPy, against NumPy. NumPy generators draw eps
    for both, so both runs see the same noise."""
    from minivae import backend

    rng = np.random.default_rng(5)
    x = (rng.random((32, 6)) < 0.5).astype(np.float32)
    eps = rng.standard_normal((32, 3)).astype(np.float32)
    results = {}
    for backend_name in ("numpy", device_backend_name):
        model = VAE(6, 3, (8,), seed=0, beta=2.0, backend=backend_name)
        model.rng = np.random.default_rng(6)
        regularizer = {"beta_kl": beta_kl, "free_bits": FreeBits(0.3), "capacity": Capacity()}[name]
        model.regularizer = regularizer
        terms, grads = model.loss_and_grads(x, eps)
        schedule = (capacity_schedule(regularizer, c_max=2.0, steps=8, gamma=5.0)
                    if name == "capacity" else linear_warmup(8))
        history = fit(model, x, epochs=3, batch_size=8, beta_schedule=schedule, progress=False)
        results[backend_name] = (terms, backend.to_numpy(grads.flat).copy(),
                                 history.train["loss"], history.beta)
    (terms, grads, losses, betas), (d_terms, d_grads, d_losses, d_betas) = results.values()
    for key in terms:
        assert d_terms[key] == pytest.approx(terms[key], rel=1e-5), key
    np.testing.assert_allclose(d_grads, grads, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d_losses, losses, rtol=1e-4)
    assert d_betas == betas


def test_free_bits_keeps_a_latent_from_collapsing():
    """With a strong beta, plain beta-KL shuts latents; the floor keeps their KL from dropping."""
    rng = np.random.default_rng(0)
    x = (rng.random((256, 12)) < 0.5).astype(np.float32)
    kls = {}
    for name, regularizer in [("beta_kl", beta_kl), ("free_bits", FreeBits(1.0))]:
        model = VAE(12, 3, (16,), seed=0, beta=4.0)
        model.regularizer = regularizer
        fit(model, x, epochs=30, batch_size=64, lr=3e-3, progress=False)
        kls[name] = np.asarray(model.kl_per_latent(x))
    print("KL per latent", {k: v.round(3).tolist() for k, v in kls.items()})
    assert kls["beta_kl"].sum() < 0.5 * kls["free_bits"].sum(), kls
    assert kls["free_bits"].min() > 0.5  # every latent keeps (about) its floor of 1 nat


def test_bad_arguments():
    with pytest.raises(ValueError, match="lam"):
        FreeBits(-1.0)
    with pytest.raises(TypeError, match="lam"):
        FreeBits("0.5")
    with pytest.raises(ValueError, match="capacity"):
        Capacity(float("nan"))


def test_config_round_trip_and_refusals():
    from minivae.regularizers import REGULARIZERS, regularizer_config, regularizer_from_config

    for regularizer in (beta_kl, FreeBits(0.25), Capacity(7.0)):
        config = regularizer_config(regularizer)
        assert config["name"] in REGULARIZERS
        back = regularizer_from_config(config)
        assert repr(back) == repr(regularizer) and type(back) is type(regularizer)
    assert regularizer_config(FreeBits(0.25)) == {"name": "FreeBits", "lam": 0.25}
    with pytest.raises(TypeError, match="cannot be stored"):
        regularizer_config(lambda kl, beta: (0.0, kl))
    with pytest.raises(ValueError, match="unknown regularizer 'L1'"):
        regularizer_from_config({"name": "L1"})
    with pytest.raises(ValueError, match="must be a dict with a 'name'"):
        regularizer_from_config("FreeBits")
    with pytest.raises(ValueError, match=r"beta_kl regularizer takes \[\], got unknown keys"):
        regularizer_from_config({"name": "beta_kl", "beta": 2})


def test_parameters_are_checked_whenever_they_are_set():
    free_bits, capacity = FreeBits(0.5), Capacity(1.0)
    for obj, name in ((free_bits, "lam"), (capacity, "capacity")):
        for bad, error in ((-1.0, ValueError), (float("nan"), ValueError), ("1", TypeError),
                           (True, TypeError)):
            with pytest.raises(error):
                setattr(obj, name, bad)
        assert getattr(obj, name) in (0.5, 1.0), "a refused value got in"
    free_bits.lam = np.float32(0.75)
    assert free_bits.lam == 0.75 and type(free_bits.lam) is float
