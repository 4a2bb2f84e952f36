"""minivae on a GPU (CuPy) vs minivae on NumPy vs PyTorch CUDA: seconds per epoch and ratios.

    python benchmarks/bench_gpu.py            # writes benchmarks/RESULTS_GPU.md
    python benchmarks/bench_gpu.py --quick    # fewer rows and epochs
    python benchmarks/bench_gpu.py --cpu-smoke --out /tmp/x.md   # the code path, no GPU needed

Cases: the MNIST-shaped VAE of bench_cpu.py (784-512-20-512-784, ReLU, Bernoulli, Adam lr
1e-3, 60,000 x 784 binary from a fixed seed) at batch 128, 512 and 4096, and a wide model
(hidden 2048) at batch 512 and 4096. Per case, one epoch of each contestant per round, the
rounds interleaved; median seconds per epoch after a warm-up round. GPU times are taken after
synchronising the device (CuPy and PyTorch return before the GPU has finished). minivae on CuPy
runs twice: with its fused kernels (minivae/kernels.py, the default) and without them
(``kernels.set_enabled(False)``), so the table shows what the kernels buy. The NumPy column is
minivae on ``--numpy-threads`` CPU cores (default 2): BLAS threads are limited with
threadpoolctl, or, without it, by OPENBLAS_NUM_THREADS/OMP_NUM_THREADS set before the run.

Without CuPy or without a usable NVIDIA GPU it prints why and exits with status 0 (nothing to
measure is not an error). ``--cpu-smoke`` runs every code path on the CPU instead, minivae's
"GPU" model on the strict stand-in backend (minivae.testing.standin) and PyTorch on the CPU, at toy
sizes: for tests; its numbers are not GPU results and its table says so.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import common  # benchmarks/common.py: a script's own folder is first on the import path

HERE = Path(__file__).resolve().parent

CASES = [  # (name, hidden, batch)
    ("784-512-20", 512, 128),
    ("784-512-20", 512, 512),
    ("784-512-20", 512, 4096),
    ("784-2048-20 (wide)", 2048, 512),
    ("784-2048-20 (wide)", 2048, 4096),
]


def why_no_gpu() -> str | None:
    """None when CuPy imports and sees a usable GPU; otherwise the reason, in words."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install -e \".[gpu]\" on a machine with an NVIDIA GPU)"
    try:
        if not cupy.cuda.is_available():
            return "CuPy is installed but finds no usable NVIDIA GPU (cupy.cuda.is_available())"
        cupy.zeros(1).sum()  # a first kernel: a broken driver fails here, not later
    except Exception as err:  # a broken CUDA installation counts as no GPU
        return f"CuPy cannot use the GPU: {err}"
    return None


class Contestants:
    """The models of one case: minivae on the device backend and on NumPy, torch on its device."""

    def __init__(self, hidden: int, batch: int, x_host: Any, device_backend: str,
                 torch_device: str | None, numpy_threads: int):
        from minivae import VAE, Adam, backend

        self.batch = batch
        self.xp = backend.get(device_backend)
        self.x_dev = backend.to_device(x_host, self.xp)
        self.x_host = x_host
        self.dev_model = VAE(784, 20, (hidden,), seed=0, backend=device_backend)
        self.dev_opt = Adam(self.dev_model.params, lr=1e-3)
        self.plain_model = VAE(784, 20, (hidden,), seed=0, backend=device_backend)
        self.plain_opt = Adam(self.plain_model.params, lr=1e-3)
        self.np_model = VAE(784, 20, (hidden,), seed=0)
        self.np_opt = Adam(self.np_model.params, lr=1e-3, threads=numpy_threads)
        self.torch = None
        if torch_device is not None:
            import torch
            from torch_twin import make_adam, twin_of

            self.torch = torch
            self.torch_device = torch_device
            self.xt = torch.from_numpy(x_host).to(torch_device)
            self.twins, self.topts, self.gens = {}, {}, {}
            for name, fused in (("torch", False), ("torch_fused", True)):
                twin = twin_of(self.np_model).to(torch_device)
                self.twins[name] = twin
                self.topts[name] = make_adam(twin, fused)
                self.gens[name] = torch.Generator(device=torch_device).manual_seed(1)

    def sync(self) -> None:
        from minivae import backend

        backend.synchronize(self.xp)
        if self.torch is not None and self.torch_device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def numpy_epoch(self, seed: int) -> None:
        from minivae import fit

        fit(self.np_model, self.x_host, epochs=1, batch_size=self.batch, optimizer=self.np_opt,
            seed=seed, progress=False)

    def plain_epoch(self, seed: int) -> None:
        """minivae on the device without its fused kernels."""
        from minivae import fit
        from minivae.accel import kernels

        previous = kernels.set_enabled(False)
        try:
            fit(self.plain_model, self.x_dev, epochs=1, batch_size=self.batch,
                optimizer=self.plain_opt, seed=seed, progress=False)
        finally:
            kernels.set_enabled(previous)

    def torch_epoch(self, name: str) -> None:
        from torch_twin import train_epoch

        train_epoch(self.twins[name], self.topts[name], self.xt, self.batch, self.gens[name])


