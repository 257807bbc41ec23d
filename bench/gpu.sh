#!/usr/bin/env bash
# The GPU checks in one prepared script (under 5 minutes on a lent GPU machine):
#   1. the CUDA tests (tests/test_cuda.py: the same results as the CPU on tiny runs),
#   2. the classic-grid benchmark on the GPU (fp32 and bf16, K = 25 and K = 100).
# Figures go to ${OUT:-.}/gpu-figures.md (and the test log to gpu-tests.log) for BENCHMARKS.md.
# Without a GPU it says so and exits 0: everything else is checked on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.}"
py="${PYTHON:-.venv/bin/python}"
[ -x "$py" ] || py=python3
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "bench/gpu.sh: no GPU found (torch.cuda.is_available() is False); nothing to run"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 120 "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/gpu-tests.log" | tail -5
tests=${PIPESTATUS[0]}
timeout 170 "$py" -m bench.gpu_grid --out "$out/gpu-figures.md" --steps "${STEPS:-2000}"
grid=$?
echo "cuda tests rc $tests, grid rc $grid"
exit $(( tests || grid ))
