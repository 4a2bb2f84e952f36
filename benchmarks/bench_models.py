"""Every model the course trains against its PyTorch twin: same weights, same batches, same eps.

    python benchmarks/bench_models.py                 # every case -> RESULTS_MODELS.md
    python benchmarks/bench_models.py --quick         # smoke run: float64 check + 2 tiny rounds
    python benchmarks/bench_models.py --threads 2 --clock wall

For each case (a model at the size its chapter trains it, and at MNIST size), in a worker process
of its own with ``--threads`` BLAS/torch threads (default 1, timed in CPU seconds of the process
with ``--clock cpu``: this machine is shared, and one thread per framework is the comparison the
load does not distort):

- float64: the model's ``loss_and_grads`` and the twin's ``backward`` (benchmarks/torch_twins.py)
  on the same weights, batch (up to 32 rows) and eps: relative error of the loss and the worst
  ``|ours - torch| / |torch|`` over every gradient array;
- float32 training steps: ``loss_and_grads`` + ``Adam.step`` (minivae; the batch prepared once, as
  ``fit`` prepares its data once) vs ``zero_grad``, ``forward``, ``backward``, ``Adam.step``,
  ``loss.item()`` (PyTorch's default Adam), the same pre-drawn batches and eps, interleaved
  round by round; the median time per step over the rounds after a warm-up round.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common  # benchmarks/common.py (a script's own folder is first on the import path)
import numpy as np

HERE = Path(__file__).resolve().parent

#: (name, chapter or "MNIST size", class, constructor kwargs, batch, data kind, labels kind)
CASES: list[dict[str, Any]] = [
    {"name": "VAE bernoulli", "size": "ch03", "cls": "VAE", "batch": 64, "data": "binary784",
     "kw": {"x_dim": 784, "z_dim": 12, "hidden": [256, 256], "likelihood": "bernoulli"}},
    {"name": "VAE bernoulli", "size": "MNIST", "cls": "VAE", "batch": 128, "data": "binary784",
     "kw": {"x_dim": 784, "z_dim": 20, "hidden": [512], "likelihood": "bernoulli"}},
    {"name": "VAE gaussian", "size": "ch09", "cls": "VAE", "batch": 128, "data": "binary784",
     "kw": {"x_dim": 784, "z_dim": 16, "hidden": [256], "likelihood": "gaussian",
            "obs_var": 0.01}},
    {"name": "VAE gaussian_learned", "size": "MNIST", "cls": "VAE", "batch": 128,
     "data": "binary784",
     "kw": {"x_dim": 784, "z_dim": 16, "hidden": [256], "likelihood": "gaussian_learned"}},
    {"name": "CVAE", "size": "ch07 = MNIST", "cls": "CVAE", "batch": 100, "data": "binary784",
     "labels": "all", "kw": {"x_dim": 784, "z_dim": 2, "hidden": [256], "n_classes": 10}},
    {"name": "M2 (10% labelled)", "size": "ch07 (16 features)", "cls": "M2", "batch": 100,
     "data": "normal16", "labels": "tenth",
     "kw": {"x_dim": 16, "z_dim": 4, "hidden": [128], "n_classes": 10,
            "classifier_hidden": [128], "likelihood": "gaussian_learned"}},
    {"name": "M2 (10% labelled)", "size": "MNIST", "cls": "M2", "batch": 100,
     "data": "binary784", "labels": "tenth",
     "kw": {"x_dim": 784, "z_dim": 4, "hidden": [128], "n_classes": 10,
            "classifier_hidden": [128]}},
    {"name": "VQ-VAE", "size": "ch08 = MNIST", "cls": "VQVAE", "batch": 64, "data": "binary784",
     "kw": {"x_dim": 784, "n_codes": 32, "z_dim": 128, "positions": 16, "hidden": [256]}},
    {"name": "FlowVAE (8 planar)", "size": "ch09 (8x8 digits)", "cls": "FlowVAE", "batch": 128,
     "data": "digits64", "kw": {"x_dim": 64, "z_dim": 16, "n_flows": 8, "hidden": [128]}},
    {"name": "FlowVAE (8 planar)", "size": "MNIST", "cls": "FlowVAE", "batch": 128,
     "data": "binary784", "kw": {"x_dim": 784, "z_dim": 16, "n_flows": 8, "hidden": [256]}},
    {"name": "IWAE k=5", "size": "ch09 (8x8 digits)", "cls": "IWAE", "batch": 128,
     "data": "digits64", "kw": {"x_dim": 64, "z_dim": 16, "k": 5, "hidden": [128]}},
    {"name": "IWAE k=5", "size": "MNIST", "cls": "IWAE", "batch": 128, "data": "binary784",
     "kw": {"x_dim": 784, "z_dim": 16, "k": 5, "hidden": [256]}},
]


# -------------------------------------------------------------------------------------------
# The worker: one case, in its own process
# -------------------------------------------------------------------------------------------


def _data(kind: str, n: int) -> np.ndarray:
    if kind == "binary784":
        return common.mnist_like(n, seed=0)
    if kind == "normal16":
        return np.random.default_rng(0).standard_normal((n, 16)).astype(np.float32)
    if kind == "digits64":
        from sklearn.datasets import load_digits

        x = (load_digits().data / 16.0).astype(np.float32)
        return x[np.arange(n) % len(x)]
    raise ValueError(kind)


def _labels(kind: str | None, n: int) -> np.ndarray | None:
    if kind is None:
        return None
    y = np.random.default_rng(1).integers(0, 10, n)
    if kind == "tenth":  # M2's semi-supervised minibatch: 1 row in 10 keeps its label
        y[np.arange(n) % 10 != 0] = -1
    return y


def _model(case: dict, dtype: str) -> Any:
    import minivae

    return getattr(minivae.models, case["cls"])(**case["kw"], seed=0, dtype=dtype)


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def float64_check(case: dict, torch: Any, twins: Any) -> dict:
    """Same weights, batch, eps in float64: the loss (and shared terms) and every gradient."""
    n = min(case["batch"], 32)
    model = _model(case, "float64")
    x = _data(case["data"], n).astype(np.float64)
    labels = _labels(case.get("labels"), n)
    shape = model.eps_shape(n)
    eps = np.random.default_rng(2).standard_normal(shape) if shape else None
    terms, grads = model.loss_and_grads(x, eps, labels=labels)
    p = twins.params_of(model, torch.float64)
    out = twins.twin_of(model)(p, torch.from_numpy(x), None if eps is None else
                               torch.from_numpy(eps),
                               None if labels is None else torch.from_numpy(labels))
    out["loss"].backward()
    theirs = twins.grads_of(p)
    term_err = max(_rel(terms[k], out[k].item()) for k in out if k in terms)
    grad_err = {name: _rel(grads[name], theirs[name]) for name in theirs}
    worst = max(grad_err, key=grad_err.get)
    return {"loss": terms["loss"], "loss_torch": out["loss"].item(), "term_rel_err": term_err,
            "grad_rel_err": grad_err[worst], "worst_grad": worst, "n_arrays": len(grad_err),
            "n_params": int(model.n_params())}


def job_case(spec: dict) -> dict:
    torch = common.import_torch(spec["threads"])
    import torch_twins as twins

    from minivae import Adam

    case, steps, rounds = spec["case"], spec["steps"], spec["rounds"]
    clock = time.process_time if spec["clock"] == "cpu" else time.perf_counter
    result: dict[str, Any] = {"float64": float64_check(case, torch, twins)}

    b = case["batch"]
    model = _model(case, "float32")
    x = _data(case["data"], b * steps)
    labels = _labels(case.get("labels"), b * steps)
    rng = np.random.default_rng(3)
    shape = model.eps_shape(b)
    batches, tensors = [], []
    for i in range(steps):
        rows = slice(i * b, (i + 1) * b)
        y = None if labels is None else labels[rows]
        eps = rng.standard_normal(shape).astype(np.float32) if shape else None
        batches.append((model.prepare(x[rows], labels=y), eps))
        tensors.append((torch.from_numpy(x[rows]), None if eps is None else torch.from_numpy(eps),
                        None if y is None else torch.from_numpy(y)))
    opt = Adam(model.params, lr=1e-3)
    p = twins.params_of(model, torch.float32)
    twin = twins.twin_of(model)
    opt_t = torch.optim.Adam(list(p.values()), lr=1e-3)

    def run_minivae() -> float:
        for batch, eps in batches:
            terms, grads = model.loss_and_grads(batch, eps)
            opt.step(grads)
        return terms["loss"]

    def run_torch() -> float:
        for xt, et, yt in tensors:
            opt_t.zero_grad(set_to_none=True)
            loss = twin(p, xt, et, yt)["loss"]
            loss.backward()
            opt_t.step()
            value = loss.item()
        return value

    runs = {"minivae": run_minivae, "torch": run_torch}
    times: dict[str, list[float]] = {k: [] for k in runs}
    last: dict[str, float] = {}
    for r in range(rounds + 1):  # round 0 warms up
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            start = clock()
            last[name] = runs[name]()
            if r > 0:
                times[name].append((clock() - start) / steps)
    result["ms_per_step"] = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    result["last_loss"] = last
    return result


# -------------------------------------------------------------------------------------------
# The parent
# -------------------------------------------------------------------------------------------


def run_worker(spec: dict) -> list[dict]:
    """Run ``spec["cases"]`` in one fresh worker process (a list of results, in order)."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        env=common.worker_env(spec["threads"]), capture_output=True, text=True, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        names = [c["name"] for c in spec["cases"]]
        raise RuntimeError(f"worker {names} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def measure_models(threads: int, clock: str, steps: int, rounds: int, quick: bool = False,
                   only: str = "", log: Any = print) -> list[dict]:
    """Every case of :data:`CASES` (or those whose name contains one of ``only``'s
    comma-separated parts): a worker process per case, or one for all with ``quick``."""
    wanted = [s for s in only.split(",") if s]
    cases = [c for c in CASES
             if not wanted or any(s in f"{c['name']} {c['size']}" for s in wanted)]
    spec = {"steps": steps, "rounds": rounds, "threads": threads, "clock": clock}
    groups = [cases] if quick else [[c] for c in cases]
    rows = []
    for group in groups:
        log("  models: " + ", ".join(f"{c['name']} ({c['size']})" for c in group))
        rows += [{"case": c, **out}
                 for c, out in zip(group, run_worker({**spec, "cases": group}), strict=True)]
    return rows


