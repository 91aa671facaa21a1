"""Watch a shipped model: a policy walks one episode (video), a world model predicts a generated validation sequence
(ground truth and prediction side by side).

    python -m equiworld.play --list
    python -m equiworld.play hopper_5_full/set_shaped --video hopper.mp4
    python -m equiworld.play walker++/set_any_body --env walker_6_right_foot --target-direction 1.57
    python -m equiworld.play mnist_world/flowm_dirac --video flowm.gif
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering, before MuJoCo's renderer is imported
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import dataclasses
import json
from pathlib import Path

import tyro

from equiworld import pretrained


@dataclasses.dataclass
class Args:
    name: tyro.conf.Positional[str | None] = None
    """A shipped model (``--list`` names them)."""
    list: bool = False
    """Print the shipped models as a markdown table and exit."""
    video: str | None = None
    """Output MP4 or GIF (default: ``<name>.mp4`` for a policy, ``<name>.gif`` for a world model, in
    ``runs/play/``)."""
    env: str | None = None
    """Policy: the body to walk (default: the card's); any body that fits the policy (held-out bodies of a suite)."""
    yaw: float | None = None
    """Policy: start heading in radians (default: the card's)."""
    target_direction: float | None = None
    """Policy: target direction in radians (default: the card's)."""
    seed: int | None = None
    """Policy: reset seed (default: the card's)."""
    max_steps: int = 1000
    size: int = 320
    """Policy: video frame size in pixels."""
    frames: int | None = None
    """World model: predicted frames shown (default: the card's horizon)."""


def table() -> str:
    """The shipped models as a markdown table, from their cards."""
    lines = [
        "| name | kind | what it is | trained | recorded check | size |",
        "|---|---|---|---|---|---|",
    ]
    for name in pretrained.list():
        card = pretrained.card(name)
        budget = card.budget
        minutes = f"{budget['wall_clock_s'] / 60:.0f} min" if budget.get("wall_clock_s") else "–"
        if card.kind == "policy":
            amount = f"{budget['env_steps'] / 1e6:.2f}M env steps, {minutes}"
            e = card.episode
            check = f"{e['progress']:.2f} m toward the target on `{e['env']}` in {e['length']} steps"
        else:
            amount = f"{budget['train_steps']:,} steps, {minutes}"
            e = card.episode
            check = ", ".join(f"MSE@{s} {m:.4f}" for s, m in zip(e["steps"], e["mse"], strict=True))
        size = f"{card.path.stat().st_size / 1e6:.1f} MB"
        lines.append(
            f"| `{name}` | {card.kind.replace('_', ' ')} | {card.description} | {amount} | {check} | {size} |"
        )
    return "\n".join(lines)


def play_policy(card: pretrained.ModelCard, args: Args, video: Path) -> dict:
    from equiworld.agents.evaluation import rollout, save_video

    model = pretrained.load(card.name)
    e = card.episode
    env_name = args.env or e["env"]
    env = pretrained.policy_env(model, env_name, render_mode="rgb_array", width=args.size, height=args.size)
    yaw = e["yaw"] if args.yaw is None else args.yaw
    target = e["target_direction"] if args.target_direction is None else args.target_direction
    seed = e["seed"] if args.seed is None else args.seed
    result = rollout(model, env, yaw, target, seed=seed, max_steps=args.max_steps, render=True)
    skip = max(1, round(env.unwrapped.metadata["render_fps"] / 30))
    env.close()
    save_video(video, result.frames[::skip], fps=30)
    return {
        "env": env_name,
        "progress_m": round(result.progress, 3),
        "length": result.length,
        "end": result.end,
    }


def play_world_model(card: pretrained.ModelCard, args: Args, video: Path) -> dict:
    import torch

    from equiworld.world_models.evaluation import write_side_by_side_video

    model = pretrained.load(card.name)
    e = card.episode
    horizon = args.frames or e["horizon"]
    frames, actions = pretrained.validation_sequences(
        e["world"], e["preset"], 1, env_kwargs=e.get("env_kwargs")
    )[0]
    with torch.no_grad():
        prediction = model.rollout(frames[None], actions[None], e["context"], horizon)[0].clamp(0, 1)
    truth = frames[e["context"] : e["context"] + horizon]
    write_side_by_side_video(
        truth, {card.name.split("/")[-1]: prediction}, video, scale=4 if e["world"] == "mnist" else 3
    )
    mse = ((prediction - truth) ** 2).mean(dim=(1, 2, 3))
    return {
        "world": e["world"],
        "context": e["context"],
        "frames": horizon,
        "mse_last": round(float(mse[-1]), 4),
    }


def main(args: Args) -> dict | None:
    if args.list:
        print(table())
        return None
    if args.name is None:
        raise SystemExit(f"name a model (shipped: {', '.join(pretrained.list())}) or pass --list")
    try:
        card = pretrained.card(args.name)
        suffix = ".mp4" if card.kind == "policy" else ".gif"
        video = Path(args.video or Path("runs/play") / (args.name.replace("/", "__") + suffix))
        video.parent.mkdir(parents=True, exist_ok=True)
        summary = (play_policy if card.kind == "policy" else play_world_model)(card, args, video)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    summary = {"name": args.name, **summary, "video": str(video)}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
