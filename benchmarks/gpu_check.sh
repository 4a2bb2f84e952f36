#!/usr/bin/env bash
# Every GPU check of the CuPy backend in one run, for a machine with an NVIDIA GPU:
#
#     PYTHONPATH=. bash benchmarks/gpu_check.sh [OUT_DIR]      # default: gpu_check_out/
#
# 1. versions: the GPU (nvidia-smi), Python, NumPy, CuPy and its CUDA runtime, PyTorch;
# 2. every test marked `gpu` (the CuPy column of the backend-parametrized tests and the fused
#    kernels on the real device), with MINIVAE_REQUIRE_GPU=1: where CuPy finds no usable GPU
#    this step fails (pytest's usage error, status 4) instead of skipping every test;
# 3. benchmarks/bench_gpu.py, its table written to OUT_DIR/RESULTS_GPU.md (copy it to
#    benchmarks/ to publish it).
#
# It needs only NumPy, CuPy, pytest and (for the PyTorch column) torch: pytest runs without the
# project's addopts, which name nbval, so a machine without the course's packages can run it.
# Each step has its own time limit and the script goes on after a failure, so one run gives
# every figure it can; the exit status is that of the first step that failed. A summary of the
# statuses is the last thing printed and is in OUT_DIR/summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check_out}"
mkdir -p "$out"
export PYTHONPATH="${PYTHONPATH:-.}"
# The NumPy column of the benchmark is minivae on 2 cores (the CI machine's size), also where
# threadpoolctl is not installed to limit the BLAS threads from inside the process.
export OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
: "${TESTS_LIMIT_S:=240}" "${BENCH_LIMIT_S:=420}" "${BENCH_ARGS:=}"

first_failure=0
summary=()
step() {  # step NAME LIMIT_S LOG COMMAND...: run COMMAND under a time limit, log and record it
    local name=$1 limit=$2 log=$3
    shift 3
    echo "=== $name (limit ${limit} s) ==="
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out/$log"
    local status=${PIPESTATUS[0]}
    local took=$((SECONDS - start))
    if [ "$status" -eq 124 ]; then
        summary+=("$name: TIMED OUT after ${limit} s (log: $log)")
    else
        summary+=("$name: exit $status in ${took} s (log: $log)")
    fi
    if [ "$status" -ne 0 ] && [ "$first_failure" -eq 0 ]; then
        first_failure=$status
    fi
}

versions() {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv \
        || echo "nvidia-smi: not available"
    python - <<'EOF'
import platform

import numpy

print("python", platform.python_version(), "| numpy", numpy.__version__)
try:
    import cupy

    print("cupy", cupy.__version__, "| CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "| GPU usable:", cupy.cuda.is_available())
except Exception as err:  # report, do not stop: the tests and benchmark say the rest
    print("cupy: unusable:", err)
try:
    import torch

    print("torch", torch.__version__, "| CUDA", torch.version.cuda,
          "| GPU usable:", torch.cuda.is_available())
except Exception as err:
    print("torch: unusable:", err)
from minivae import backend

print("minivae sees a GPU:", backend.gpu_available())
EOF
}

export -f versions  # so that `timeout` can run it in a child bash
step "versions" 60 versions.txt bash -c versions
# MINIVAE_REQUIRE_GPU=1: no usable GPU is an error here, not a reason to skip (tests/conftest.py)
step "pytest -m gpu" "$TESTS_LIMIT_S" pytest_gpu.txt \
    env MINIVAE_REQUIRE_GPU=1 python -m pytest -o addopts="" -p no:cacheprovider --continue-on-collection-errors \
        -q -rs -m gpu tests
# BENCH_ARGS is split on spaces on purpose (e.g. BENCH_ARGS="--quick")
# shellcheck disable=SC2086
step "bench_gpu.py" "$BENCH_LIMIT_S" bench_gpu.txt \
    python benchmarks/bench_gpu.py --out "$out/RESULTS_GPU.md" $BENCH_ARGS

{
    echo "=== summary (gpu_check.sh, $(date -u '+%Y-%m-%d %H:%M UTC')) ==="
    printf '%s\n' "${summary[@]}"
} | tee "$out/summary.txt"
exit "$first_failure"
