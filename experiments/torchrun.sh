#!/bin/bash
# Multi-GPU / multi-node training with torchrun (no SLURM): Lightning reads the ranks torchrun sets
# (TorchElasticEnvironment). Run the same command on every node, with that node's NODE_RANK:
#
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0.example MASTER_PORT=29500 \
#     experiments/torchrun.sh experiments/configs/timesformer_k400.yaml --data.root /data/k400
#
# One process per GPU that nvidia-smi lists, or NPROC_PER_NODE of them (GPUS_PER_NODE is the older name); on a
# machine without GPUs, one. The accelerator is the config's or the command line's (Lightning's default: GPUs if
# there are any). Arguments after the config come last, so they override the ones set here.
# On a single machine the launcher is not needed: `python -m lightning_video fit --config FILE
# --trainer.devices 8 --trainer.strategy ddp` starts the other processes itself.
set -euo pipefail
config="$1"
shift
nnodes="${NNODES:-1}"
gpus_or_one() {
    if command -v nvidia-smi >/dev/null; then nvidia-smi --list-gpus | wc -l; else echo 1; fi
}
nproc="${NPROC_PER_NODE:-${GPUS_PER_NODE:-$(gpus_or_one)}}"

torchrun --nnodes "$nnodes" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$nproc" \
    --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
    -m lightning_video fit --config "$config" \
    --trainer.num_nodes "$nnodes" --trainer.devices "$nproc" --trainer.strategy ddp "$@"
