"""PPO's own training diagnostics of train_policy.py runs, read from their TensorBoard logs: per run, the mean of
each SB3 ``train/*`` scalar over each quarter of the run. The question it answers: how far each update moves the
policy (``approx_kl``, ``clip_fraction``) against how much the clipped surrogate gains for it
(``policy_gradient_loss``, negative when the update improves it), how well the value function fits
(``explained_variance``) and the exploration noise (``std``).

With ``--models``, also how far **one optimizer step** moves each saved policy: on 1,024 states of its own
(deterministic rollouts of 64 envs of its first training body), every actor parameter is moved by ``lr`` in the
direction that raises the log-probability of sampled actions weighted by random advantages (Adam's first step:
each parameter by exactly ``lr``), and the mean KL divergence from the old policy is measured, all policies at the
same noise (``--log-std``).

With ``--gradients``, also how much the policy gradients of independent rollouts of each saved model agree: the
model (its own noise) collects ``--rollouts`` rollouts of 64 steps x 64 envs of its first training body, each
gives PPO's policy gradient at the rollout policy (GAE advantages from the model's own value function, normalized
as PPO does), and the pairwise cosine similarities of these gradients (over the actor's parameters) are reported,
with the share of the gradients' energy in each of the largest parameter tensors. Gradients that agree (cosines
well above 0) are signal; cosines scattered around 0 with large magnitude mean that a few directions dominate each
rollout's gradient and change with the rollout.

    python scripts/ppo_diagnostics.py --runs runs/policies/hopper_5_full__set__0 runs/policies/hopper_5_full__mlp_heading__0
    python scripts/ppo_diagnostics.py --models runs/policies/hopper_5_full__set__0/model.zip
    python scripts/ppo_diagnostics.py --models runs/policies/hopper_5_full__set__0/model.zip --gradients

Prints one table per run (and a line per model) and, as its last line, a JSON object ``{run: {tag: [part
means]}}`` (and ``{model: {"step_kl": {lr: KL}}}``, with ``"gradient_cosine"`` and ``"gradient_share"`` under
``--gradients``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro

TAGS = (
    "train/approx_kl",
    "train/clip_fraction",
    "train/policy_gradient_loss",
    "train/explained_variance",
    "train/std",
)


@dataclass
class Args:
    runs: list[str] = field(default_factory=list)
    """Run folders of train_policy.py (each with its tb/ folder)."""
    tags: tuple[str, ...] = TAGS
    """TensorBoard scalars to summarise."""
    parts: int = 4
    """Summarise each scalar over this many equal parts of the run (by update)."""
    models: list[str] = field(default_factory=list)
    """Saved PPO models (.zip of train_policy.py or distill_policy.py) whose one-step KL to measure."""
    step_lrs: tuple[float, ...] = (1e-5, 3e-5, 1e-4, 3e-4)
    """Learning rates of the one-step KL."""
    log_std: float = -1.0
    """The exploration noise's log standard deviation every model is measured at."""
    seed: int = 0
    """Seed of the states, the sampled actions and the advantages."""
    gradients: bool = False
    """Also measure the agreement of the policy gradients of independent rollouts of each model."""
    rollouts: int = 6
    """Rollouts per model of --gradients."""
    rollout_steps: int = 64
    """Steps per env of each rollout of --gradients (64 envs)."""


