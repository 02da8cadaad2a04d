#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU:
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py options]
# Environment: GPUS (total, default 4 as in the paper), GPUS_PER_NODE (8),
# CPUS_PER_TASK (5), SRUN_ARGS (extra srun arguments), PORT (29500).
# Runs under `set -u` on bash >= 4.2 (older clusters): no array is expanded,
# since bash < 4.4 rejects expanding an empty one as an unbound variable.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
    WORK_DIR=$1
    shift
    set -- --work-dir "$WORK_DIR" "$@"
fi
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
export MASTER_PORT=${PORT:-29500}
DIR="$(cd "$(dirname "$0")" && pwd)"

# shellcheck disable=SC2086
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    python -u "$DIR/train.py" "$CONFIG" --launcher slurm "$@"
