#!/usr/bin/env bash
# One surrogate x deployment experiment as a SLURM job array: task i of N runs every N-th cell
# (`al surrogate --shard i/N`; a cell waiting on a dependency nobody runs, runs it itself), each
# cell on one node's GPUs under torchrun would need --cell per job instead (see README "Scaling out").
# The experiment directory must be on a filesystem every node sees. Submit:
#   sbatch --array=0-7 examples/slurm_cells.sh cityscapes_paper /shared/exp/cityscapes /data/cityscapes
# then, when the array has finished (or at any time, for what has finished so far):
#   al report /shared/exp/cityscapes
#SBATCH --job-name=al-cells
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=al-cells-%A_%a.log
set -euo pipefail

CONFIG=${1:?experiment config or preset}
OUT=${2:?experiment directory (shared filesystem)}
DATA_ROOT=${3:-}
N=${SLURM_ARRAY_TASK_COUNT:?submit with --array=0-(N-1)}
I=${SLURM_ARRAY_TASK_ID:?submit with --array}

args=(surrogate "$CONFIG" --out "$OUT" --shard "$I/$N")
[ -n "$DATA_ROOT" ] && args+=(--data-root "$DATA_ROOT")
srun al "${args[@]}"
