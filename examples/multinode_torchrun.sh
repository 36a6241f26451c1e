#!/usr/bin/env bash
# One `al run` (or one experiment cell) on several nodes with torchrun's c10d rendezvous.
# Run the same command on every node (NODE_RANK is not needed with c10d); the run directory must be
# on a filesystem every node sees (rank 0 writes it, the others read its checkpoints):
#   NNODES=2 GPUS=8 HEAD=node001 examples/multinode_torchrun.sh my_run.toml /shared/runs/r1
# Under SLURM: srun --nodes=2 --ntasks-per-node=1 examples/multinode_torchrun.sh ...  (HEAD = first node)
set -euo pipefail

CONFIG=${1:?run config or preset}
OUT=${2:?run directory (shared filesystem)}
NNODES=${NNODES:-2}
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
if [ -z "${HEAD:-}" ] && [ -n "${SLURM_JOB_NODELIST:-}" ]; then
    HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
fi
: "${HEAD:?set HEAD to the first node hostname}"

exec torchrun --nnodes="$NNODES" --nproc_per_node="$GPUS" \
    --rdzv_backend=c10d --rdzv_endpoint="$HEAD:29500" --rdzv_id="al-$(basename "$OUT")" \
    -m al run "$CONFIG" --torch-device cuda --out "$OUT" "${@:3}"   # e.g. --resume after a failure
