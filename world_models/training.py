"""Training loop of the world models (MNIST World 2D models and Block World 3D models): MSE on predicted frames
fed back autoregressively, Adam or AdamW, gradient clipping, a curriculum of predicted horizons, TensorBoard,
checkpoints and resume, and DistributedDataParallel when launched by ``torchrun``.

``scripts/train_world_model.py`` is a thin command line over :func:`train_world_model`; model names, building and
loading live in :mod:`.registry`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm.auto import tqdm

from .base import WorldModel
from .data import VideoShardDataset
from .registry import (
    CHECKPOINT_NAME,
    MODEL_FAMILIES,
    MODEL_NAMES_BY_WORLD,
    build_named_model,
    model_config_for_dataset,
    world_of_model_or_none,
)

__all__ = ["TrainSettings", "predict_horizon", "train_world_model"]

logger = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Settings of one world-model training run (the command line of ``scripts/train_world_model.py``)."""

    model: str = "flowm"
    """World model. MNIST World: flowm, no_velocity, no_self_motion, action_concat, convlstm or convgru (a ConvGRU
    at a quarter resolution that reaches past the largest move). Block World (--world block): flowm3d, memory3d
    (learned-memory baseline) or convlstm3d."""
    preset: Literal["small", "cpu", "paper"] = "small"
    """Model sizes: 'paper' (published: ~75K parameters in 2D, ~10M in 3D), 'cpu' (Block World only: its CPU
    recipe) or 'small' (CPU-friendly)."""
    positions: Literal["preset", "learned", "image_plane"] = "preset"
    """Block World token-map models: the start of the position embeddings ('preset': the preset's; 'learned': small
    random, as published; 'image_plane': where each patch and map cell appears in the image, our option)."""
    recurrent_init: Literal["default", "dirac"] = "default"
    """MNIST World FloWM and its ablations: initialisation of the recurrent kernel ('default' as published, or
    'dirac': the identity, our option)."""
    data: str | None = None
    """Training dataset directory written by scripts/make_dataset.py (default: data/<world>_small/train)."""
    val_data: str | None = "auto"
    """Validation dataset directory ('auto': data/<world>_small/validation; None: no validation)."""
    world: Literal["mnist", "block"] = "mnist"
    """Which world the data comes from: MNIST World (2D) or Block World (3D)."""
    context: int = 6
    """Observed frames per training clip."""
    predict: int = 6
    """Predicted frames per training clip (the loss is their MSE), fed back as inputs. With --curriculum, the
    horizon of the last stage."""
    curriculum: tuple[int, ...] = ()
    """Earlier predicted horizons, each trained for --curriculum-steps steps before the next, e.g.
    '--curriculum 20 50 --predict 150': 20 predicted frames, then 50, then 150 until --steps."""
    curriculum_steps: int = 1000
    """Steps of each --curriculum stage."""
    random_start: bool = True
    """Draw each clip's start uniformly in its sequence; --no-random-start takes every clip from frame 0 (as
    published: the context then holds the observer's coverage phase)."""
    teacher_forcing: float = 0.0
    """Probability, per clip and predicted step, of writing the true frame into the memory instead of the
    prediction (the published Block World recipe: 0.125); the loss still covers every predicted frame."""
    batch_size: int = 4
    """Clips per optimisation step (per process under torchrun)."""
    steps: int = 400
    """Optimisation steps in total (a resumed run continues up to this number)."""
    optimizer: Literal["adamw", "adam"] = "adamw"
    """Optimiser ('adam' with --lr 1e-4 is the published MNIST World recipe)."""
    lr: float = 1e-3
    """Learning rate (the paper used Adam at 1e-4 for far longer runs)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient norm clipping."""
    val_every: int = 100
    """Validate every this many steps (0: only after the last step)."""
    val_batches: int = 4
    """Batches per validation."""
    checkpoint_every: int = 100
    """Write the checkpoint every this many steps (0: only after the last step)."""
    seed: int = 0
    """Seed of the model initialisation and the data order."""
    out: str = "runs/world_model"
    """Output directory: checkpoint.pt, config.json, metrics.csv/json, TensorBoard logs."""
    resume: bool = True
    """Continue from out/checkpoint.pt if it exists."""
    num_workers: int = 0
    """DataLoader worker processes."""
    device: str = "auto"
    """'auto' (cuda if available), 'cpu' or 'cuda'."""
    threads: int = 0
    """torch CPU threads (0 keeps torch's default)."""
    progress: bool = True
    """Show a progress bar."""