def run_case(c: Contestants, rounds: int, numpy_rounds: int) -> dict[str, float]:
    """Median s/epoch of each contestant; the device model's fit drives the rounds (its
    on_epoch_end runs the others, so its per-call data checks are paid once)."""
    from minivae import fit

    others: dict[str, Any] = {"plain": c.plain_epoch}
    if c.torch is not None:
        others["torch"] = lambda r: c.torch_epoch("torch")
        others["torch_fused"] = lambda r: c.torch_epoch("torch_fused")
    others["numpy"] = c.numpy_epoch
    times: dict[str, list[float]] = {"device": [], **{k: [] for k in others}}
    state = {"start": 0.0}

    def between(epoch: int, _model: Any, _history: Any) -> None:
        c.sync()
        times["device"].append(time.perf_counter() - state["start"])
        for name, run in others.items():
            if name == "numpy" and epoch > numpy_rounds:  # NumPy epochs are slow: fewer
                continue
            c.sync()
            start = time.perf_counter()
            run(epoch)
            c.sync()
            times[name].append(time.perf_counter() - start)
        c.sync()
        state["start"] = time.perf_counter()

    c.sync()
    state["start"] = time.perf_counter()
    fit(c.dev_model, c.x_dev, epochs=rounds + 1, batch_size=c.batch, optimizer=c.dev_opt,
        seed=0, progress=False, on_epoch_end=between)
    return {k: statistics.median(v[1:]) for k, v in times.items() if len(v) > 1}


def device_memory_mib(c: Contestants) -> dict[str, float]:
    """GPU memory held: CuPy's pool (bytes acquired) and torch's peak reserved."""
    out: dict[str, float] = {}
    if hasattr(c.xp, "get_default_memory_pool"):
        out["cupy_pool"] = c.xp.get_default_memory_pool().total_bytes() / 2**20
    if c.torch is not None and c.torch_device.startswith("cuda"):
        out["torch_reserved_peak"] = c.torch.cuda.max_memory_reserved() / 2**20
    return out


