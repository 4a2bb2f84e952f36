"""minivae vs PyTorch on the CPU: one command, a few minutes, a markdown table.

    python benchmarks/bench_cpu.py            # the full run, writes benchmarks/RESULTS_CPU.md
    python benchmarks/bench_cpu.py --quick    # a small smoke run (6,000 rows, short runs)

What it measures (see benchmarks/README.md for the method):
- the same VAE, 784-512-20-512-784, ReLU, Bernoulli, Adam lr 1e-3, on MNIST-shaped data
  generated from a fixed seed (60,000 x 784 binary): median seconds per epoch after a warm-up,
  for minivae, PyTorch's default Adam and PyTorch's Adam(fused=True), measured interleaved
  (epoch by epoch) in the same process; batch sizes 64, 128, 512;
- the matrix products of one epoch alone (the floor), timed in the same rounds;
- the 8x8 digits, 64-128-8, batch 64, 100 epochs: per-call overhead dominates;
- peak memory of each, each framework in its own process (peak resident set size);
- a float64 check that both compute the same loss, gradients and Adam steps;
- every model the course trains against its PyTorch twin (``bench_models.py``: same weights,
  a float64 check of the loss and every gradient, ms per training step).

Every measurement runs in a worker process with ``--threads`` BLAS/OpenMP threads (2 by
default; ``torch.set_num_threads`` and threadpoolctl or the *_NUM_THREADS variables) and
without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which some machines set for old OpenBLAS builds
and which slow a current NumPy; the table records which BLAS kernel the workers ran.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench_models  # benchmarks/bench_models.py: every course model against its twin
import common  # benchmarks/common.py: a script's own folder is first on the import path
import numpy as np

HERE = Path(__file__).resolve().parent

D, H, Z = 784, 512, 20  # the MNIST-shaped VAE
DIGITS = (64, 128, 8)  # x_dim, hidden, z_dim


# -------------------------------------------------------------------------------------------
# Workers (run in subprocesses; each prints one line "RESULT <json>")
# -------------------------------------------------------------------------------------------


def _clock(name: str) -> Any:
    return time.process_time if name == "cpu" else time.perf_counter


class MatmulFloor:
    """The matrix products of one VAE epoch alone, into preallocated outputs (no allocation).

    Per step, for batch b (the same 11 products minivae computes, transposes as views):
    forward x@W0 (b,D)(D,H), h@W1 (b,H)(H,2Z), z@V0 (b,Z)(Z,H), g@V1 (b,H)(H,D);
    backward h.T@d, d@V1.T, z.T@dg, dg@V0.T, h.T@dh, dh@W1.T, x.T@dh1 (no dx for the data).
    """

    def __init__(self, n: int, batch: int, dims: tuple[int, int, int] = (D, H, Z)):
        self.n, self.batch = n, batch
        self.plans = {b: self._plan(b, dims) for b in {batch, n % batch} if b}

    @staticmethod
    def _plan(b: int, dims: tuple[int, int, int]) -> list[tuple[np.ndarray, ...]]:
        d, h, z = dims
        rng = np.random.default_rng(0)

        def a(*shape: int) -> np.ndarray:
            return rng.standard_normal(shape).astype(np.float32)

        x, h1, e, zz, g1, dout = a(b, d), a(b, h), a(b, 2 * z), a(b, z), a(b, h), a(b, d)
        W0, W1, V0, V1 = a(d, h), a(h, 2 * z), a(z, h), a(h, d)
        products = [
            (x, W0), (h1, W1), (zz, V0), (g1, V1),  # forward
            (g1.T, dout), (dout, V1.T), (zz.T, g1), (g1, V0.T),  # decoder backward
            (h1.T, e), (e, W1.T), (x.T, h1),  # encoder backward
        ]
        return [(p, q, np.empty((p.shape[0], q.shape[1]), np.float32)) for p, q in products]

    def epoch(self) -> None:
        full, rest = divmod(self.n, self.batch)
        for _ in range(full):
            for p, q, out in self.plans[self.batch]:
                np.matmul(p, q, out=out)
        if rest:
            for p, q, out in self.plans[rest]:
                np.matmul(p, q, out=out)


def choose_adam_threads(threads: int, size: int, clock: Any) -> tuple[int, dict[int, float]]:
    """Time minivae's Adam on a buffer of ``size`` with 1 and ``threads`` threads; the faster.

    Threads help on idle cores and hurt on busy ones (they wait for each other), so the choice
    is measured on the machine, not assumed; the table reports it.
    """
    from minivae import Adam
    from minivae.params import Parameters

    if threads == 1:
        return 1, {}
    rng = np.random.default_rng(0)
    p = Parameters(rng.standard_normal(size).astype(np.float32), {"w": (size,)})
    g = Parameters(1e-3 * rng.standard_normal(size).astype(np.float32), {"w": (size,)})
    opts = {t: Adam(p, threads=t) for t in (1, threads)}
    times: dict[int, list[float]] = {t: [] for t in opts}
    for _ in range(40):
        for t, opt in opts.items():
            start = clock()
            opt.step(g)
            times[t].append(clock() - start)
    med = {t: statistics.median(v) for t, v in times.items()}
    return min(med, key=med.get), med


def job_mnist(spec: dict) -> dict:
    """Interleaved epochs of minivae, torch (default Adam), torch (fused Adam), the floor."""
    torch = common.import_torch(spec["threads"])
    from torch_twin import make_adam, train_epoch, twin_of

    from minivae import VAE, Adam, fit

    clock = _clock(spec["clock"])
    batch, rows = spec["batch"], spec["rows"]
    x = common.mnist_like(rows, seed=0)
    xt = torch.from_numpy(x)
    model = VAE(D, Z, (H,), likelihood="bernoulli", seed=0)
    adam_threads, adam_med = choose_adam_threads(spec["threads"], model.n_params(), clock)
    opt = Adam(model.params, lr=1e-3, threads=adam_threads)
    torch.manual_seed(0)
    twins = {name: twin_of(model) for name in ("torch", "torch_fused")}
    opts = {name: make_adam(twins[name], fused=name == "torch_fused") for name in twins}
    gens = {name: torch.Generator().manual_seed(1) for name in twins}
    floor = MatmulFloor(rows, batch)
    runs = {
        "torch": lambda: train_epoch(twins["torch"], opts["torch"], xt, batch, gens["torch"]),
        "torch_fused": lambda: train_epoch(
            twins["torch_fused"], opts["torch_fused"], xt, batch, gens["torch_fused"]
        ),
        "floor": floor.epoch,
    }
    times: dict[str, list[float]] = {"minivae": [], **{name: [] for name in runs}}
    losses: dict[str, float] = {}
    total = spec["warmup"] + spec["epochs"]
    state = {"start": 0.0}

    def between_epochs(epoch: int, _model: Any, history: Any) -> None:
        times["minivae"].append(clock() - state["start"])
        losses["minivae"] = history.train["loss"][-1]
        order = list(runs)
        order = order[epoch % len(order) :] + order[: epoch % len(order)]  # rotate the order
        for name in order:
            start = clock()
            out = runs[name]()
            times[name].append(clock() - start)
            if out is not None:
                losses[name] = out["loss"]
        state["start"] = clock()

    state["start"] = clock()
    # blas_threads: the same threads as PyTorch (fit's automatic choice gives BLAS one thread
    # when the machine's load is high, which would compare 1 thread with 2)
    fit(model, x, epochs=total, batch_size=batch, optimizer=opt, seed=0, progress=False,
        on_epoch_end=between_epochs, blas_threads=spec["threads"])
    measured = {k: v[spec["warmup"] :] for k, v in times.items()}
    return {
        "batch": batch,
        "median": {k: statistics.median(v) for k, v in measured.items()},
        "all": times,
        "last_loss": losses,
        "adam_threads": adam_threads,
        "adam_calibration_ms": {str(k): 1e3 * v for k, v in adam_med.items()},
    }


def _load_digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().data / 16.0).astype(np.float32)  # (1797, 64) in [0, 1]


def job_digits(spec: dict) -> dict:
    """minivae.fit vs the torch twin, 100 epochs each, alternating, fresh models every round."""
    torch = common.import_torch(spec["threads"])
    from torch_twin import make_adam, train_epoch, twin_of

    from minivae import VAE, fit

    clock = _clock(spec["clock"])
    x = _load_digits()
    xt = torch.from_numpy(x)
    x_dim, hidden, z_dim = DIGITS
    epochs, batch = spec["epochs"], 64

    def run_minivae() -> float:
        model = VAE(x_dim, z_dim, (hidden,), seed=0)
        return fit(model, x, epochs=epochs, batch_size=batch, seed=0, progress=False).train[
            "loss"][-1]

    def run_torch(fused: bool) -> float:
        twin = twin_of(VAE(x_dim, z_dim, (hidden,), seed=0))
        opt, gen = make_adam(twin, fused), torch.Generator().manual_seed(1)
        for _ in range(epochs):
            out = train_epoch(twin, opt, xt, batch, gen)
        return out["loss"]

    runs = {"minivae": run_minivae, "torch": lambda: run_torch(False),
            "torch_fused": lambda: run_torch(True)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    losses: dict[str, float] = {}
    for r in range(spec["rounds"] + 1):  # round 0 is the warm-up
        order = list(runs)[r % len(runs) :] + list(runs)[: r % len(runs)]
        for name in order:
            start = clock()
            losses[name] = runs[name]()
            if r > 0:
                times[name].append(clock() - start)
    return {"median": {k: statistics.median(v) for k, v in times.items()}, "all": times,
            "last_loss": losses, "epochs": epochs}


def job_memory(spec: dict) -> dict:
    """Train one framework in this fresh process; RSS before training and the peak (ru_maxrss).

    torch is imported only by the torch runs, so each process holds one framework.
    """
    case, framework, batch = spec["case"], spec["framework"], spec["batch"]
    if case == "mnist":
        x, dims, epochs = common.mnist_like(spec["rows"], seed=0), (D, Z, H), 1
    else:
        x, dims, epochs = _load_digits(), (DIGITS[0], DIGITS[2], DIGITS[1]), spec["epochs"]
    x_dim, z_dim, hidden = dims
    if framework == "minivae":
        from minivae import VAE, Adam, fit

        model = VAE(x_dim, z_dim, (hidden,), seed=0)
        opt = Adam(model.params, lr=1e-3, threads=spec["threads"])
        before = common.rss_now_mib()
        fit(model, x, epochs=epochs, batch_size=batch, optimizer=opt, progress=False)
    else:
        torch = common.import_torch(spec["threads"])
        from torch_twin import make_adam, train_epoch, twin_of

        from minivae import VAE

        twin = twin_of(VAE(x_dim, z_dim, (hidden,), seed=0))
        opt_t, gen = make_adam(twin, framework == "torch_fused"), torch.Generator().manual_seed(1)
        xt = torch.from_numpy(x)
        before = common.rss_now_mib()
        for _ in range(epochs):
            train_epoch(twin, opt_t, xt, batch, gen)
    return {"before_mib": before, "peak_mib": common.peak_rss_mib()}


def job_same_loss(spec: dict) -> dict:
    """float64: same weights and eps -> same loss and gradients; then the same 10 Adam steps."""
    torch = common.import_torch(spec["threads"])
    from torch_twin import make_adam, twin_of

    from minivae import VAE, Adam

    rng = np.random.default_rng(0)
    x = common.mnist_like(128, seed=1).astype(np.float64)
    eps = rng.standard_normal((128, Z))
    model = VAE(D, Z, (H,), seed=0, dtype="float64")
    twin = twin_of(model, torch.float64)
    terms, grads = model.loss_and_grads(x, eps)
    xt, et = torch.from_numpy(x), torch.from_numpy(eps)
    loss_t, recon_t, kl_t = twin(xt, et)
    loss_t.backward()
    grad_err = 0.0
    for prefix, seq in (("encoder.", twin.encoder), ("decoder.", twin.decoder)):
        linears = [m for m in seq if isinstance(m, torch.nn.Linear)]
        for i, lin in enumerate(linears):
            for ours, theirs in ((grads[f"{prefix}W{i}"], lin.weight.grad.numpy().T),
                                 (grads[f"{prefix}b{i}"], lin.bias.grad.numpy())):
                err = np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-300)
                grad_err = max(grad_err, float(err))
    # the same 10 Adam steps (same batch and eps each step), then the loss again
    opt, opt_t = Adam(model.params, lr=1e-3), make_adam(twin, fused=False)
    for _ in range(10):
        _, g = model.loss_and_grads(x, eps)
        opt.step(g)
        opt_t.zero_grad()
        twin(xt, et)[0].backward()
        opt_t.step()
    with torch.no_grad():
        after, after_t = model.loss(x, eps)["loss"], twin(xt, et)[0].item()
    return {
        "loss": terms["loss"], "loss_torch": loss_t.item(),
        "recon": terms["recon"], "recon_torch": recon_t.item(),
        "kl": terms["kl"], "kl_torch": kl_t.item(),
        "grad_rel_err": grad_err,
        "loss_after_adam": after, "loss_after_adam_torch": after_t,
    }


def job_info(spec: dict) -> dict:
    common.import_torch(spec["threads"])
    return common.machine_info()


JOBS = {"mnist": job_mnist, "digits": job_digits, "memory": job_memory,
        "same_loss": job_same_loss, "info": job_info}


def run_worker(spec: dict) -> None:
    import contextlib

    ctx = common.limit_threads(spec["threads"])
    with ctx if ctx is not None else contextlib.nullcontext():
        result = JOBS[spec["job"]](spec)
    print("RESULT " + json.dumps(result), flush=True)


# -------------------------------------------------------------------------------------------
# The parent: runs the workers, writes the table
# -------------------------------------------------------------------------------------------


def run_job(spec: dict, threads: int, log: Any = print) -> dict:
    spec = {**spec, "threads": threads}
    log(f"  running {spec['job']} {({k: v for k, v in spec.items() if k != 'job'})}")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        env=common.worker_env(threads), capture_output=True, text=True, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {spec} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def settings(args: argparse.Namespace) -> dict:
    if args.quick:
        return {"rows": 6000, "warmup": 1, "epochs": 2, "digits_epochs": 10, "digits_rounds": 1,
                "memory_batches": [128]}
    return {"rows": args.rows, "warmup": args.warmup, "epochs": args.epochs,
            "digits_epochs": args.digits_epochs, "digits_rounds": args.digits_rounds,
            "memory_batches": [128, 512]}


def measure(args: argparse.Namespace, log: Any = print) -> dict:
    s = settings(args)
    base = {"clock": args.clock, "rows": s["rows"]}
    results: dict[str, Any] = {"settings": s, "threads": args.threads, "clock": args.clock}
    results["info"] = run_job({"job": "info"}, args.threads, log)
    env = os.environ
    results["removed_env"] = {k: env[k] for k in common.OPENBLAS_OVERRIDES if k in env}
    results["same_loss"] = run_job({"job": "same_loss"}, args.threads, log)
    results["mnist"] = [
        run_job({**base, "job": "mnist", "batch": b, "warmup": s["warmup"], "epochs": s["epochs"]},
                args.threads, log)
        for b in args.batches
    ]
    results["digits"] = run_job({**base, "job": "digits", "epochs": s["digits_epochs"],
                                 "rounds": s["digits_rounds"]}, args.threads, log)
    memory = []
    for case, batches in (("mnist", s["memory_batches"]), ("digits", [64])):
        for b in batches:
            for fw in ("minivae", "torch", "torch_fused"):
                out = run_job({**base, "job": "memory", "case": case, "framework": fw,
                               "batch": b, "epochs": s["digits_epochs"]}, args.threads, log)
                memory.append({"case": case, "batch": b, "framework": fw, **out})
    results["memory"] = memory
    if args.models:
        steps, rounds = (2, 1) if args.quick else (40, 5)
        results["models"] = {
            "rows": bench_models.measure_models(args.threads, args.clock, steps, rounds,
                                                quick=args.quick, log=log),
            "steps": steps, "rounds": rounds}
    return results


def _fmt(t: float) -> str:
    return f"{t:.3f}" if t < 10 else f"{t:.1f}"


def targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of issue 21 that this run measured."""
    rows = []
    by_batch = {r["batch"]: r["median"] for r in results["mnist"]}
    for b, m in sorted(by_batch.items()):
        rows.append((f"batch {b}: minivae <= 1.0x PyTorch default Adam",
                     f"{m['minivae'] / m['torch']:.2f}x", m["minivae"] <= 1.0 * m["torch"]))
        rows.append((f"batch {b}: minivae <= 1.15x PyTorch fused Adam",
                     f"{m['minivae'] / m['torch_fused']:.2f}x",
                     m["minivae"] <= 1.15 * m["torch_fused"]))
    if 512 in by_batch:
        m = by_batch[512]
        rows.append(("batch 512: minivae within 1.6x of the matmul floor",
                     f"{m['minivae'] / m['floor']:.2f}x", m["minivae"] <= 1.6 * m["floor"]))
    d = results["digits"]["median"]
    rows.append(("digits: minivae >= 3x faster than PyTorch (default Adam)",
                 f"{d['torch'] / d['minivae']:.2f}x faster", d["torch"] >= 3.0 * d["minivae"]))
    peaks: dict[tuple, dict[str, float]] = {}
    for r in results["memory"]:
        peaks.setdefault((r["case"], r["batch"]), {})[r["framework"]] = (
            r["peak_mib"] - r["before_mib"])
    for (case, b), by_fw in peaks.items():
        least_torch = min(v for k, v in by_fw.items() if k != "minivae")
        rows.append((f"peak memory added by training ({case}, batch {b}) <= PyTorch's",
                     f"{by_fw['minivae']:.0f} vs {least_torch:.0f} MiB",
                     by_fw["minivae"] <= least_torch))
    for r in results.get("models", {}).get("rows", []):
        m, c = r["ms_per_step"], r["case"]
        rows.append((f"{c['name']} ({c['size']}): minivae <= 1.2x its PyTorch twin",
                     f"{m['minivae'] / m['torch']:.2f}x", m["minivae"] <= 1.2 * m["torch"]))
    return rows


