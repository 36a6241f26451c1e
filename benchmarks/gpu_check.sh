#!/usr/bin/env bash
# CUDA paths that never run on the CPU machines, in under 10 minutes on one GPU:
#   1. AMP + channels_last training (DeepLabv3+ ResNet-18, synthetic 256x512 frames)
#   2. CUDA evidence collection (entropy, embeddings, LLAL losses) vs the CPU
#   3. torch CUDA latency with and without CUDA graphs (hwbench measure)
#   4. k-center greedy on the GPU at N = 1,000,000, D = 512
#   5. DDP: al run smoke on one GPU and under torchrun on every GPU present; same selections?
# Usage: benchmarks/gpu_check.sh [OUT_DIR]   (default reports/gpu_check; a log lands there too)
# Without CUDA it prints "skip: ..." and exits 0. Each step has its own time limit.
set -uo pipefail

OUT=${1:-reports/gpu_check}
PY=${PYTHON:-python}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
: > "$LOG"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "skip: no CUDA GPU visible to torch (gpu_check needs one)" | tee -a "$LOG"
    exit 0
fi
NGPU=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
"$PY" -c 'import torch; print("gpu:", torch.cuda.get_device_name(0), "x", torch.cuda.device_count(), "| torch", torch.__version__, "| cuda", torch.version.cuda)' | tee -a "$LOG"

failed=0
step() {  # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    echo "== $name" | tee -a "$LOG"
    timeout "$limit" "$@" 2>>"$LOG" | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    echo "   $name: exit $rc, $((SECONDS - t0)) s" | tee -a "$LOG"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

step "1 train (AMP + channels_last)" 150 "$PY" -m benchmarks.gpu_check train "$OUT"
step "2 evidence on CUDA" 90 "$PY" -m benchmarks.gpu_check evidence "$OUT"
step "3a latency, torch CUDA, eager" 60 "$PY" -m hwbench measure deeplabv3plus_resnet18 --backend-device cuda \
    --input 1024x2048 --precision fp16 --iters 50 --json
step "3b latency, torch CUDA, CUDA graphs" 60 "$PY" -m hwbench measure deeplabv3plus_resnet18 --backend-device cuda \
    --input 1024x2048 --precision fp16 --iters 50 --cuda-graphs --json
step "4 k-center on GPU, N=1e6 D=512" 120 "$PY" -m benchmarks.gpu_check kcenter "$OUT"
rm -rf "$OUT/smoke_one" "$OUT/smoke_ddp"
step "5a al run smoke, one GPU" 60 "$PY" -m al run smoke --torch-device cuda --out "$OUT/smoke_one" --json
step "5b al run smoke, DDP on $NGPU GPU(s)" 90 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NGPU" \
    -m al run smoke --torch-device cuda --out "$OUT/smoke_ddp" --json
step "5c compare selections" 30 "$PY" -m benchmarks.gpu_check compare "$OUT"

echo "gpu_check: $failed step(s) failed; log in $LOG" | tee -a "$LOG"
[ "$failed" -eq 0 ]
