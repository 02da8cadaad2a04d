#!/usr/bin/env bash
# Distributed training on one machine with torchrun:
#   tools/dist_train.sh CONFIG NPROC [train.py options]
# NCCL on GPUs; without CUDA the processes use gloo on the CPU.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
# Runs under `set -u` on bash >= 4.2: no array is expanded (bash < 4.4
# rejects expanding an empty one). torchrun comes with PyTorch; without it on
# PATH the same launcher runs as `python -m torch.distributed.run`.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NPROC [train.py options]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR="$(cd "$(dirname "$0")" && pwd)"
TORCHRUN="python -m torch.distributed.run"
if command -v torchrun >/dev/null 2>&1; then
    TORCHRUN=torchrun
fi

# shellcheck disable=SC2086
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec $TORCHRUN \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
