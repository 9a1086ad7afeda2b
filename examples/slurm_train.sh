#!/usr/bin/env bash
# Train the planner on several machines with SLURM: one task per node, every GPU of a node a process.
# Submit with: sbatch --nodes 2 examples/slurm_train.sh data/demos runs/planner
# Each process draws its batches from its own shard of the episodes (every n-th episode); only the main
# process (rank 0) writes checkpoints, snapshots, curves and the planner. `--resume` continues after a
# preemption: the batches of a step depend on (seed, step, rank) only, so the run goes on where it stopped.
#SBATCH --job-name=vid2act-train
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=04:00:00
set -euo pipefail
data=${1:?dataset folder}; run=${2:?run folder}
gpus_per_node=${SLURM_GPUS_ON_NODE:-8}
main=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
resume=$([ -e "$run" ] && echo --resume || true)  # a run started before: continue it
srun bash -c "accelerate launch --multi_gpu --num_machines $SLURM_NNODES --machine_rank \$SLURM_NODEID \
  --main_process_ip $main --main_process_port 29500 --num_processes $((SLURM_NNODES * gpus_per_node)) \
  -m vid2act.cli train video --data $data --out $run --device cuda --mixed-precision bf16 $resume"