def read_scalars(run: Path, tags: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The values of ``tags`` in the TensorBoard event files under ``run/tb`` (every leg of a resumed run, in step
    order; a step logged twice keeps the later file's value; absent tags left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((run / "tb").rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise ValueError(f"{run}: no TensorBoard events under {run / 'tb'}")
    by_step: dict[str, dict[int, float]] = {tag: {} for tag in tags}
    for path in files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in set(tags) & set(events.Tags()["scalars"]):
            by_step[tag].update({e.step: e.value for e in events.Scalars(tag)})
    return {tag: np.array([v for _, v in sorted(steps.items())]) for tag, steps in by_step.items() if steps}


def one_step_kl(
    path: str | Path, lrs: tuple[float, ...], log_std: float = -1.0, seed: int = 0
) -> dict[str, float]:
    """The mean KL divergence (old policy to new) that one sign step of size ``lr`` on every actor parameter makes, per
    ``lr`` (see the module docstring); the value function and the noise are not moved."""
    import torch

    from equiworld.agents import make_vec_env

    model, body = _model_and_body(path)
    policy = model.policy
    with torch.no_grad():
        policy.log_std.fill_(log_std)
    venv = make_vec_env(body, 64, seed=seed)
    obs, states = venv.reset(), []
    for _ in range(16):
        states.append(obs)
        obs, *_ = venv.step(model.predict(obs, deterministic=True)[0])
    venv.close()
    batch, _ = policy.obs_to_tensor({k: np.concatenate([s[k] for s in states]) for k in states[0]})
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        old = policy.get_distribution(batch).distribution
        actions = old.mean + old.stddev * torch.randn(old.mean.shape, generator=generator)
    advantages = torch.randn(len(actions), generator=generator)
    kl = {}
    for lr in lrs:
        moved = copy.deepcopy(policy)
        params = [p for n, p in moved.named_parameters() if "value" not in n and "log_std" not in n]
        loss = -(advantages * moved.get_distribution(batch).log_prob(actions)).mean()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                if g is not None:
                    p -= lr * torch.sign(g)
            new = moved.get_distribution(batch).distribution
            kl[f"{lr:g}"] = float(torch.distributions.kl_divergence(old, new).sum(-1).mean())
    return kl


def _model_and_body(path: str | Path, num_envs: int | None = None, seed: int = 0):
    """A saved PPO model and the first training body of its run (with ``num_envs``: the model is loaded onto a
    vector env of that many simulations of the body, returned third)."""
    from stable_baselines3 import PPO

    import equiworld.agents  # noqa: F401  (registers SETPolicy for PPO.load)
    from equiworld.agents.checkpoints import run_env
    from equiworld.envs.morphology import resolve_morphologies

    env = run_env(path)
    if env is None:
        raise ValueError(f"{path}: no config.json in its run folder to name the body")
    body = next(iter(resolve_morphologies(env)))
    if num_envs is None:
        return PPO.load(str(path), device="cpu"), body
    from equiworld.agents import make_vec_env

    venv = make_vec_env(body, num_envs, seed=seed)
    return PPO.load(str(path), env=venv, device="cpu"), body, venv


def gradient_agreement(
    path: str | Path, rollouts: int = 6, rollout_steps: int = 64, seed: int = 0, top: int = 5
) -> dict:
    """Pairwise cosines of the PPO policy gradients of independent rollouts of a saved model (see the module
    docstring): ``{"gradient_cosine": {"mean", "min", "max", "abs_mean"}, "gradient_share": {tensor: share}}``."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import configure

    if rollouts < 2:
        raise ValueError(f"--rollouts must be >= 2 to compare gradients, got {rollouts}")

    class _Collect(BaseCallback):
        def _on_step(self) -> bool:
            return True

    model, _, venv = _model_and_body(path, 64, seed)
    model.set_random_seed(seed)
    model.set_logger(configure(None, []))
    model._last_obs = venv.reset()
    model._last_episode_starts = np.ones(venv.num_envs, dtype=bool)
    callback = _Collect()
    callback.init_callback(model)
    named = [(n, p) for n, p in model.policy.named_parameters() if "value" not in n and "log_std" not in n]
    buffer = model.rollout_buffer_class(
        rollout_steps,
        model.observation_space,
        model.action_space,
        device=model.device,
        gamma=model.gamma,
        gae_lambda=model.gae_lambda,
        n_envs=venv.num_envs,
        **model.rollout_buffer_kwargs,
    )
    grads = []
    for _ in range(rollouts):
        model.collect_rollouts(venv, callback, buffer, n_rollout_steps=rollout_steps)
        data = next(buffer.get(batch_size=None))
        _, log_prob, _ = model.policy.evaluate_actions(data.observations, data.actions)
        advantages = (data.advantages - data.advantages.mean()) / (data.advantages.std() + 1e-8)
        loss = -(advantages * torch.exp(log_prob - data.old_log_prob)).mean()
        parts = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
        grads.append(
            [torch.zeros_like(p) if g is None else g.detach() for g, (_, p) in zip(parts, named, strict=True)]
        )
    venv.close()
    flat = torch.stack([torch.cat([g.flatten() for g in row]) for row in grads])
    cosines = [
        float(torch.nn.functional.cosine_similarity(flat[i], flat[j], dim=0))
        for i in range(rollouts)
        for j in range(i + 1, rollouts)
    ]
    energy = {n: float(sum(row[k].square().sum() for row in grads)) for k, (n, _) in enumerate(named)}
    total = sum(energy.values()) or 1.0
    largest = sorted(energy.items(), key=lambda item: -item[1])[:top]
    return {
        "gradient_cosine": {
            "mean": float(np.mean(cosines)),
            "min": float(np.min(cosines)),
            "max": float(np.max(cosines)),
            "abs_mean": float(np.mean(np.abs(cosines))),
        },
        "gradient_share": {n: e / total for n, e in largest},
    }


def main(args: Args) -> dict:
    if not args.runs and not args.models:
        raise ValueError("give run folders (--runs) or saved models (--models)")
    if args.parts < 1:
        raise ValueError(f"--parts must be >= 1, got {args.parts}")
    report = {}
    for run in map(Path, args.runs):
        scalars = read_scalars(run, args.tags)
        report[run.name] = {
            tag: [float(part.mean()) for part in np.array_split(values, args.parts) if len(part)]
            for tag, values in scalars.items()
        }
        print(f"{run.name} (mean per {len(next(iter(report[run.name].values()), []))} parts of the run)")
        for tag, means in report[run.name].items():
            print(f"  {tag:30s} " + "  ".join(f"{m:9.4g}" for m in means))
    for path in args.models:
        report[str(path)] = {"step_kl": one_step_kl(path, args.step_lrs, args.log_std, args.seed)}
        print(
            f"{path}: one-step KL "
            + "  ".join(f"lr {k}: {v:.4g}" for k, v in report[str(path)]["step_kl"].items())
        )
        if args.gradients:
            agreement = gradient_agreement(path, args.rollouts, args.rollout_steps, args.seed)
            report[str(path)].update(agreement)
            cos = agreement["gradient_cosine"]
            print(
                f"  gradient cosines between rollouts: mean {cos['mean']:.3f}, |cos| mean {cos['abs_mean']:.3f}, "
                f"range {cos['min']:.3f} to {cos['max']:.3f}; largest shares "
                + ", ".join(f"{n} {v:.2f}" for n, v in agreement["gradient_share"].items())
            )
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