def predict_horizon(settings: TrainSettings, step: int) -> int:
    """The predicted horizon trained at optimisation step ``step`` (0-based) under the curriculum."""
    stage = step // max(settings.curriculum_steps, 1)
    return settings.curriculum[stage] if stage < len(settings.curriculum) else settings.predict


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _every(step: int, period: int) -> bool:
    """Whether a periodic action (period 0: never) falls on ``step``."""
    return period > 0 and step % period == 0


def _loop(loader: DataLoader, sampler) -> Any:
    epoch = 0
    while True:
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        loader.dataset.set_epoch(epoch)
        yield from loader
        epoch += 1


def _rollout_loss(
    model, frames, actions, context, horizon: int | None = None, teacher_forcing: float = 0.0
) -> torch.Tensor:
    horizon = frames.shape[1] - context if horizon is None else horizon
    predictions = model(frames, actions, context, horizon, teacher_forcing)
    return torch.nn.functional.mse_loss(predictions, frames[:, context : context + horizon])


@torch.no_grad()
def _validate(model: WorldModel, loader: DataLoader, context: int, batches: int, device) -> float:
    model.eval()
    total, count = 0.0, 0
    for i, (frames, actions) in enumerate(loader):
        if i >= batches:
            break
        loss = _rollout_loss(model, frames.to(device), actions.to(device), context)
        total, count = total + float(loss) * len(frames), count + len(frames)
    model.train()
    return total / max(count, 1)


def _check_settings(settings: TrainSettings) -> None:
    """Refuse a model of another world and out-of-range options, naming the flag."""
    names = MODEL_NAMES_BY_WORLD[settings.world]
    if settings.model not in names:
        raise ValueError(
            f"unknown {settings.world} world model {settings.model!r}; choose one of {', '.join(names)}"
            + (" (or pass --world block)" if world_of_model_or_none(settings.model) == "block" else "")
        )
    defaults = {f.name: f.default for f in dataclasses.fields(TrainSettings)}
    for option in sorted({o for family in MODEL_FAMILIES.values() for o in family.training_options}):
        if getattr(settings, option) == defaults[option]:
            continue
        owners = [f.title for f in MODEL_FAMILIES.values() if option in f.training_options]
        if option not in MODEL_FAMILIES[settings.world].training_options:
            raise ValueError(
                f"--{option.replace('_', '-')} applies to the {' and '.join(owners)} models only"
            )
    if settings.recurrent_init != "default" and settings.model in ("convlstm", "convgru"):
        raise ValueError(
            "--recurrent-init applies to FloWM and its ablations, not the ConvLSTM or ConvGRU baselines"
        )
    if not 0.0 <= settings.teacher_forcing <= 1.0:
        raise ValueError(f"--teacher-forcing must be a probability in [0, 1], got {settings.teacher_forcing}")
    for horizon in (*settings.curriculum, settings.predict):
        if horizon < 1:
            raise ValueError(f"predicted horizons must be >= 1, got --predict / --curriculum {horizon}")
    for name in ("val_every", "checkpoint_every"):
        if getattr(settings, name) < 0:
            raise ValueError(
                f"--{name.replace('_', '-')} must be >= 0 (0: only at the end), got {getattr(settings, name)}"
            )
    if settings.curriculum and settings.curriculum_steps < 1:
        raise ValueError(f"--curriculum-steps must be >= 1, got {settings.curriculum_steps}")


