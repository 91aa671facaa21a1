"""Train a policy (SET, an ablation or a baseline) on one morphology or a padded suite, with PPO over batched
simulation (``ppo``, the default: the CPU recipe) or TD3 (``td3``, as published).

The command line is generated from :class:`equiworld.agents.TrainConfig`: the run, env and policy options come first,
then the learner as a subcommand with its own options (``train_policy.py ppo --help`` lists what PPO reads; a flag of
the other learner is an error). Writes ``<run_dir>/<name>/``: ``config.json`` (the resolved configuration),
``metrics.csv``/``metrics.json`` (evaluation returns, lengths and progress on the training morphologies, environment
steps per second, wall-clock), TensorBoard logs (``tb/``), checkpoints (``checkpoints/``) and the final ``model.zip``.
Resume with ``--resume runs/<name>/checkpoints/<file>.zip`` (TD3's replay buffer, PPO's reward-normalization
statistics are saved beside each checkpoint).

    python scripts/train_policy.py --env hopper_5_full --policy set   # the CPU recipe: PPO, 64 envs, 60 minutes
    # SET that hops on past 500 steps (the README's shaped hopper recipe: 5.6 m, 587 steps over 3 seeds; 2 hours)
    python scripts/train_policy.py --env hopper_5_full --policy set_one_body --alive-bonus 3 \
        --progress-speed-cap 1.5 --budget-minutes 120 ppo --critic mlp_heading --gamma 0.995
    python scripts/train_policy.py --env hopper_5_full --policy set --steps 20000 td3
    # the published SET and TD3 recipe (GPU, days)
    python scripts/train_policy.py --env hopper_5_full --policy set_paper --steps 2500000 --eval-every 25000 \
        --eval-episodes 10 --device cuda td3 --critic-target per_limb
    # ... and on a suite, with the published multi-morphology schedule
    python scripts/train_policy.py --env hopper++ --policy set_paper --steps 2500000 --device cuda \
        td3 --critic-target per_limb --schedule published
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

from pathlib import Path

import tyro

from equiworld.agents import TrainConfig, train_policy
from equiworld.agents.config import CLI_MARKERS

if __name__ == "__main__":
    try:
        config = tyro.cli(TrainConfig, description=__doc__, config=CLI_MARKERS)
        run = train_policy(config)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    print((Path(run) / "summary.json").read_text())
