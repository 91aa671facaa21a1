"""Ship a trained model with the package: copy it into ``pretrained/models/<name>/`` with its model card.

A policy (``--kind policy``, a ``model.zip`` of ``train_policy.py`` or ``distill_policy.py``) is saved without its
optimizer state (a fresh optimizer: the file holds the weights only), with its run's ``config.json`` beside it (so the
folder serves as a run folder, e.g. a teacher of ``distill_policy.py``); a world model (``--kind world_model``, a run
folder of ``train_world_model.py``) keeps its weights and configuration, not its optimizer or history. The card gets
the command, the run's configuration (paths relative to the repository), the budget, the model's rows of the
results file (a policy's: same policy, seed and environment steps; a world model's: same model, seed and training
steps) and one recorded check, measured now:

    python scripts/export_pretrained.py --source runs/ppo/hopper_5_full__set_one_body__3/model.zip \
        --name hopper_5_full/set_shaped --results docs/policies/results.json --command "python scripts/train_policy.py ..."
    python scripts/export_pretrained.py --kind world_model --source runs/wm_cpu/flowm_dirac__s0 \
        --name mnist_world/flowm_dirac --results docs/world_model/results.json --command "..."
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Literal

import torch
import tyro

from equiworld import pretrained

from results_file import read_rows

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Args:
    source: str
    """A policy's ``model.zip``, or a world model's run folder (or its ``checkpoint.pt``)."""
    name: str
    """``<env or world>/<model>``: the folder under ``pretrained/models/``."""
    command: str
    """The command that trained it (as the docs give it)."""
    description: str = ""
    """One sentence for the card."""
    kind: Literal["policy", "world_model"] = "policy"
    results: str | None = None
    """Results file whose matching rows go into the card."""
    env: str | None = None
    """Policy: the body of the recorded episode (default: the run's env, or the suite's largest training body)."""
    cell: tuple[float, float] = (-3.141592653589793, -2.356194490192345)
    """Policy: start heading and target direction of the recorded episode (the first cell of the 4 x 4 grid)."""
    seed: int = 0
    """Policy: reset seed of the recorded episode."""
    max_steps: int = 1000
    context: int | None = None
    """World model: context frames of the check (default: the world's evaluation protocol)."""
    horizon: int | None = None
    """World model: predicted frames of the check (default: the world's evaluation protocol)."""
    num_sequences: int = 4
    """World model: generated validation sequences of the check."""
    data_preset: str = "cpu"
    """World model: the dataset preset whose validation sequences the check generates."""
    static: bool = False
    """World model: the check's sequences have still objects (the model was trained on such data)."""


def relative_paths(value: Any) -> Any:
    """``value`` with every absolute path under the repository made relative; other absolute paths dropped."""
    if isinstance(value, dict):
        return {k: relative_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relative_paths(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        path = Path(value)
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else None
    return value


def export_policy(args: Args, folder: Path) -> dict[str, Any]:
    from equiworld.agents.checkpoints import load_model, run_folder
    from equiworld.envs.morphology import get_morphology, get_suite

    model = load_model(args.source)
    policy = model.policy
    lr = policy.optimizer.param_groups[0]["lr"]
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=lr, **policy.optimizer_kwargs)
    model.save(folder / "model.zip")
    config_file = run_folder(args.source) / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    env = config.get("env", {}).get("env") if isinstance(config.get("env"), dict) else config.get("env")
    policy_name = (
        config.get("policy", {}).get("policy")
        if isinstance(config.get("policy"), dict)
        else config.get("policy")
    )
    seed = config.get("run", {}).get("seed")
    steps = int(model.num_timesteps)
    rows = [
        r
        for r in (read_rows(args.results) if args.results else [])
        if r.get("policy") == policy_name and r.get("seed") == seed and r.get("env_steps") == steps
    ]
    body = args.env
    if body is None:
        try:
            body = max(get_suite(env).train, key=lambda m: get_morphology(m).n_limbs)
        except (ValueError, KeyError):
            body = env
    episode = pretrained.record_policy_episode(
        model, body, *args.cell, seed=args.seed, max_steps=args.max_steps
    )
    budget = {"env_steps": steps, "wall_clock_s": rows[0]["wall_clock_s"] if rows else None}
    return {
        "kind": "policy",
        "file": "model.zip",
        "config": config,
        "budget": budget,
        "results": rows,
        "episode": episode,
    }


def export_world_model(args: Args, folder: Path) -> dict[str, Any]:
    from equiworld.world_models.registry import load_world_model

    model, checkpoint = load_world_model(args.source)
    keep = ("model", "model_name", "world", "config", "step", "wall_clock_s", "settings")
    torch.save({k: checkpoint[k] for k in keep if k in checkpoint}, folder / "model.pt")
    settings = checkpoint.get("settings", {})
    world, name, seed, step = (
        checkpoint["world"],
        checkpoint["model_name"],
        settings.get("seed"),
        checkpoint["step"],
    )
    rows = [
        r
        for r in (read_rows(args.results) if args.results else [])
        if r.get("seed") == seed
        and r.get("train_steps") == step
        and r.get("model", "").startswith(name)
        and abs(float(r.get("wall_clock_s", -1)) - float(checkpoint.get("wall_clock_s", 0))) < 1.0
    ]
    preset = args.data_preset
    protocol = {"mnist": (20, 150, [1, 20, 50, 150]), "block": (70, 210, [1, 70, 210])}[world]
    context = args.context or protocol[0]
    horizon = args.horizon or protocol[1]
    steps = [s for s in protocol[2] if s <= horizon]
    env_kwargs = (
        {"mnist": {"velocity_range": 0}, "block": {"static_blocks": True}}[world] if args.static else {}
    )
    episode = pretrained.record_world_model_check(
        model, world, preset, context, horizon, steps, args.num_sequences, env_kwargs
    )
    budget = {"train_steps": int(step), "wall_clock_s": float(checkpoint.get("wall_clock_s", 0.0))}
    config = {"model": name, "settings": settings, "config": checkpoint["config"]}
    return {
        "kind": "world_model",
        "file": "model.pt",
        "config": config,
        "budget": budget,
        "results": rows,
        "episode": episode,
    }


def main(args: Args) -> Path:
    folder = pretrained.MODELS_DIR / args.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    fields = export_policy(args, folder) if args.kind == "policy" else export_world_model(args, folder)
    card = pretrained.ModelCard(
        name=args.name,
        description=args.description,
        command=args.command,
        sha256=pretrained.file_sha256(folder / fields["file"]),
        **{
            **fields,
            "config": relative_paths(fields["config"]),
            "results": relative_paths(fields["results"]),
        },
    )
    (folder / pretrained.CARD_NAME).write_text(json.dumps(card.to_json(), indent=1) + "\n")
    if (
        card.kind == "policy" and card.config
    ):  # its folder is then a run folder: a teacher of distill_policy.py
        (folder / "config.json").write_text(json.dumps(card.config, indent=1) + "\n")
    print(json.dumps({"name": args.name, "bytes": card.path.stat().st_size, "episode": card.episode}))
    return folder


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