@dataclass(frozen=True)
class _Processes:
    """This process's place in the run: rank, number of processes, device."""

    rank: int
    world: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _start_processes(settings: TrainSettings) -> _Processes:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); set the torch threads."""
    device = _device(settings.device)
    rank, world = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    return _Processes(rank, world, device)


def _build_model(settings: TrainSettings, data: str, device: torch.device) -> tuple[WorldModel, Any]:
    """The model named by the settings, sized for the dataset (preset, then the position and recurrent-init
    options), initialised from the settings' seed without touching the global random state."""
    config = model_config_for_dataset(settings.preset, data, settings.world)
    if settings.positions != "preset":
        config = dataclasses.replace(config, positions=settings.positions)
    if settings.recurrent_init != "default":
        config = dataclasses.replace(config, recurrent_init=settings.recurrent_init)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = build_named_model(settings.model, dataclasses.asdict(config)).to(device)
    return model, config


def _resume(
    path: Path,
    settings: TrainSettings,
    model: WorldModel,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> tuple[int, list[dict[str, Any]], float]:
    """Load a checkpoint into the model and optimiser; returns ``(step, history, wall-clock seconds)``."""
    checkpoint = torch.load(path, map_location=device, weights_only=False)
    if checkpoint["model_name"] != settings.model:
        raise ValueError(f"{str(path)!r} holds a {checkpoint['model_name']!r} model, not {settings.model!r}")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    logger.info("resumed %s at step %d", path, int(checkpoint["step"]))
    return (
        int(checkpoint["step"]),
        list(checkpoint.get("history", [])),
        float(checkpoint.get("wall_clock_s", 0.0)),
    )


def _loaders(
    settings: TrainSettings,
    data: str,
    val_data: str | None,
    procs: _Processes,
    generator: torch.Generator,
) -> tuple[DataLoader, Any, DataLoader | None]:
    """``(training loader, its sampler, validation loader or None)``: clips of context + the longest horizon;
    an endless seeded sampler (one process) or a distributed one; validation on rank 0 only."""
    longest = max((*settings.curriculum, settings.predict))
    train_set = VideoShardDataset(
        data, settings.context, longest, random_start=settings.random_start, seed=settings.seed
    )
    if procs.distributed:
        sampler = DistributedSampler(train_set, num_replicas=procs.world, rank=procs.rank, seed=settings.seed)
    else:
        sampler = RandomSampler(train_set, replacement=True, num_samples=1 << 30, generator=generator)
    loader = DataLoader(
        train_set, settings.batch_size, sampler=sampler, num_workers=settings.num_workers, drop_last=True
    )
    if len(loader) == 0:
        raise ValueError(
            f"{len(train_set)} training sequences give no full batch of {settings.batch_size} per process "
            f"({procs.world} processes); lower --batch-size or use more data"
        )
    val_loader = None
    if val_data and procs.rank == 0:
        val_set = VideoShardDataset(val_data, settings.context, longest, random_start=False)
        val_loader = DataLoader(val_set, settings.batch_size, shuffle=False)
    return loader, sampler, val_loader


def _save_checkpoint(out: Path, state: dict[str, Any]) -> None:
    """Write the checkpoint atomically, then the metrics history as CSV and JSON."""
    path = out / CHECKPOINT_NAME
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    history = state["history"]
    with open(out / "metrics.csv", "w", newline="") as handle:
        csv_writer = csv.DictWriter(handle, fieldnames=sorted({key for row in history for key in row}))
        csv_writer.writeheader()
        csv_writer.writerows(history)
    (out / "metrics.json").write_text(json.dumps(history, indent=1))


def _train_step(
    wrapped: torch.nn.Module,
    model: WorldModel,
    optimizer: torch.optim.Optimizer,
    frames: torch.Tensor,
    actions: torch.Tensor,
    settings: TrainSettings,
    horizon: int,
) -> tuple[float, float]:
    """One optimisation step on a batch; returns ``(loss, gradient norm before clipping)``."""
    loss = _rollout_loss(wrapped, frames, actions, settings.context, horizon, settings.teacher_forcing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
    optimizer.step()
    return float(loss.detach()), float(grad_norm)


def train_world_model(settings: TrainSettings) -> dict[str, Any]:
    """Train one world model; returns the final metrics. Runs distributed when ``WORLD_SIZE`` > 1.

    Rank 0 writes ``out/checkpoint.pt`` (model, optimiser, step, config), ``out/config.json``,
    ``out/metrics.csv`` / ``metrics.json`` and TensorBoard logs under ``out/tb``.
    """
    _check_settings(settings)
    data = settings.data or f"data/{settings.world}_small/train"
    val_data = f"data/{settings.world}_small/validation" if settings.val_data == "auto" else settings.val_data
    procs = _start_processes(settings)
    out = Path(settings.out)
    if procs.rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    model, config = _build_model(settings, data, procs.device)
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[settings.optimizer]
    optimizer = optimizer_class(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed)
    step, history, wall_clock = 0, [], 0.0
    if settings.resume and (out / CHECKPOINT_NAME).is_file():
        step, history, wall_clock = _resume(out / CHECKPOINT_NAME, settings, model, optimizer, procs.device)
        generator.manual_seed(settings.seed + step)
    wrapped = DistributedDataParallel(model) if procs.distributed else model
    loader, sampler, val_loader = _loaders(settings, data, val_data, procs, generator)

    writer = None
    if procs.rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"), purge_step=step or None)
        record = {"settings": dataclasses.asdict(settings), "model_config": dataclasses.asdict(config)}
        record["num_parameters"] = model.num_parameters()
        (out / "config.json").write_text(json.dumps(record, indent=2))

    bar = tqdm(
        total=settings.steps,
        initial=step,
        disable=not settings.progress or procs.rank != 0,
        desc=settings.model,
    )
    batches = _loop(loader, sampler if procs.distributed else None)
    start_time, start_step = time.perf_counter(), step
    model.train()
    while step < settings.steps:
        frames, actions = next(batches)
        horizon = predict_horizon(settings, step)
        loss, grad_norm = _train_step(
            wrapped, model, optimizer, frames.to(procs.device), actions.to(procs.device), settings, horizon
        )
        step += 1
        row: dict[str, Any] = {"step": step, "train_mse": loss, "grad_norm": grad_norm, "predict": horizon}
        if val_loader is not None and (_every(step, settings.val_every) or step == settings.steps):
            row["val_mse"] = _validate(
                model, val_loader, settings.context, settings.val_batches, procs.device
            )
        if procs.rank == 0:
            elapsed = time.perf_counter() - start_time
            row["seconds_per_step"] = elapsed / (step - start_step)
            row["wall_clock_s"] = wall_clock + elapsed
            history.append(row)
            for key, value in row.items():
                if key != "step" and math.isfinite(value):
                    writer.add_scalar(key, value, step)
            bar.set_postfix(mse=f"{loss:.4f}")
            if _every(step, settings.checkpoint_every) or step == settings.steps:
                _save_checkpoint(
                    out,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "step": step,
                        "model_name": settings.model,
                        "world": settings.world,
                        "config": dataclasses.asdict(config),
                        "history": history,
                        "wall_clock_s": row["wall_clock_s"],
                        "settings": dataclasses.asdict(settings),
                    },
                )
        bar.update(1)
    bar.close()
    if writer is not None:
        writer.close()
    if procs.distributed:
        # Drop the DDP reducer (it holds gloo work objects) while the group is alive: otherwise a rank can
        # abort at interpreter exit ("terminate called without an active exception").
        del wrapped
        dist.barrier()
        dist.destroy_process_group()
    return history[-1] if history else {}
