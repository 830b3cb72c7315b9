#!/usr/bin/env bash
# The GPU measurements, in one run on a machine with an NVIDIA GPU (written for a lent H200 session,
# where device time is short: every step is bounded and independent of the others).
#
#   PCHW_DATA=folder-with-MNIST-IDX [SECTIONS="tests graph train bench insitu trade"] bash benchmarks/gpu_checks.sh [OUT]
#
# 0. tests: the CUDA tests (skipped on CPU-only machines).
#    graph: the CUDA-graph PC step against the eager one at depth 129, fp32 and bf16: bit-identical or not.
# 1. train: μPC depth 129 (H = 128, T = 128), one MNIST epoch, bf16 then fp32 (the CLI's defaults, so the
#    step is a CUDA graph): test accuracy, wall time, NVML joules.
# 2. bench: benchmarks/train_step.py on CUDA, depth 129 and 30, fp32 and bf16: step, CLI iteration, bmm rate,
#    NVML joules per iteration beside the modelled gpu-* figure; eager and graphed steps.
# 3. insitu: benchmarks/insitu_throughput.py: numba on 2 cores (taskset) against the torch circuit backend on CUDA.
# 4. trade: the trade-off's software networks (depth 5, width 128, one epoch, PC and BP) on the GPU: NVML joules
#    per training example beside the modelled estimates.
# Logs and run histories land in OUT (default gpu-out).
set -u
OUT=${1:-${OUT:-gpu-out}}
mkdir -p "$OUT"
PY=${PY:-python3}
RUNS=$(mktemp -d)
export PYTHONUNBUFFERED=1 PCHW_CACHE=${PCHW_CACHE:-$RUNS/cache}
SECTIONS=${SECTIONS:-tests graph train bench insitu trade}
log() { echo "=== $(date +%T) $*"; }
want() { [[ " $SECTIONS " == *" $1 "* ]]; }

log machine
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit,clocks.sm --format=csv
$PY -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())"

if want tests; then
  log "the CUDA tests"
  timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_cuda_graph.py tests/test_torch_backend.py \
    tests/test_bf16.py -k "cuda or graph" 2>&1 | tail -n 15
fi

if want graph; then
  log "CUDA-graph step against the eager step, depth 129, T = 128, one batch of 64, then 3 Adam steps"
  timeout 120 $PY - <<'PYEOF' 2>&1
import torch
from models.graphs import PCStep
from models.pcnet import PCNet
from models.steps import adam
from pchw.spec import NetworkSpec
spec = NetworkSpec(input_dim=784, width=128, depth=129, output_dim=10)
gen = torch.Generator().manual_seed(0)
batches = [(torch.randn(64, 784, generator=gen).cuda(),
            torch.nn.functional.one_hot(torch.randint(0, 10, (64,), generator=gen), 10).float().cuda())
           for _ in range(4)]
for precision in ("float32", "bfloat16"):
    runs = []
    for graph in (False, True):
        net = PCNet(spec, seed=0, precision=precision, device="cuda")
        opt, step, out = adam(net, 1e-3), PCStep(net, n_steps=128, activity_lr=0.5, graph=graph), []
        for x, y in batches:
            loss, f = step(x, y)
            out.append([loss.clone(), f.clone(), *(p.grad.clone() for p in (net.w_in, net.w_hid, net.w_out))])
            opt.step()
        out.append([p.detach().clone() for p in (net.w_in, net.w_hid, net.w_out)])
        runs.append(out)
    pairs = [(a, b) for ea, eb in zip(*runs) for a, b in zip(ea, eb)]
    worst = max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-30)) for a, b in pairs)
    print(f"{precision}: graph == eager bit for bit: {all(torch.equal(a, b) for a, b in pairs)}; "
          f"largest difference {worst:.3g} of a tensor's scale")
PYEOF
fi

train() {  # name, then pchw train options
  local name=$1; shift
  log "train $name: $*"
  timeout 150 $PY cli.py train --device cuda --quiet --out "$RUNS/$name" "$@" 2>&1 | tail -n 4
  [ -f "$RUNS/$name/history.csv" ] && cp "$RUNS/$name/history.csv" "$OUT/$name.csv"
}

if want bench; then
  log "train_step benchmark (CUDA)"
  timeout 240 $PY benchmarks/train_step.py --device cuda --repeats 3 --block-s 1.0 --depths 129,30 2>&1 \
    | tee "$OUT/train_step.txt"
fi

if want train; then
  train d129-bf16 --model mupc --depth 129 --width 128 --epochs 1 --dtype bfloat16 --test-every 200
  train d129-fp32 --model mupc --depth 129 --width 128 --epochs 1 --dtype float32 --test-every 200
fi

if want insitu; then
  log "in-situ throughput: numba on 2 cores vs torch on CUDA"
  NUMBA_NUM_THREADS=2 OMP_NUM_THREADS=2 timeout 150 taskset -c 0,1 $PY benchmarks/insitu_throughput.py \
    --rows numba,torch-cuda 2>&1 | tee "$OUT/insitu_throughput.txt"
fi

if want trade; then
  train d5-pc --model mupc --depth 5 --width 128 --epochs 1
  train d5-bp --model bp --depth 5 --width 128 --epochs 1
fi
log done