def to_markdown(rows: list[dict], header: dict, command: str, smoke: bool) -> str:
    now = datetime.datetime.now(datetime.UTC)
    lines = ["# minivae on the GPU (CuPy) vs NumPy vs PyTorch CUDA", ""]
    if smoke:
        lines += ["**CPU SMOKE RUN: the 'device' column is minivae on the stand-in backend and "
                  "PyTorch ran on the CPU, at toy sizes. These are not GPU results.**", ""]
    lines += [
        f"Written by `{command}` on {now:%Y-%m-%d %H:%M} UTC.",
        "",
        f"- GPU: {header['gpu']}",
        f"- CPU (for the NumPy column): {header['cpu']}; NumPy {header['numpy']}",
        f"- CuPy {header['cupy']}; PyTorch {header['torch']}",
        f"- Data: {header['rows']:,} x 784 binary (fixed seed); Adam lr 1e-3; median s/epoch "
        f"over {header['rounds']} epochs after a warm-up epoch (NumPy: {header['numpy_rounds']})",
        "",
        "| model | batch | minivae CuPy | CuPy, no fused kernels | minivae NumPy | PyTorch CUDA "
        "Adam | PyTorch CUDA Adam(fused) | NumPy / CuPy | no kernels / kernels | CuPy / PyTorch "
        "| CuPy / PyTorch fused |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    nan = float("nan")
    for r in rows:
        m = r["median"]
        dev, plain, npy = m["device"], m.get("plain", nan), m.get("numpy", nan)
        tt, tf = m.get("torch", nan), m.get("torch_fused", nan)
        lines.append(
            f"| {r['model']} | {r['batch']} | {dev:.3f} | {plain:.3f} | {npy:.3f} | {tt:.3f} | "
            f"{tf:.3f} | {npy / dev:.1f}x | {plain / dev:.2f} | {dev / tt:.2f} | {dev / tf:.2f} |"
        )
    lines += ["", "GPU memory held after each case (MiB): "
              + "; ".join(f"{r['model']} b{r['batch']}: {r['memory']}" for r in rows), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="6,000 rows, 2 timed epochs")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="run the code path on the CPU (stand-in backend), toy sizes")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per contestant")
    parser.add_argument("--numpy-rounds", type=int, default=2, help="timed NumPy epochs")
    parser.add_argument("--numpy-threads", type=int, default=2, help="minivae Adam threads (NumPy)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_GPU.md")
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_gpu.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))

    if args.cpu_smoke:
        if args.out == HERE / "RESULTS_GPU.md":
            parser.error("--cpu-smoke must not overwrite RESULTS_GPU.md: give --out")
        from minivae import backend
        from minivae.testing import standin

        backend.register("standin", standin.standin)
        device_backend, gpu_name = "standin", "none (CPU smoke run)"
        rows_n, cases, rounds, numpy_rounds = 512, [("784-64-20 (toy)", 64, 128)], 1, 1
        try:
            import torch  # noqa: F401

            torch_device: str | None = "cpu"
        except ImportError:
            torch_device = None
    else:
        reason = why_no_gpu()
        if reason is not None:
            print(f"bench_gpu.py: nothing to measure on this machine: {reason}.")
            print("It needs CuPy and an NVIDIA GPU; bench_cpu.py measures the CPU.")
            return 0
        from minivae import backend

        device_backend = "cupy"
        gpu_name = backend.device_name(backend.get("cupy"))
        rows_n = 6000 if args.quick else 60000
        cases = CASES
        rounds, numpy_rounds = (2, 1) if args.quick else (args.rounds, args.numpy_rounds)
        try:
            import torch

            torch_device = "cuda" if torch.cuda.is_available() else None
        except ImportError:
            torch_device = None
        if torch_device is None:
            print("bench_gpu.py: PyTorch with CUDA not found; its columns will be empty (nan).")

    # the NumPy column is minivae on --numpy-threads cores, whatever the GPU machine has
    limiter = common.limit_threads(args.numpy_threads)
    if limiter is None and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.numpy_threads):
        print(f"bench_gpu.py: threadpoolctl is not installed; run with OPENBLAS_NUM_THREADS="
              f"{args.numpy_threads} OMP_NUM_THREADS={args.numpy_threads} to limit NumPy's BLAS "
              "to that many cores (the table's CPU line records what it used)")
    x = common.mnist_like(rows_n, seed=0)
    header = {
        "gpu": gpu_name, "rows": rows_n, "rounds": rounds, "numpy_rounds": numpy_rounds,
        **{k: v for k, v in common.machine_info().items() if k in ("cpu", "numpy", "torch")},
    }
    try:
        import cupy

        header["cupy"] = cupy.__version__
    except ImportError:
        header["cupy"] = "not installed"
    if torch_device is not None and torch_device.startswith("cuda"):
        import torch

        header["torch"] += f", CUDA device {torch.cuda.get_device_name()}"
    rows = []
    for model_name, hidden, batch in cases:
        print(f"  {model_name}, batch {batch} ...", flush=True)
        c = Contestants(hidden, batch, x, device_backend, torch_device, args.numpy_threads)
        median = run_case(c, rounds, numpy_rounds)
        rows.append({"model": model_name, "batch": batch, "median": median,
                     "memory": {k: round(v) for k, v in device_memory_mib(c).items()}})
        del c
    text = to_markdown(rows, header, command, smoke=args.cpu_smoke)
    args.out.write_text(text)
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
