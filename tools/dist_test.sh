#!/usr/bin/env bash
# Test a checkpoint on GPUS processes of this node with torchrun.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (same on every node).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
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
    "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