def to_markdown(rows: list[dict], threads: int, clock: str, steps: int, rounds: int,
                command: str) -> str:
    """The table of :func:`measure_models`' rows (with how it was measured)."""
    clock = ("CPU seconds of the process (process_time)" if clock == "cpu"
             else "wall-clock seconds")
    now = datetime.datetime.now(datetime.UTC)
    lines = [
        f"Written by `{command}` on {now:%Y-%m-%d %H:%M} UTC; {threads} thread(s) for "
        f"both; {clock}; median of {rounds} rounds of {steps} steps after a warm-up "
        "round, minivae and PyTorch interleaved.",
        "",
        "| model | size | batch | params | minivae ms/step | PyTorch ms/step | minivae / PyTorch "
        "| within 1.2x | float64 loss rel. err | float64 worst gradient rel. err |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        c, m, f = r["case"], r["ms_per_step"], r["float64"]
        ratio = m["minivae"] / m["torch"]
        lines.append(
            f"| {c['name']} | {c['size']} | {c['batch']} | {f['n_params']:,} | "
            f"{m['minivae']:.2f} | {m['torch']:.2f} | {ratio:.2f} | "
            f"{'yes' if ratio <= 1.2 else 'NO'} | "
            f"{abs(f['loss'] - f['loss_torch']) / abs(f['loss_torch']):.1e} | "
            f"{f['grad_rel_err']:.1e} ({f['n_arrays']} arrays) |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: every case's float64 check, 2 steps x 1 round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="cpu")
    parser.add_argument("--steps", type=int, default=40, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds")
    parser.add_argument("--only", default="", help="comma-separated substrings of case names")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_MODELS.md")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        import contextlib

        ctx = common.limit_threads(spec["threads"])
        with ctx if ctx is not None else contextlib.nullcontext():
            results = [job_case({**spec, "case": case}) for case in spec["cases"]]
            print("RESULT " + json.dumps(results), flush=True)
        return 0
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu adds up the CPU time of all threads: use it with --threads 1")
    if args.quick:
        args.steps, args.rounds = 2, 1
    command = "python benchmarks/bench_models.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    rows = measure_models(args.threads, args.clock, args.steps, args.rounds, args.quick,
                          args.only)
    text = to_markdown(rows, args.threads, args.clock, args.steps, args.rounds, command)
    args.out.write_text(text)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
