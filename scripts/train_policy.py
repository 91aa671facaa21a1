"""Train a policy (SET, an ablation or a baseline) on one morphology or a padded suite, with PPO over batched
simulation (the default: the CPU recipe) or TD3 (as published).

Writes ``<run_dir>/<name>/``: ``config.json``, ``metrics.csv``/``metrics.json`` (evaluation returns, lengths and
progress on the training morphologies, environment steps per second, wall-clock), TensorBoard logs (``tb/``),
checkpoints (``checkpoints/``) and the final ``model.zip``. Resume with ``--resume runs/<name>/checkpoints/<file>.zip``
(TD3's replay buffer, PPO's reward-normalization statistics are saved beside each checkpoint). The run itself is
``equiworld.agents.train_policy(PolicyTrainSettings(...))``; this script is its command line.

    python scripts/train_policy.py --env hopper_5_full --policy set   # the CPU recipe: PPO, 64 envs, 60 minutes
    # SET that hops on past 500 steps (the README's shaped hopper recipe: 5.6 m, 587 steps over 3 seeds; 2 hours)
    python scripts/train_policy.py --env hopper_5_full --policy set_one_body --critic mlp_heading \
        --alive-bonus 3 --progress-speed-cap 1.5 --gamma 0.995 --budget-minutes 120
    python scripts/train_policy.py --algo td3 --env hopper_5_full --policy set --steps 20000
    # the published SET and TD3 recipe (GPU, days; see the README "SET as published")
    python scripts/train_policy.py --algo td3 --env hopper_5_full --policy set_paper \
        --critic-target per_limb --steps 2500000 --eval-every 25000 --eval-episodes 10 --device cuda
    # ... and on a suite, with the published multi-morphology schedule
    python scripts/train_policy.py --algo td3 --env hopper++ --policy set_paper \
        --critic-target per_limb --schedule published --steps 2500000 --device cuda
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

from pathlib import Path

import tyro

from equiworld.agents.training import PolicyTrainSettings, train_policy

if __name__ == "__main__":
    try:
        run = train_policy(tyro.cli(PolicyTrainSettings, description=__doc__))
    except ValueError as error:
        raise SystemExit(str(error)) from error
    print((Path(run) / "summary.json").read_text())
