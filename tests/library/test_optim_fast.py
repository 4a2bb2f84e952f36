"""The speed work changes no number: fast Adam/SGD (minivae.accel.updates) vs their plain
equations and textbook ones, the subnormal flush, and the training hot path (MLP backward into
the flat buffer, the fused Bernoulli loss) vs the plain layer functions. The switch itself and
the other fast paths: test_accel.py."""

from __future__ import annotations

import contextlib
import functools
import threading
import time

import numpy as np
import pytest

import minivae.optim as optim
from minivae import SGD, VAE, Adam, accel
from minivae.accel import updates
from minivae.layers import linear_backward, sigmoid
from minivae.losses import bernoulli_log_prob, bernoulli_nll
from minivae.mlp import MLP
from minivae.params import Parameters

# large enough that the flat buffer is cut into several chunks, with a ragged last one
SIZE = 2 * updates.CHUNK + 4321


def _textbook_adam(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam exactly as written in Kingma & Ba / PyTorch, with temporaries; returns p."""
    p = p.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v) / np.sqrt(1 - b2**t) + eps
        p = p - lr / (1 - b1**t) * m / denom
    return p


def _gradients(n_steps, size, dtype, seed=0, dead_after=None):
    """A gradient sequence; entries of the first half are exactly 0 after step ``dead_after``
    (a pixel absent from every later batch, a unit that died)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n_steps):
        g = (rng.standard_normal(size) * 10.0 ** rng.uniform(-4, 0, size)).astype(dtype)
        if dead_after is not None and t >= dead_after:
            g[: size // 2] = 0
        out.append(g)
    return out


def _flat(values):
    return Parameters(np.array(values), {"w": (len(values),)})


def test_fast_adam_equals_textbook_adam_in_float64():
    rng = np.random.default_rng(1)
    start = rng.standard_normal(SIZE)
    grads = _gradients(200, SIZE, np.float64, dead_after=50)
    ref = _textbook_adam(start, grads)
    for threads in (1, 2):
        p, g = _flat(start), _flat(np.zeros(SIZE))
        opt = Adam(p, lr=1e-3, threads=threads)
        for gt in grads:
            g.flat[...] = gt
            opt.step(g)
        # float64 rounding only (the operations are the same up to their order)
        np.testing.assert_allclose(p.flat, ref, rtol=1e-12, atol=1e-15,
                                   err_msg=f"chunked Adam (threads={threads}) != textbook Adam")


def test_threads_and_chunks_give_identical_bits():
    rng = np.random.default_rng(2)
    start = rng.standard_normal(SIZE).astype(np.float32)
    grads = _gradients(30, SIZE, np.float32)
    results = []
    for threads in (1, 2, 3):
        for make in (lambda p, t=threads: Adam(p, threads=t),
                     lambda p, t=threads: SGD(p, lr=0.1, momentum=0.9, threads=t)):
            p, g = _flat(start.copy()), _flat(np.zeros(SIZE, np.float32))
            opt = make(p)
            for gt in grads:
                g.flat[...] = gt
                opt.step(g)
            results.append(p.flat.copy())
    adam, sgd = results[0::2], results[1::2]
    for other in adam[1:]:
        np.testing.assert_array_equal(other, adam[0])
    for other in sgd[1:]:
        np.testing.assert_array_equal(other, sgd[0])


def test_flat_and_dict_paths_agree_bit_for_bit_across_chunks():
    rng = np.random.default_rng(3)
    start = rng.standard_normal(SIZE).astype(np.float32)
    grads = _gradients(5, SIZE, np.float32)
    p, g = _flat(start.copy()), _flat(np.zeros(SIZE, np.float32))
    plain = {"w": start.copy()}
    a, b = Adam(p), Adam(plain)
    for gt in grads:
        g.flat[...] = gt
        a.step(g)
        b.step({"w": gt})
    np.testing.assert_array_equal(p.flat, plain["w"])


@functools.cache
def _hard_gradients(n_steps: int, size: int, subnormal: bool = True) -> list[np.ndarray]:
    """float32 gradients of every magnitude: entries that are exactly 0 after step 20 (their m
    and v decay through the flush threshold) and, if ``subnormal``, 1,000 subnormal ones (below
    1.2e-38) per step, whose first moments are subnormal from the start (and g^2 is 0)."""
    rng = np.random.default_rng(11)
    grads = _gradients(n_steps, size, np.float32, seed=10, dead_after=20)
    tiny = np.finfo(np.float32).tiny
    for g in grads:
        if subnormal:
            g[-1000:] = (tiny * rng.uniform(-1, 1, 1000)).astype(np.float32)
    return grads


OPTIMIZERS = {
    "adam": lambda p, threads: Adam(p, lr=1e-3, threads=threads),
    "adam-fast-flush": lambda p, threads: Adam(p, lr=1e-2, betas=(0.5, 0.6), threads=threads),
    "adam-eps0": lambda p, threads: Adam(p, lr=1e-3, eps=0.0, threads=threads),
    "sgd": lambda p, threads: SGD(p, lr=0.05, threads=threads),
    "sgd-momentum": lambda p, threads: SGD(p, lr=0.02, momentum=0.9, threads=threads),
}


def _state(opt) -> list:
    return [*(opt.m or []), *(opt.v or [])] if isinstance(opt, Adam) else list(opt.velocity or [])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fast_updates_equal_the_plain_equations_bit_for_bit(name, backend_name, xp, to_xp,
                                                            to_numpy):
    """The update training runs (chunked, in place, on 1-3 threads on NumPy; in place on a
    device; one kernel on CuPy) against ``step``'s own equations (``accel.disabled()``): 150
    float32 steps through subnormals and flushes, the same parameters and state, bit for bit."""
    size = SIZE if backend_name == "numpy" else 5000  # chunks and threads: NumPy buffers only
    # with eps = 0, a v of 0 (g^2 of a subnormal g is 0) would divide m by 0, in both versions
    grads = _hard_gradients(150, size, subnormal=name != "adam-eps0")
    start = np.random.default_rng(12).standard_normal(size).astype(np.float32)
    runs = {}
    for label, threads, fast in (("plain", 1, False), ("fast", 1, True),
                                 ("fast, 2 threads", 2, True), ("fast, 3 threads", 3, True)):
        p = Parameters(to_xp(start.copy()), {"w": (size,)})
        g = p.zeros_like()
        opt = OPTIMIZERS[name](p, threads)
        with contextlib.nullcontext() if fast else accel.disabled():
            for gt in grads:
                g.flat[...] = to_xp(gt)
                opt.step(g)
        runs[label] = [to_numpy(a) for a in (p.flat, *_state(opt))]
    if name.startswith("adam"):
        m = runs["plain"][1]
        if name != "adam-eps0":  # subnormals took part (the last step flushes nothing)
            assert _count_subnormal(m[-1000:]) > 900
        if name == "adam-fast-flush":  # the flush did happen (float32: 0.5**130 < the threshold)
            assert (m[: size // 2] == 0).all()
    plain = runs.pop("plain")
    assert np.isfinite(plain[0]).all() and not np.array_equal(plain[0], start)
    for label, arrays in runs.items():
        for i, (got, expected) in enumerate(zip(arrays, plain, strict=True)):
            np.testing.assert_array_equal(got, expected, err_msg=f"{name}, {label}, array {i}")


def test_the_plain_updates_equal_textbook_adam_on_a_dict_of_arrays():
    """The plain equations on the dict path (one pair per array) against the textbook Adam."""
    rng = np.random.default_rng(13)
    start = {"a": rng.standard_normal(7), "b": rng.standard_normal((3, 4))}
    params = {k: v.copy() for k, v in start.items()}
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(30)]
    opt = Adam(params, lr=1e-2)
    with accel.disabled():
        for g in grads:
            opt.step(g)
    for k in start:
        ref = _textbook_adam(start[k].ravel(), [g[k].ravel() for g in grads], lr=1e-2)
        np.testing.assert_allclose(params[k].ravel(), ref, rtol=1e-12, atol=1e-15, err_msg=k)


def _new_threads(before: set[threading.Thread], wait: bool = False) -> set[threading.Thread]:
    """The optimizer threads running now that were not in ``before``; with ``wait``, give
    threads that were told to stop up to 2 s to end."""
    for _ in range(100 if wait else 1):
        new = {t for t in threading.enumerate()
               if t.name.startswith("minivae-optim") and t not in before}
        if not (wait and new):
            break
        time.sleep(0.02)
    return new


def test_the_thread_pool_belongs_to_its_optimizer_and_ends_with_it():
    before = set(threading.enumerate())
    p, g = _flat(np.zeros(SIZE, np.float32)), _flat(np.ones(SIZE, np.float32))
    opt = Adam(p, threads=2)
    opt.step(g)
    assert len(_new_threads(before)) == 1  # the calling thread takes one part, the pool one
    one = Adam(_flat(np.zeros(SIZE, np.float32)), threads=1)
    one.step(g)
    small = Adam({"w": np.zeros(10, np.float32)}, threads=2)
    small.step({"w": np.ones(10, np.float32)})
    assert len(_new_threads(before)) == 1, "threads=1 and a one-chunk buffer start no threads"
    del opt  # the optimizer's pool is shut down with it
    assert _new_threads(before, wait=True) == set()
    # and explicitly: close() ends the threads, a later run() starts a new pool
    runner = updates.ChunkRunner()
    w = np.zeros(SIZE, np.float32)

    def add(w_chunk, scratch, *, step):  # an update in place, with the runner's scratch
        scratch[...] = step
        w_chunk += scratch

    runner.run(add, (w,), 2, step=1.0)
    assert len(_new_threads(before)) == 1
    runner.close()
    assert _new_threads(before, wait=True) == set()
    runner.run(add, (w,), 3, step=1.0)
    # 3 parts: up to 2 pool threads (the pool starts a second only if the first is still busy)
    assert 1 <= len(_new_threads(before)) <= 2
    np.testing.assert_array_equal(w, 2.0)  # both runs updated every entry once
    runner.close()
    assert _new_threads(before, wait=True) == set()


def test_fast_sgd_equals_textbook_sgd_in_float64():
    rng = np.random.default_rng(4)
    start = rng.standard_normal(SIZE)
    grads = _gradients(50, SIZE, np.float64)
    p, g = _flat(start), _flat(np.zeros(SIZE))
    opt = SGD(p, lr=0.05, momentum=0.9)
    ref, v = start.copy(), np.zeros(SIZE)
    for gt in grads:
        g.flat[...] = gt
        opt.step(g)
        v = 0.9 * v + gt
        ref = ref - 0.05 * v
    np.testing.assert_allclose(p.flat, ref, rtol=1e-12, atol=1e-15)


def _count_subnormal(a):
    tiny = np.finfo(a.dtype).tiny
    return int(((a != 0) & (np.abs(a) < tiny)).sum())


def test_adam_state_stays_out_of_the_subnormal_range_and_results_do_not_change():
    # Half the entries get gradient 0 after step 20: their first moment decays by 0.9 a step
    # and, without the flush, is subnormal (< 1.2e-38) after ~800 steps.
    n_steps, size = 1100, updates.CHUNK + 999
    rng = np.random.default_rng(5)
    start = rng.standard_normal(size).astype(np.float32)
    grads = _gradients(n_steps, size, np.float32, dead_after=20)
    runs = {}
    for name, flush_every in (("flushed", None), ("unflushed", 10**9)):
        p, g = _flat(start.copy()), _flat(np.zeros(size, np.float32))
        opt = Adam(p)
        if flush_every is not None:
            opt.flush_every = flush_every
        for gt in grads:
            g.flat[...] = gt
            opt.step(g)
        runs[name] = (p.flat.copy(), opt)
    p_flushed, opt_flushed = runs["flushed"]
    p_unflushed, opt_unflushed = runs["unflushed"]
    # the situation is real: without the flush the state is full of subnormals ...
    assert _count_subnormal(opt_unflushed.m[0]) > size // 10
    # ... with it, none (m and v)
    assert _count_subnormal(opt_flushed.m[0]) == 0
    assert _count_subnormal(opt_flushed.v[0]) == 0
    # and the parameters are the same. The bound of subnormal_threshold: a flushed m entry
    # moves its weight by <= step_size * threshold / eps = 2e-26 per step, far below float32's
    # resolution of weights of order 1, so the flushed run must agree to 1e-12 (it is in fact
    # bit-for-bit equal on the CPUs we ran).
    np.testing.assert_allclose(p_flushed, p_unflushed, rtol=0, atol=1e-12)
    # and both agree with a float64 textbook Adam to float32 accuracy
    ref = _textbook_adam(start.astype(np.float64), [g.astype(np.float64) for g in grads])
    np.testing.assert_allclose(p_flushed, ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99), (0.99, 0.0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_period_keeps_values_above_tiny_until_the_next_flush(betas, dtype):
    # an entry just above the threshold, decaying by the faster beta every step, must still be
    # a normal float at the next flush
    opt = Adam({"w": np.zeros(1, dtype)}, betas=betas)
    fastest = min([b for b in betas if b > 0])
    lowest = optim.subnormal_threshold(dtype) * fastest**opt.flush_every
    assert lowest >= np.finfo(dtype).tiny, (opt.flush_every, lowest)


def test_adam_with_zero_eps_never_divides_a_flushed_v_by_zero():
    p = _flat(np.ones(8, np.float32))
    g = _flat(np.full(8, 1e-20, np.float32))  # g^2 = 1e-40: v is tiny from the start
    opt = Adam(p, eps=0.0)
    opt.flush_every = 1
    for _ in range(5):
        opt.step(g)
    assert np.isfinite(p.flat).all()


def test_training_path_of_mlp_backward_equals_the_layer_functions():
    # MLP.backward with a grads buffer writes dW, db in place and may skip dx; same numbers as
    # the plain path built from layers.linear_backward
    rng = np.random.default_rng(6)
    mlp = MLP([7, 5, 4, 3], "relu", "enc.")
    params = Parameters.zeros(mlp.param_shapes(), np.float64)
    mlp.init_params(params, rng)
    x = rng.standard_normal((6, 7))
    out, caches = mlp.forward(params, x)
    dout = rng.standard_normal(out.shape)
    dx_plain, plain = mlp.backward(dout, caches)
    grads = params.zeros_like()
    dx_fast, fast = mlp.backward(dout, caches, grads)
    assert fast is grads
    np.testing.assert_allclose(dx_fast, dx_plain, rtol=1e-14)
    for name in plain:
        np.testing.assert_allclose(grads[name], plain[name], rtol=1e-14, err_msg=name)
    dx_none, _ = mlp.backward(dout, caches, params.zeros_like(), need_dx=False)
    assert dx_none is None
    # and the first layer's plain backward is what the fast path wrote
    _, dW0, db0 = linear_backward(*_first_layer_dout(mlp, params, caches, dout))
    np.testing.assert_allclose(grads["enc.W0"], dW0, rtol=1e-14)
    np.testing.assert_allclose(grads["enc.b0"], db0, rtol=1e-14)


def _first_layer_dout(mlp, params, caches, dout):
    dh = dout
    for i in reversed(range(1, mlp.n_layers)):
        linear_cache, act_cache = caches[i]
        if i < mlp.n_layers - 1:
            dh = mlp.act_backward(dh, act_cache)
        dh, _, _ = linear_backward(dh, linear_cache)
    return mlp.act_backward(dh, caches[0][1]), caches[0][0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_bernoulli_loss_equals_the_plain_formulas(dtype):
    rng = np.random.default_rng(7)
    logits = (rng.standard_normal((9, 11)) * 20).astype(dtype)
    logits[0, :4] = [1e4, -1e4, 0.0, -0.0]
    x = (rng.random((9, 11)) < 0.4).astype(dtype)
    x[1] = rng.random(11)  # grey levels too
    loss, dlogits = bernoulli_nll(logits, x)
    assert dlogits.dtype == dtype
    plain_loss = float(-bernoulli_log_prob(logits, x).sum()) / 9
    plain_d = (sigmoid(logits) - x) / 9
    assert loss == pytest.approx(plain_loss, rel=1e-6 if dtype == np.float32 else 1e-14)
    np.testing.assert_array_equal(dlogits, plain_d)


def test_a_float32_training_step_stays_float32():
    # no silent float64 upcast (from Python scalars, 1/batch, eps) anywhere on the hot path
    model = VAE(12, 3, (8,), seed=0)
    x = (np.random.default_rng(8).random((5, 12)) < 0.5).astype(np.float32)
    opt = Adam(model.params)
    terms, grads = model.loss_and_grads(x)
    opt.step(grads)
    assert grads.flat.dtype == np.float32 and model.params.flat.dtype == np.float32
    assert opt.m[0].dtype == np.float32 and opt.v[0].dtype == np.float32
    h, caches = model.encoder.forward(model.params, x)
    assert h.dtype == np.float32
    assert all(c[0][0].dtype == np.float32 for c in caches)
    _, dlogits = bernoulli_nll(np.zeros((5, 12), np.float32), x)
    assert dlogits.dtype == np.float32
