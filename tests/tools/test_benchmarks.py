"""Smoke runs of benchmarks/ (no timing is asserted: only that the code path works and that
minivae and the PyTorch twin compute the same thing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from minivae import backend

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
GPU = backend.gpu_available()


def run_script(*args: str, timeout: int = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``python *args`` in a fresh interpreter, as a user would; fail with its stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def in_benchmarks(code: str) -> Any:
    """Run ``code`` as the benchmark scripts run (their folder first on the import path, in a
    process of its own: the tests' imports stay clean); returns its last printed line as JSON."""
    return json.loads(run_script("-c", code, cwd=BENCH).stdout.splitlines()[-1])


def test_mnist_like_data_is_binary_seeded_and_mnist_shaped():
    out = in_benchmarks("""
import json
import numpy as np
import common

a, b = common.mnist_like(300, seed=0), common.mnist_like(300, seed=0)
print(json.dumps({
    "same_seed_same_data": bool(np.array_equal(a, b)),
    "shape": list(a.shape), "dtype": str(a.dtype),
    "values": sorted(float(v) for v in np.unique(a)), "mean": float(a.mean()),
    "other_seed_other_data": not np.array_equal(a, common.mnist_like(300, seed=1)),
}))
""")
    assert out["same_seed_same_data"] and out["other_seed_other_data"]
    assert out["shape"] == [300, 784] and out["dtype"] == "float32"
    assert set(out["values"]) <= {0.0, 1.0}
    assert 0.05 < out["mean"] < 0.25  # MNIST binarized: about 0.13


def test_matmul_floor_runs_with_a_ragged_last_batch():
    out = in_benchmarks("""
import json
import bench_cpu

floor = bench_cpu.MatmulFloor(n=50, batch=16, dims=(12, 8, 3))
floor.epoch()
print(json.dumps({"batches": sorted(floor.plans), "products": len(floor.plans[16])}))
""")
    assert out == {"batches": [2, 16], "products": 11}


@pytest.mark.slow
def test_float64_minivae_and_torch_twin_compute_the_same_thing():
    pytest.importorskip("torch")
    proc = run_script(str(BENCH / "bench_cpu.py"), "--worker",
                      json.dumps({"job": "same_loss", "threads": 1}))
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    for key in ("loss", "recon", "kl", "loss_after_adam"):
        assert out[key] == pytest.approx(out[key + "_torch"], rel=1e-10), key
    assert out["grad_rel_err"] < 1e-10


@pytest.mark.slow
def test_quick_benchmark_writes_the_table(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_cpu.py"), "--quick", "--batches", "128",
         "--threads", "1", "--no-models", "--out", str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    for heading in ("# minivae vs PyTorch on the CPU", "## MNIST-shaped VAE", "## Digits",
                    "## Peak memory", "## Same computation", "## Targets"):
        assert heading in text, heading
    assert "NumPy" in text and "PyTorch" in text and "--quick" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| 128 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert all(float(c) > 0 for c in cells[1:8]), row  # times and ratios are positive numbers


@pytest.mark.slow
def test_every_course_model_and_its_torch_twin_compute_the_same_thing_in_float64(tmp_path):
    """bench_models.py --quick: every case runs (2 steps of each framework) and, in float64 on
    the same weights, batch and eps, the twin's loss and every gradient equal minivae's."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out, raw = tmp_path / "models.md", tmp_path / "models.json"
    run_script(str(BENCH / "bench_models.py"), "--quick", "--out", str(out), "--json", str(raw),
               timeout=900)
    rows = json.loads(raw.read_text())
    classes = {r["case"]["cls"] for r in rows}
    assert classes == {"VAE", "CVAE", "M2", "VQVAE", "FlowVAE", "IWAE"}, classes
    likelihoods = {r["case"]["kw"].get("likelihood") for r in rows if r["case"]["cls"] == "VAE"}
    assert likelihoods == {"bernoulli", "gaussian", "gaussian_learned"}
    for r in rows:
        name, f = f"{r['case']['name']} ({r['case']['size']})", r["float64"]
        assert f["loss"] == pytest.approx(f["loss_torch"], rel=1e-10), name
        assert f["term_rel_err"] < 1e-10, name
        assert f["grad_rel_err"] < 1e-10, (name, f["worst_grad"])
        assert f["n_arrays"] >= 8, name
        assert all(v > 0 for v in r["ms_per_step"].values()), name
    table = out.read_text()
    table_lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    assert len(table_lines) == len(rows) + 2  # header, rule, a row per case


@pytest.mark.skipif(GPU, reason="a GPU is present: the no-GPU path is not taken here")
def test_bench_gpu_exits_cleanly_without_a_gpu():
    proc = subprocess.run([sys.executable, str(BENCH / "bench_gpu.py")], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nothing to measure on this machine" in proc.stdout
    assert "CuPy" in proc.stdout


@pytest.mark.slow
def test_bench_gpu_code_path_runs_on_the_cpu_stand_in(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "gpu.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_gpu.py"), "--cpu-smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "CPU SMOKE RUN" in text and "| 784-64-20 (toy) | 128 |" in text


@pytest.mark.skipif(sys.platform != "linux", reason="gpu_check.sh uses bash and coreutils' timeout")
@pytest.mark.skipif(GPU, reason="a GPU is present: run benchmarks/gpu_check.sh itself")
def test_gpu_check_script_runs_every_step_and_fails_loudly_without_a_gpu(tmp_path):
    # benchmarks/gpu_check.sh is the one prepared run for a device machine; here, without a GPU,
    # it must still run all its steps, record them, and exit non-zero because the GPU tests
    # could not run (MINIVAE_REQUIRE_GPU=1), instead of reporting every GPU test as a quiet skip.
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "MINIVAE_REQUIRE_GPU"}
    env["PYTHONPATH"] = str(BENCH.parent)
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), str(out)], capture_output=True,
                          text=True, timeout=300, check=False, env=env)
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-2000:]  # pytest usage error
    summary = (out / "summary.txt").read_text()
    assert "versions: exit 0" in summary
    assert "pytest -m gpu: exit 4" in summary
    assert "bench_gpu.py: exit 0" in summary
    assert "minivae sees a GPU: False" in (out / "versions.txt").read_text()
    assert "MINIVAE_REQUIRE_GPU=1 but CuPy with a usable NVIDIA GPU not found" in (
        out / "pytest_gpu.txt").read_text()
    assert "nothing to measure on this machine" in (out / "bench_gpu.txt").read_text()
    assert not (out / "RESULTS_GPU.md").exists()


def test_step_ops_counts_operations_and_read_backs():
    from minivae.testing.host_kernels import CXX

    out = run_script(str(BENCH / "step_ops.py"), "--batch", "8", "--hidden", "16").stdout
    rows = {line.split("|")[1].strip(): [int(c) for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| array") or line.startswith("| host")}
    plain_ops, plain_reads = rows["array operations"][0], rows["host read-backs"][0]
    assert plain_ops > 40, out  # forward, backward and Adam: dozens of launches without kernels
    assert plain_reads == 4, out  # recon, KL penalty, KL, and fit's finite-gradient check
    if CXX is not None:
        fused_ops, fused_reads = rows["array operations"][1], rows["host read-backs"][1]
        assert fused_ops < plain_ops and fused_reads == plain_reads, out
        assert "kernel adam 1" in out and "kernel bernoulli_nll 1" in out
