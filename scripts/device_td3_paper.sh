#!/usr/bin/env bash
# The published SET (paper preset) with the published TD3 recipe on a GPU
# machine (never needed otherwise): TD3 updates/s at batch 256 on hopper_5_full, to set against the CPU's
# (docs/policies/bench_presets.json: 0.29 updates/s on one CPU thread).
#
# One env, one update per transition (as published), per-limb critic target; the warm-up is cut to 1,000 steps so
# that most of the budget is updates. The run stops itself after BUDGET_MINUTES (default 1.5), writing a row of
# throughput.csv (env steps/s = TD3 updates/s after the warm-up) every 15 s; it and config.json end in
# $OUT/td3_paper/. Set-up as in scripts/device_ppo.sh (copy the .wheels folder along), then:
#   bash scripts/device_td3_paper.sh
set -euo pipefail
BUDGET_MINUTES="${BUDGET_MINUTES:-1.5}"
source "$(dirname "$0")/device_setup.sh"
python3 scripts/train_policy.py --env hopper_5_full --policy set_paper --device "${DEVICE:-cuda}" --threads 4 \
    --steps 1000000 --budget-minutes "$BUDGET_MINUTES" --save-every-minutes 0.25 --eval-every 0 --eval-episodes 2 \
    --eval-max-steps 200 --checkpoint-every 0 --no-progress --run-dir "$RUNS" --name td3_paper \
    td3 --critic-target per_limb --learning-starts 1000
sync_out td3_paper throughput.csv config.json
