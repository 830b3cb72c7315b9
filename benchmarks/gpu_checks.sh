#!/usr/bin/env bash
# The GPU measurements, in one run on a machine with an NVIDIA GPU (written for a lent H200 session,
# where device time is short: every step is bounded and independent of the others).
#
#   PCHW_DATA=folder-with-MNIST-IDX bash benchmarks/gpu_checks.sh [OUT]
#
# 0. the CUDA tests (skipped on CPU-only machines).
# 1. μPC depth 129 (H = 128, T = 128), one MNIST epoch, bf16 then fp32: test accuracy, NVML joules.
# 2. benchmarks/train_step.py on CUDA, depth 129 and 30, fp32 and bf16: step, CLI iteration, bmm rate,
#    NVML joules per iteration beside the modelled gpu-* figure.
# 3. benchmarks/insitu_throughput.py: numba on 2 cores (taskset) against the torch circuit backend on CUDA.
# 4. The trade-off's software networks (depth 5, width 128, one epoch, PC and BP) on the GPU: NVML joules
#    per training example beside the modelled estimates.
# Logs and run histories land in OUT (default gpu-out).
set -u
OUT=${1:-${OUT:-gpu-out}}
mkdir -p "$OUT"
PY=${PY:-python3}
RUNS=$(mktemp -d)
export PYTHONUNBUFFERED=1 PCHW_CACHE=${PCHW_CACHE:-$RUNS/cache}
log() { echo "=== $(date +%T) $*"; }

log machine
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit,clocks.sm --format=csv
$PY -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())"

log "the CUDA tests"
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_torch_backend.py tests/test_bf16.py -k "cuda" 2>&1 | tail -n 15

train() {  # name, then pchw train options
  local name=$1; shift
  log "train $name: $*"
  timeout 150 $PY cli.py train --device cuda --quiet --out "$RUNS/$name" "$@" 2>&1 | tail -n 4
  [ -f "$RUNS/$name/history.csv" ] && cp "$RUNS/$name/history.csv" "$OUT/$name.csv"
}

train d129-bf16 --model mupc --depth 129 --width 128 --epochs 1 --dtype bfloat16 --test-every 200
train d129-fp32 --model mupc --depth 129 --width 128 --epochs 1 --dtype float32 --test-every 200

log "train_step benchmark (CUDA)"
timeout 200 $PY benchmarks/train_step.py --device cuda --repeats 3 --block-s 1.0 --depths 129,30 2>&1 \
  | tee "$OUT/train_step.txt"

log "in-situ throughput: numba on 2 cores vs torch on CUDA"
NUMBA_NUM_THREADS=2 OMP_NUM_THREADS=2 timeout 180 taskset -c 0,1 $PY benchmarks/insitu_throughput.py \
  --rows numba,torch-cuda 2>&1 | tee "$OUT/insitu_throughput.txt"

train d5-pc --model mupc --depth 5 --width 128 --epochs 1
train d5-bp --model bp --depth 5 --width 128 --epochs 1
log done
