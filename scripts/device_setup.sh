#!/usr/bin/env bash
# Set-up shared by the GPU-machine scripts (device_ppo.sh, device_td3_paper.sh, device_benchmarks.sh): install the
# wheels copied along and equiworld, print the GPU, and define `sync_out`. Sourced, not run.
#
# Runs write to $RUNS (a scratch folder); `sync_out NAME FILE...` copies the named files of $RUNS/NAME to $OUT/NAME,
# because the machine may return only a few files from $OUT, and a run folder holds more (TensorBoard events,
# evaluation videos).
export MUJOCO_GL=disable PYTHONUNBUFFERED=1  # training renders nothing; the machine has no EGL libraries
OUT="${OUT:-runs/device}"
RUNS="${RUNS:-/tmp/equiworld_device_runs}"
mkdir -p "$OUT" "$RUNS"
python3 -m pip install -q --no-index --find-links .wheels mujoco gymnasium stable-baselines3 tyro 2>&1 | tail -2
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
python3 -c "import equiworld.agents, mujoco, torch; print('mujoco', mujoco.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader || true

sync_out() {
    local name="$1"
    shift
    mkdir -p "$OUT/$name"
    for f in "$@"; do
        if [ -f "$RUNS/$name/$f" ]; then cp "$RUNS/$name/$f" "$OUT/$name/"; fi
    done
}