def to_markdown(results: dict, command: str) -> str:
    s, info = results["settings"], results["info"]
    clock = ("wall-clock seconds" if results["clock"] == "wall" else
             "CPU seconds of the process (process_time; meaningful with --threads 1 only)")
    removed = results["removed_env"]
    now = datetime.datetime.now(datetime.UTC)
    lines = [
        "# minivae vs PyTorch on the CPU",
        "",
        f"Written by `{command}` on {now:%Y-%m-%d %H:%M} UTC.",
        "",
        f"- Machine: {info['cpu']}; Python {info['python']}",
        f"- NumPy {info['numpy']}",
        f"- PyTorch {info['torch']}",
        f"- Threads: {results['threads']} for both (torch.set_num_threads, threadpoolctl, "
        "OMP/OPENBLAS/MKL_NUM_THREADS); "
        + (f"removed for the workers: {removed}" if removed else
           "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE were not set"),
        f"- Times: {clock}; median over {s['epochs']} epochs after {s['warmup']} warm-up "
        "epoch(s), minivae and PyTorch epochs interleaved in one process.",
        "",
        f"## MNIST-shaped VAE: {s['rows']:,} x 784 binary (fixed seed), 784-512-20-512-784, "
        "ReLU, Bernoulli, Adam lr 1e-3",
        "",
        "| batch | minivae s/epoch | PyTorch Adam s/epoch | PyTorch Adam(fused) s/epoch | "
        "minivae / PyTorch | minivae / fused | matmul floor s/epoch | minivae / floor | "
        "minivae Adam threads |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["mnist"]:
        m = r["median"]
        lines.append(
            f"| {r['batch']} | {_fmt(m['minivae'])} | {_fmt(m['torch'])} | "
            f"{_fmt(m['torch_fused'])} | {m['minivae'] / m['torch']:.2f} | "
            f"{m['minivae'] / m['torch_fused']:.2f} | {_fmt(m['floor'])} | "
            f"{m['minivae'] / m['floor']:.2f} | {r['adam_threads']} |"
        )
    last = results["mnist"][-1]["last_loss"]
    lines += [
        "",
        "Floor: the 11 matrix products of every step of the epoch (forward, backward, no "
        "gradient for the data), into preallocated outputs, in NumPy with the same threads. "
        f"Final training loss at batch {results['mnist'][-1]['batch']}: minivae "
        f"{last.get('minivae', float('nan')):.2f}, PyTorch {last.get('torch', float('nan')):.2f}, "
        f"fused {last.get('torch_fused', float('nan')):.2f} nats.",
        "",
    ]
    d = results["digits"]
    dm = d["median"]
    lines += [
        f"## Digits: 1,797 x 64 (scikit-learn), 64-128-8, batch 64, {d['epochs']} epochs",
        "",
        "| | minivae | PyTorch Adam | PyTorch Adam(fused) |",
        "|---|---:|---:|---:|",
        f"| seconds ({d['epochs']} epochs) | {_fmt(dm['minivae'])} | {_fmt(dm['torch'])} | "
        f"{_fmt(dm['torch_fused'])} |",
        f"| minivae is faster by | | {dm['torch'] / dm['minivae']:.2f}x | "
        f"{dm['torch_fused'] / dm['minivae']:.2f}x |",
        "",
        "## Peak memory (MiB), each framework in its own process",
        "",
        "| data | batch | framework | RSS before training | peak RSS | peak - before |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in results["memory"]:
        lines.append(
            f"| {r['case']} | {r['batch']} | {r['framework']} | {r['before_mib']:.0f} | "
            f"{r['peak_mib']:.0f} | {r['peak_mib'] - r['before_mib']:.0f} |"
        )
    lines += [
        "",
        "Method: a fresh process per row builds the data and the model (importing only its own "
        "framework), reads its resident set size (VmRSS), trains one epoch (MNIST-shaped) or all "
        "epochs (digits), then reads its peak resident set size (VmHWM, Linux's high-water mark; "
        "getrusage's ru_maxrss would carry over the launching process's peak across exec). "
        "tracemalloc would miss PyTorch's allocations, which bypass Python's allocator. "
        "'peak - before' is what training added: parameters' gradients, optimizer state, "
        "activations, allocator caches (and for minivae.fit, its check of the data).",
        "",
    ]
    c = results["same_loss"]
    rel = abs(c["loss"] - c["loss_torch"]) / abs(c["loss_torch"])
    rel_after = abs(c["loss_after_adam"] - c["loss_after_adam_torch"]) / abs(
        c["loss_after_adam_torch"])
    lines += [
        "## Same computation (float64, same weights, same batch of 128, same eps)",
        "",
        "| | minivae | PyTorch | relative difference |",
        "|---|---:|---:|---:|",
        f"| loss | {c['loss']:.10f} | {c['loss_torch']:.10f} | {rel:.1e} |",
        f"| recon | {c['recon']:.10f} | {c['recon_torch']:.10f} | "
        f"{abs(c['recon'] - c['recon_torch']) / abs(c['recon_torch']):.1e} |",
        f"| kl | {c['kl']:.10f} | {c['kl_torch']:.10f} | "
        f"{abs(c['kl'] - c['kl_torch']) / abs(c['kl_torch']):.1e} |",
        f"| gradients (worst ‖ours − torch‖ / ‖torch‖ over the 8 arrays) | | | "
        f"{c['grad_rel_err']:.1e} |",
        f"| loss after 10 Adam steps | {c['loss_after_adam']:.10f} | "
        f"{c['loss_after_adam_torch']:.10f} | {rel_after:.1e} |",
        "",
        *models_section(results),
        "## Targets (issue 21)",
        "",
        "| target | measured | met |",
        "|---|---:|---|",
    ]
    for name, value, met in targets(results):
        lines.append(f"| {name} | {value} | {'yes' if met else 'NO'} |")
    lines.append("")
    return "\n".join(lines)


def models_section(results: dict) -> list[str]:
    """The lines of the every-model section (empty when the run skipped it)."""
    if "models" not in results:
        return []
    m = results["models"]
    table = bench_models.to_markdown(m["rows"], results["threads"], results["clock"],
                                     m["steps"], m["rounds"], "bench_models.measure_models")
    return [
        "## Every model the course trains vs its PyTorch twin (`bench_models.py`)",
        "",
        "Same weights, same pre-drawn batches and eps; a step is minivae's `loss_and_grads` + "
        "`Adam.step` vs PyTorch's `zero_grad`, forward, `backward`, `Adam.step`, `loss.item()` "
        "(twins in `torch_twins.py`). float64: the same weights, up to 32 rows and the same eps "
        "in both; relative error of the loss and the worst over every gradient array.",
        "",
        *table.splitlines()[2:],  # the table without its own 'Written by' line
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall (default) or cpu: process CPU time, for a shared machine "
                             "with --threads 1")
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up epochs (not timed)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per framework")
    parser.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")],
                        default=[64, 128, 512])
    parser.add_argument("--digits-epochs", type=int, default=100)
    parser.add_argument("--digits-rounds", type=int, default=3)
    parser.add_argument("--models", action=argparse.BooleanOptionalAction, default=True,
                        help="also every course model against its twin (bench_models.py)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_CPU.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(json.loads(args.worker))
        return 0
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu adds up the CPU time of all threads: use it with --threads 1")
    if importlib.util.find_spec("torch") is None:  # not imported: workers would inherit its size
        print("bench_cpu.py compares with PyTorch: install torch (CPU) first", file=sys.stderr)
        return 1
    command = "python benchmarks/bench_cpu.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    start = time.perf_counter()
    print(f"bench_cpu: {command}")
    results = measure(args)
    text = to_markdown(results, command)
    args.out.write_text(text)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    print(text)
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
