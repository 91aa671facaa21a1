#!/usr/bin/env bash
# Set-up shared by the GPU-machine scripts (device_ppo.sh, device_td3_paper.sh): install the carried wheels and
# equiworld, print the GPU. Sourced, not run.
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --find-links .wheels mujoco gymnasium stable-baselines3 tyro 2>&1 | tail -2
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader || true
