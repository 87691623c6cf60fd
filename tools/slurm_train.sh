#!/usr/bin/env bash
# Runs one rank of a data-parallel `ghm train` under SLURM: maps SLURM's task variables to the ones torchrun sets
# (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), then runs `ghm train` with the arguments given.
#
#   srun --nodes 2 --ntasks-per-node 4 --gpus-per-task 1 tools/slurm_train.sh \
#        --config configs/retinanet_ghm_r50_fpn_1x_coco.yml --work-dir /shared/work_dirs/ghm --device cuda
#
# GHM_BIN: the ghm binary (default: dist/bin/ghm next to this script). MASTER_ADDR: the first host of the job unless
# set. MASTER_PORT: 29500 unless set. The work dir must be on a filesystem every node sees (--auto-resume reads it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ghm="${GHM_BIN:-$here/../dist/bin/ghm}"
for v in SLURM_PROCID SLURM_NTASKS SLURM_LOCALID; do
    if [ -z "${!v:-}" ]; then
        echo "slurm_train.sh: $v is not set: run this script with srun (one task per rank)" >&2
        exit 2
    fi
done
if [ -z "${MASTER_ADDR:-}" ]; then
    if [ -z "${SLURM_JOB_NODELIST:-}" ] || ! command -v scontrol >/dev/null; then
        echo "slurm_train.sh: MASTER_ADDR is not set and scontrol cannot name the job's first host" >&2
        exit 2
    fi
    MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
fi
export MASTER_ADDR
export MASTER_PORT="${MASTER_PORT:-29500}"
export RANK="$SLURM_PROCID" WORLD_SIZE="$SLURM_NTASKS" LOCAL_RANK="$SLURM_LOCALID"
exec "$ghm" train "$@"
