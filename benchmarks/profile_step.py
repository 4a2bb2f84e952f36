"""Profile one training step of the MNIST-shaped VAE: where the time of a step goes.

    python benchmarks/profile_step.py [--batch 128 512] [--threads 2] [--steps 60] [--top 10]

The step is what ``fit`` does per minibatch: ``objective`` (loss and gradients) on a prepared
batch of the MNIST-shaped data (``common.mnist_like``), the finite check of ``fit``, and
``Adam.step``; 784-512-20, Bernoulli, Adam lr 1e-3, float32. Each batch size runs in a process of
its own with ``--threads`` BLAS threads (and minivae's Adam on one). It prints the median
wall-clock time of a step without the profiler, then cProfile's busiest functions (own time, wall
clock) over ``--steps`` steps after as many warm-up steps. ``PYTHONPATH`` chooses the minivae
that is profiled (a worktree of an older commit gives the "before").
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

HERE = Path(__file__).resolve().parent


def profile(batch: int, threads: int, steps: int, top: int) -> dict[str, Any]:
    """Time and profile ``steps`` training steps at ``batch`` in this process."""
    from minivae import VAE, Adam
    from minivae.validation import all_finite

    x = common.mnist_like(batch * steps, seed=0)
    model = VAE(784, 20, (512,), likelihood="bernoulli", seed=0)
    optimizer = Adam(model.params, lr=1e-3, threads=1)
    data = model.prepare(x)

    def step(i: int) -> None:
        minibatch = data.rows(slice(i * batch, (i + 1) * batch))
        terms, grads = model.objective(minibatch, model.draw_eps(batch), need_grads=True)
        # fit's check after every step: the terms and every gradient finite
        if not (all(math.isfinite(v) for v in terms.values()) and all_finite(grads.flat)):
            raise RuntimeError(f"step {i}: a term or a gradient is not finite: {terms}")
        optimizer.step(grads)

    for i in range(steps):  # warm-up: Adam's state, the allocator, the caches
        step(i)
    times = []
    for i in range(steps):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    profiler = cProfile.Profile(time.perf_counter)
    profiler.enable()
    for i in range(steps):
        step(i)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, _)
    total = sum(entry[2] for entry in stats.values())
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    return {
        "batch": batch,
        "threads": threads,
        "torch": torch_phases(model, x, batch, threads, steps),
        "ms_per_step": 1e3 * statistics.median(times),
        "profiled_ms_per_step": 1e3 * total / steps,
        "top": [{"where": _where(key), "ms": 1e3 * entry[2] / steps,
                 "share": entry[2] / total} for key, entry in rows],
    }


def torch_phases(model: Any, x: Any, batch: int, threads: int, steps: int) -> dict[str, Any]:
    """PyTorch's twin (``torch_twin.py``, the same weights) on the same batches: median ms of its
    forward (with the loss), backward and ``Adam.step``, for the default and the fused Adam."""
    torch = common.import_torch(threads)
    from torch_twin import make_adam, twin_of

    xt = torch.from_numpy(x)
    generator = torch.Generator().manual_seed(1)
    result: dict[str, Any] = {}
    for name, fused in (("default Adam", False), ("fused Adam", True)):
        twin = twin_of(model)
        optimizer = make_adam(twin, fused=fused)
        phases: dict[str, list[float]] = {"forward (with the loss)": [], "backward": [],
                                          "Adam.step": [], "step": []}
        for i in range(2 * steps):  # the first half warms up
            xb = xt[i % steps * batch : (i % steps + 1) * batch]
            eps = torch.randn(batch, model.z_dim, generator=generator)
            t0 = time.perf_counter()
            loss, recon, kl = twin(xb, eps)
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t2 = time.perf_counter()
            optimizer.step()
            t3 = time.perf_counter()
            [value.item() for value in (loss, recon, kl)]  # the three numbers fit records
            t4 = time.perf_counter()
            if i >= steps:
                for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t0), strict=True):
                    phases[key].append(value)
        result[name] = {key: 1e3 * statistics.median(v) for key, v in phases.items()}
    return result


def _where(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name  # a builtin: "<method 'reduce' of 'numpy.ufunc' objects>"
    path = Path(filename)
    parts = path.parts
    short = "/".join(parts[parts.index("minivae"):]) if "minivae" in parts else path.name
    return f"{short}:{name}"


def to_text(result: dict[str, Any]) -> str:
    lines = [f"batch {result['batch']}: {result['ms_per_step']:.2f} ms/step "
             f"({result['threads']} BLAS threads, wall clock, median; "
             f"{result['profiled_ms_per_step']:.2f} under cProfile)"]
    for row in result["top"]:
        lines.append(f"  {100 * row['share']:5.1f}%  {row['ms']:6.2f} ms  {row['where']}")
    for name, phases in result["torch"].items():
        lines.append(f"PyTorch ({name}), the same batches: {phases['step']:.2f} ms/step")
        for key, value in phases.items():
            if key != "step":
                lines.append(f"  {100 * value / phases['step']:5.1f}%  {value:6.2f} ms  {key}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        common.limit_threads(args.threads)  # for the whole worker process
        result = profile(args.worker, args.threads, args.steps, args.top)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    results = []
    for batch in args.batch:
        proc = subprocess.run(
            [sys.executable, str(HERE / "profile_step.py"), "--worker", str(batch),
             "--threads", str(args.threads), "--steps", str(args.steps), "--top", str(args.top)],
            env={**common.worker_env(args.threads), "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
            capture_output=True, text=True, check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        result = json.loads(lines[-1][len("RESULT "):])
        results.append(result)
        print(to_text(result), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
