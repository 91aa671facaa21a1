"""Where a policy run's files are and how to load them: the run folder of a checkpoint, the env it trained on, the
model (PPO or TD3, as the run's ``config.json`` says) and its weights as a new run's start."""

from __future__ import annotations

from pathlib import Path

from stable_baselines3 import PPO, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

from .config import run_folder, run_identity
from .ppo import register_ppo_policy_aliases
from .sb3 import register_td3_policy_aliases

__all__ = ["init_policy_weights", "load_model", "run_env", "run_folder"]


def run_env(checkpoint: str | Path) -> str | None:
    """The env (morphology, env ID or suite) the run that wrote ``checkpoint`` trained on, from its ``config.json``;
    ``None`` if the run folder has none."""
    identity = run_identity(run_folder(checkpoint))
    return None if identity is None else identity["env"]


def load_model(checkpoint: str | Path, device: str = "cpu") -> BaseAlgorithm:
    """Load a policy written by ``train_policy.py`` or ``distill_policy.py``: PPO or TD3, as its run's
    ``config.json`` says (PPO if absent; a DAgger student is a PPO model).

    Raises:
        ValueError: If the config names an unknown learner.
    """
    register_ppo_policy_aliases()
    register_td3_policy_aliases()
    identity = run_identity(run_folder(checkpoint))
    algo = "ppo" if identity is None else identity["algo"]
    learners = {"ppo": PPO, "td3": TD3, "dagger": PPO}
    if algo not in learners:
        raise ValueError(f"{run_folder(checkpoint)}: unknown algo {algo!r}; valid: {', '.join(learners)}")
    return learners[algo].load(checkpoint, device=device)


def init_policy_weights(model: PPO, path: str | Path) -> None:
    """Copy the policy weights of the PPO model at ``path`` (same policy and sizes) into ``model``, all but the
    exploration noise's log standard deviations, which keep ``model``'s initial value."""
    weights = PPO.load(path, device=model.device).policy.state_dict()
    kept = {k: v for k, v in model.policy.state_dict().items() if "log_std" in k}
    model.policy.load_state_dict({**weights, **kept})
