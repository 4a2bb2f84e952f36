"""Smoke runs of benchmarks/ (no timing is asserted: only that the code path works and that
minivae and the PyTorch twin compute the same thing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))


def test_mnist_like_data_is_binary_seeded_and_mnist_shaped():
    import common

    a, b = common.mnist_like(300, seed=0), common.mnist_like(300, seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (300, 784) and a.dtype == np.float32
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert 0.05 < a.mean() < 0.25  # MNIST binarized: about 0.13
    assert not np.array_equal(a, common.mnist_like(300, seed=1))


def test_matmul_floor_runs_with_a_ragged_last_batch():
    import bench_cpu

    floor = bench_cpu.MatmulFloor(n=50, batch=16, dims=(12, 8, 3))
    assert set(floor.plans) == {16, 2}
    floor.epoch()
    assert len(floor.plans[16]) == 11


@pytest.mark.slow
def test_float64_minivae_and_torch_twin_compute_the_same_thing():
    pytest.importorskip("torch")
    import bench_cpu

    out = bench_cpu.job_same_loss({"threads": 1})
    for key in ("loss", "recon", "kl", "loss_after_adam"):
        ours, theirs = out[key], out[key + "_torch"] if key != "loss_after_adam" else out[
            "loss_after_adam_torch"]
        assert ours == pytest.approx(theirs, rel=1e-10), key
    assert out["grad_rel_err"] < 1e-10


@pytest.mark.slow
def test_quick_benchmark_writes_the_table(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_cpu.py"), "--quick", "--batches", "128",
         "--threads", "1", "--out", str(out)],
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


def test_bench_gpu_exits_cleanly_without_a_gpu():
    import bench_gpu

    if bench_gpu.why_no_gpu() is None:
        pytest.skip("a GPU is present: the no-GPU path is not taken here")
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
def test_gpu_check_script_runs_every_step_and_fails_loudly_without_a_gpu(tmp_path):
    # benchmarks/gpu_check.sh is the one prepared run for a device machine; here, without a GPU,
    # it must still run all its steps, record them, and exit non-zero because the GPU tests
    # could not run (MINIVAE_REQUIRE_GPU=1), instead of reporting every GPU test as a quiet skip.
    import bench_gpu

    if bench_gpu.why_no_gpu() is None:
        pytest.skip("a GPU is present: run benchmarks/gpu_check.sh itself")
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


def test_step_ops_counts_operations_and_read_backs_and_restores_the_stand_in(capsys):
    import step_ops

    from minivae.accel import kernels
    from minivae.testing.host_kernels import CXX
    from minivae.testing.standin import DeviceArray, standin

    before, compiled = dict(DeviceArray.__dict__), dict(kernels._compiled)
    assert step_ops.main(["--batch", "8", "--hidden", "16"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): [int(c) for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| array") or line.startswith("| host")}
    plain_ops, plain_reads = rows["array operations"][0], rows["host read-backs"][0]
    assert plain_ops > 40, out  # forward, backward and Adam: dozens of launches without kernels
    assert plain_reads == 4, out  # recon, KL penalty, KL, and fit's finite-gradient check
    if CXX is not None:
        fused_ops, fused_reads = rows["array operations"][1], rows["host read-backs"][1]
        assert fused_ops < plain_ops and fused_reads == plain_reads, out
        assert "kernel adam 1" in out and "kernel bernoulli_nll 1" in out
    # everything patched for counting is put back
    assert dict(DeviceArray.__dict__) == before
    assert not hasattr(standin, "ElementwiseKernel") and kernels._compiled == compiled
