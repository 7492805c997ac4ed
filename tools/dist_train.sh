#!/usr/bin/env bash
# Train on GPUS processes of this node with torchrun.
#   bash tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (same on every node).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py args]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
TOOLS="$(cd "$(dirname "$0")" && pwd)"

if command -v torchrun >/dev/null 2>&1; then
    TORCHRUN=(torchrun)
else  # the same entry point, through the python on PATH
    TORCHRUN=("${PYTHON:-python}" -m torch.distributed.run)
fi

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
"${TORCHRUN[@]}" \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@"
