#!/usr/bin/env bash
# PPO + SET at GPU scale, for a session that is lent the GPU machine (never needed otherwise).
#
# Physics stays on that machine's CPU cores (one mujoco.batch.Batch, 16 threads); the learner runs on the GPU with
# thousands of environments per update. The run stops itself after BUDGET_MINUTES (default 7) and, every minute,
# writes model.zip and a row of throughput.csv (env steps/s) to $OUT/gpu/, so a run cut off still returns both.
#
# The GPU machine has python3 with torch but not MuJoCo, Gymnasium, stable-baselines3 or tyro, and cannot reach
# the package index: fetch their wheels here first (about 30 MB), then carry the folder:
#   pip download --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 -d .wheels \
#       mujoco==4.0.0 gymnasium==1.4.0 stable-baselines3==2.9.2 tyro
#   echo /.wheels/ >> .git/info/exclude
# and call the device tool with carry [".wheels"] and the command:  bash scripts/device_ppo.sh
set -euo pipefail
OUT="${OUT:-runs/device}"
BUDGET_MINUTES="${BUDGET_MINUTES:-7}"
NUM_ENVS="${NUM_ENVS:-2048}"
source "$(dirname "$0")/device_setup.sh"
python3 scripts/train_policy.py --env hopper_5_full --policy set --device cuda --threads 8 \
    --num-envs "$NUM_ENVS" --n-steps 32 --batch-size 16384 --n-epochs 5 --learning-rate 3e-4 \
    --steps 1000000000 --budget-minutes "$BUDGET_MINUTES" --save-every-minutes 1 \
    --eval-every 0 --eval-episodes 2 --checkpoint-every 0 --no-progress --run-dir "$OUT" --name gpu
