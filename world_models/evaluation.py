"""Long-horizon evaluation of world models: per-step MSE / PSNR / SSIM, error-vs-horizon plots, and
side-by-side videos of ground truth and predictions.

PSNR and SSIM come from ``torchmetrics`` (data range 1); MSE is the mean over pixels of each frame. Every
metric is computed per frame and averaged over sequences, giving one curve per model over the horizon.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchmetrics.functional import peak_signal_noise_ratio, structural_similarity_index_measure
from tqdm.auto import tqdm

from .flowm2d import WorldModel2D

__all__ = [
    "EVALUATION_DEFAULTS",
    "REFERENCE_PREDICTORS",
    "ReferencePredictor",
    "frame_metrics",
    "mean_training_frame",
    "plot_horizon_metrics",
    "rollout_metrics",
    "write_side_by_side_video",
]

METRICS = ("mse", "psnr", "ssim")

EVALUATION_DEFAULTS: dict[str, dict] = {
    "mnist": {
        "data": "data/mnist_cpu/validation",
        "context": 20,
        "horizon": 150,
        "report_steps": (1, 20, 50, 150),
    },
    "block": {
        "data": "data/block_small/validation_long",
        "context": 70,
        "horizon": 210,
        "report_steps": (70, 210),
    },
}
"""Per world: the default validation data, context, horizon and reported steps. MNIST World: 20 context frames
(the observer's coverage phase of the ``cpu`` data; the published protocol uses 50) and 150 predicted; Block
World: the published 70 context, 70 and 210 predicted."""

REFERENCE_PREDICTORS = ("mean_frame", "copy_last")
"""Trivial predictors every model should beat: the mean training frame, and the last context frame repeated."""


def mean_training_frame(dataset: Dataset, max_sequences: int = 256) -> torch.Tensor:
    """The per-pixel mean ``(C, H, W)`` of every frame of the first ``max_sequences`` sequences of ``dataset``."""
    total, count = None, 0
    for i in range(min(len(dataset), max_sequences)):
        frames = dataset[i][0]
        total = frames.sum(0) if total is None else total + frames.sum(0)
        count += len(frames)
    if total is None:
        raise ValueError("the dataset yielded no sequences")
    return total / count


class ReferencePredictor(torch.nn.Module):
    """A trivial predictor by name, with the world models' ``rollout`` interface so that it is evaluated like a
    model (see :data:`REFERENCE_PREDICTORS`; ``mean_frame`` needs the mean training frame)."""

    def __init__(self, name: str, mean_frame: torch.Tensor | None = None) -> None:
        super().__init__()
        if name not in REFERENCE_PREDICTORS:
            raise ValueError(f"unknown reference {name!r}; choose one of {', '.join(REFERENCE_PREDICTORS)}")
        if name == "mean_frame" and mean_frame is None:
            raise ValueError("the mean_frame reference needs the mean training frame")
        self.name, self.mean_frame = name, mean_frame

    def rollout(self, frames, actions, context: int, horizon: int | None = None) -> torch.Tensor:
        horizon = actions.shape[1] - context if horizon is None else horizon
        if self.name == "copy_last":
            last = frames[:, context - 1 : context]
            return last.expand(-1, horizon, *last.shape[2:])
        mean = self.mean_frame.to(frames)
        return mean.expand(frames.shape[0], horizon, *mean.shape)


def frame_metrics(predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame metrics of ``(B, T, C, H, W)`` tensors in [0, 1]: each entry is ``(B, T)``."""
    if predictions.shape != targets.shape or predictions.dim() != 5:
        raise ValueError(
            f"predictions and targets must both be (B, T, C, H, W); got {tuple(predictions.shape)} "
            f"and {tuple(targets.shape)}"
        )
    b, t = predictions.shape[:2]
    p, y = predictions.flatten(0, 1).clamp(0, 1).double(), targets.flatten(0, 1).double()
    mse = (p - y).square().mean(dim=(1, 2, 3))
    psnr = peak_signal_noise_ratio(p, y, data_range=1.0, reduction="none", dim=(1, 2, 3))
    # SSIM's Gaussian filter unfolds each frame on CPU: chunks keep the memory small for long, large rollouts
    ssim = torch.cat(
        [
            structural_similarity_index_measure(pc, yc, data_range=1.0, reduction="none")
            for pc, yc in zip(p.split(64), y.split(64), strict=True)
        ]
    )
    return {"mse": mse.reshape(b, t), "psnr": psnr.reshape(b, t), "ssim": ssim.reshape(b, t)}


@torch.no_grad()
def rollout_metrics(
    model: WorldModel2D,
    dataset: Dataset,
    context: int,
    horizon: int,
    batch_size: int = 16,
    max_sequences: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, list[float]]:
    """Roll ``model`` out over a dataset and average each metric per predicted step.

    Args:
        model: a world model.
        dataset: yields ``(frames, actions)`` clips of at least ``context + horizon`` frames.
        context: observed frames.
        horizon: predicted frames.
        batch_size: sequences per batch.
        max_sequences: evaluate at most this many sequences.
        device: where to run.
        progress: show a progress bar.

    Returns:
        ``{"mse": [...], "psnr": [...], "ssim": [...]}`` with ``horizon`` entries each (step 1 first), and
        ``"sequences"``: the number of sequences averaged.
    """
    model = model.to(device).eval()
    sums = {name: torch.zeros(horizon, dtype=torch.float64) for name in METRICS}
    count = 0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for frames, actions in tqdm(loader, disable=not progress, desc="evaluate"):
        if max_sequences is not None and count >= max_sequences:
            break
        if frames.shape[1] < context + horizon:
            raise ValueError(
                f"clips have {frames.shape[1]} frames, need context + horizon = {context + horizon}"
            )
        frames, actions = (
            frames[:, : context + horizon].to(device),
            actions[:, : context + horizon].to(device),
        )
        predictions = model.rollout(frames, actions, context, horizon)
        metrics = frame_metrics(predictions.cpu(), frames[:, context:].cpu())
        for name in METRICS:
            sums[name] += metrics[name].sum(0)
        count += len(frames)
    if count == 0:
        raise ValueError("the dataset yielded no sequences")
    result: dict[str, list[float]] = {name: (sums[name] / count).tolist() for name in METRICS}
    result["sequences"] = count
    return result


def plot_horizon_metrics(
    results: dict[str, dict[str, list[float]]], path: str | os.PathLike, title: str = ""
) -> Path:
    """One PNG with MSE, PSNR and SSIM vs predicted step, a line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, metrics in results.items():
        steps = np.arange(1, len(metrics["mse"]) + 1)
        style = {"linestyle": "--", "alpha": 0.7} if name in REFERENCE_PREDICTORS else {}
        for axis, metric in zip(axes, METRICS, strict=True):
            axis.plot(steps, metrics[metric], label=name, **style)
    for axis, metric in zip(axes, ("MSE (lower is better)", "PSNR dB", "SSIM"), strict=True):
        axis.set_xlabel("predicted step")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: never over a curve
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_side_by_side_video(
    truth: torch.Tensor,
    predictions: dict[str, torch.Tensor],
    path: str | os.PathLike,
    fps: int = 10,
    scale: int = 4,
) -> Path:
    """Write ground truth and each model's predictions side by side, labelled, as a GIF or MP4.

    Args:
        truth: ``(T, C, H, W)`` in [0, 1].
        predictions: name -> ``(T, C, H, W)``.
        path: ``.gif`` or ``.mp4``.
        fps: frames per second.
        scale: integer upscaling of each panel.
    """
    import imageio.v2 as imageio
    from PIL import Image, ImageDraw

    panels = {"ground truth": truth, **predictions}
    frames = []
    for t in range(truth.shape[0]):
        tiles = []
        for name, video in panels.items():
            image = (video[t].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            if image.shape[-1] == 1:
                image = np.repeat(image, 3, axis=-1)
            image = np.kron(image, np.ones((scale, scale, 1), dtype=np.uint8))
            canvas = Image.new("RGB", (image.shape[1], image.shape[0] + 14), (255, 255, 255))
            canvas.paste(Image.fromarray(image), (0, 14))
            ImageDraw.Draw(canvas).text((2, 1), f"{name} t+{t + 1}", fill=(0, 0, 0))
            tiles.append(np.asarray(canvas))
            tiles.append(np.full((tiles[-1].shape[0], 4, 3), 255, np.uint8))
        frames.append(np.concatenate(tiles[:-1], axis=1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        imageio.mimsave(path, frames, duration=1000 / fps, loop=0)
    else:
        imageio.mimsave(path, frames, fps=fps, macro_block_size=1)
    return path
