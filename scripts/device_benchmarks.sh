#!/usr/bin/env bash
# Everything this project measures on a GPU machine, in one run of about 8 minutes:
# PPO + SET at GPU scale (device_ppo.sh), the published TD3 recipe's update rate (device_td3_paper.sh), and a
# training step of FloWM at the paper preset (bench_world_models.py). Copy the .wheels folder along (see device_ppo.sh), then:
#   bash scripts/device_benchmarks.sh
# Each part runs even if an earlier one failed; the output log is copied to $OUT/benchmarks.log as it goes.
OUT="${OUT:-runs/device}"
mkdir -p "$OUT"
exec > >(tee "$OUT/benchmarks.log") 2>&1
here="$(dirname "$0")"
timeout 370 bash "$here/device_ppo.sh" || echo "device_ppo.sh exited with $?"
timeout 150 bash "$here/device_td3_paper.sh" || echo "device_td3_paper.sh exited with $?"
timeout 45 python3 "$here/bench_world_models.py" --preset paper --device cuda --batch-size 32 --repeats 3 ||
    echo "bench_world_models.py exited with $?"
