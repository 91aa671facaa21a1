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

    python scripts/ppo_diagnostics.py --runs runs/policies/hopper_5_full__set__0 runs/policies/hopper_5_full__mlp_heading__0
    python scripts/ppo_diagnostics.py --models runs/policies/hopper_5_full__set__0/model.zip

Prints one table per run (and a line per model) and, as its last line, a JSON object ``{run: {tag: [part
means]}}`` (and ``{model: {"step_kl": {lr: KL}}}``).
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
    from stable_baselines3 import PPO

    import equiworld.agents  # noqa: F401  (registers SETPolicy for PPO.load)
    from equiworld.agents.evaluation import run_folder
    from equiworld.envs.morphology import make_vec_env, resolve_morphologies

    config_path = run_folder(Path(path)) / "config.json"
    if not config_path.exists():
        raise ValueError(f"{path}: no config.json in its run folder to name the body")
    body = next(iter(resolve_morphologies(json.loads(config_path.read_text())["env"])))
    model = PPO.load(str(path), device="cpu")
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
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
