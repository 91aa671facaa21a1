#!/usr/bin/env bash
# PPO + SET at GPU scale, on a GPU machine (never needed otherwise).
#
# Physics stays on that machine's CPU cores (one mujoco.batch.Batch on all of them); the learner runs on the GPU
# with thousands of environments per update. The run stops itself after BUDGET_MINUTES (default 5) and, every
# minute, writes model.zip and a row of throughput.csv (env steps/s); every 30 s these, the evaluation curve
# (metrics.csv) and config.json are copied to $OUT/gpu_ppo/, so a run cut off still returns them.
#
# The GPU machine has python3 with torch but not MuJoCo, Gymnasium, stable-baselines3 or tyro, and cannot reach
# the package index: fetch their wheels here first (about 30 MB), then copy the folder along:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_5_x86_64 -d .wheels mujoco==4.0.0 \
#       mujoco-core==4.0.0 mujoco-studio==4.0.0 glfw pyopengl websockets gymnasium==1.4.0 farama-notifications \
#       stable-baselines3==2.9.2 tyro docstring-parser typeguard
#   echo /.wheels/ >> .git/info/exclude
# and copy the folder to the GPU machine with the repository, then run:  bash scripts/device_ppo.sh
set -euo pipefail
BUDGET_MINUTES="${BUDGET_MINUTES:-5}"
NUM_ENVS="${NUM_ENVS:-2048}"
N_STEPS="${N_STEPS:-32}"
BATCH_SIZE="${BATCH_SIZE:-8192}"
EVAL_EVERY="${EVAL_EVERY:-2000000}"
POLICY="${POLICY:-set}"
source "$(dirname "$0")/device_setup.sh"
FILES=(model.zip throughput.csv metrics.csv config.json)
(while sleep 30; do sync_out gpu_ppo "${FILES[@]}"; done) &
SYNC=$!
python3 scripts/train_policy.py --env hopper_5_full --policy "$POLICY" --device "${DEVICE:-cuda}" --threads 4 \
    --num-envs "$NUM_ENVS" --steps 1000000000 --budget-minutes "$BUDGET_MINUTES" --save-every-minutes 1 \
    --eval-every "$EVAL_EVERY" --eval-episodes 4 --checkpoint-every 0 --no-progress --run-dir "$RUNS" --name gpu_ppo \
    ppo --n-steps "$N_STEPS" --batch-size "$BATCH_SIZE" --n-epochs 5 --learning-rate 3e-4
kill "$SYNC" || true
sync_out gpu_ppo "${FILES[@]}"
