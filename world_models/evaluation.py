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
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from tqdm.auto import tqdm

from .base import WorldModel
from .registry import MODEL_FAMILIES

__all__ = [
    "EVALUATION_DEFAULTS",
    "PSNR_CAP",
    "RECALL_METRICS",
    "REFERENCE_PREDICTORS",
    "ReferencePredictor",
    "ReplayPredictor",
    "colour_pixels",
    "frame_metrics",
    "mean_training_frame",
    "plot_horizon_metrics",
    "replay_ground_truth",
    "revisit_masks_for",
    "rollout_metrics",
    "write_side_by_side_video",
]

METRICS = ("mse", "psnr", "ssim")
PSNR_CAP = 100.0
"""PSNR of a frame predicted exactly (dB; the value for an MSE of 1e-10)."""
RECALL_METRICS = ("recall_mse", "recall_ssim", "recall_fraction")
"""Metrics on the pixels of views seen before (Block World with ground truth; :func:`revisit_masks_for`)."""

EVALUATION_DEFAULTS: dict[str, dict] = {world: family.evaluation for world, family in MODEL_FAMILIES.items()}
"""Per world: the default validation data, context, horizon and reported steps (:attr:`ModelFamily.evaluation`)."""

REFERENCE_PREDICTORS = ("mean_frame", "copy_last", "action_shift")
"""Predictors without memory of the world that every model should beat: the mean training frame, the last context
frame repeated, and the last context frame moved by the observer's known moves (:func:`action_shift`; MNIST World;
in Block World, whose turns leave no overlap between views, it is the last frame repeated)."""


def action_shift(last: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
    """The last context frame moved by the window's known moves since it, entering pixels empty (zero).

    MNIST World's window moves by ``(dx, dy)`` a step, so a still world's frame ``t`` is the last context frame read
    at ``(y + Dy, x + Dx)``, ``D`` the sum of the moves after it: exact for still digits inside the old window.

    Args:
        last: ``(B, C, H, W)`` the last context frame.
        moves: ``(B, T, 2)`` the window moves ``(dx, dy)`` that led to each predicted frame.

    Returns:
        ``(B, T, C, H, W)``.

    >>> frame = torch.arange(9.0).reshape(1, 1, 3, 3)
    >>> action_shift(frame, torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]))[0, :, 0].tolist()
    [[[1.0, 2.0, 0.0], [4.0, 5.0, 0.0], [7.0, 8.0, 0.0]], [[4.0, 5.0, 0.0], [7.0, 8.0, 0.0], [0.0, 0.0, 0.0]]]
    """
    b, c, h, w = last.shape
    total = moves.cumsum(1).round().long()  # (B, T, 2): (Dx, Dy)
    ys = torch.arange(h, device=last.device).view(1, 1, h, 1) + total[..., 1].view(b, -1, 1, 1)
    xs = torch.arange(w, device=last.device).view(1, 1, 1, w) + total[..., 0].view(b, -1, 1, 1)
    inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(2)  # (B, T, 1, H, W)
    flat = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).flatten(2)  # (B, T, H*W)
    source = last.flatten(2).unsqueeze(1).expand(-1, flat.shape[1], -1, -1)  # (B, T, C, H*W)
    moved = source.gather(3, flat.unsqueeze(2).expand(-1, -1, c, -1)).view(b, -1, c, h, w)
    return moved * inside


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

    def __init__(self, name: str, mean_frame: torch.Tensor | None = None, world: str = "mnist") -> None:
        super().__init__()
        if name not in REFERENCE_PREDICTORS:
            raise ValueError(f"unknown reference {name!r}; choose one of {', '.join(REFERENCE_PREDICTORS)}")
        if name == "mean_frame" and mean_frame is None:
            raise ValueError("the mean_frame reference needs the mean training frame")
        self.name, self.mean_frame, self.world = name, mean_frame, world

    def rollout(self, frames, actions, context: int, horizon: int | None = None) -> torch.Tensor:
        horizon = actions.shape[1] - context if horizon is None else horizon
        if self.name == "action_shift" and self.world == "mnist":
            return action_shift(frames[:, context - 1], actions[:, context : context + horizon])
        if self.name in ("copy_last", "action_shift"):
            last = frames[:, context - 1 : context]
            return last.expand(-1, horizon, *last.shape[2:])
        mean = self.mean_frame.to(frames)
        return mean.expand(frames.shape[0], horizon, *mean.shape)


def frame_metrics(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    masks: torch.Tensor | None = None,
    block_masks: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-frame metrics of ``(B, T, C, H, W)`` tensors in [0, 1]: each entry is ``(B, T)``.

    With ``masks`` (``(B, T, H, W)`` bool, e.g. the pixels of views seen before, :func:`revisit_masks_for`) also
    ``recall_mse`` and ``recall_ssim``: the squared error and the SSIM map averaged over the masked pixels only
    (NaN for a frame without any), and ``recall_fraction``, the share of masked pixels; with ``block_masks`` (the
    pixels of objects seen in the context) ``block_mse``, the squared error over those. RGB frames also get
    ``colour_recall``: of the pixels where the truth has colour (channels spread by more than
    :data:`COLOUR_SPREAD`), the share where the prediction has colour too (NaN for a frame without any). PSNR is
    capped at :data:`PSNR_CAP` (an exact frame would be infinite).
    """
    if predictions.shape != targets.shape or predictions.dim() != 5:
        raise ValueError(
            f"predictions and targets must both be (B, T, C, H, W); got {tuple(predictions.shape)} "
            f"and {tuple(targets.shape)}"
        )
    b, t = predictions.shape[:2]
    if masks is not None and masks.shape != (b, t, *predictions.shape[3:]):
        raise ValueError(
            f"masks must be (B, T, H, W) = {(b, t, *predictions.shape[3:])}, got {tuple(masks.shape)}"
        )
    p, y = predictions.flatten(0, 1).clamp(0, 1).double(), targets.flatten(0, 1).double()
    squared = (p - y).square()
    mse = squared.mean(dim=(1, 2, 3))
    # an exact prediction (e.g. copy_last over a no-op step of a static scene) has infinite PSNR: capped, so that
    # one such frame cannot turn a mean over sequences into inf
    psnr = peak_signal_noise_ratio(p, y, data_range=1.0, reduction="none", dim=(1, 2, 3)).clamp(max=PSNR_CAP)
    # SSIM's Gaussian filter unfolds each frame on CPU: chunks keep the memory small for long, large rollouts
    ssim_maps = torch.cat(
        [
            structural_similarity_index_measure(
                pc, yc, data_range=1.0, reduction="none", return_full_image=True
            )[1]
            for pc, yc in zip(p.split(64), y.split(64), strict=True)
        ]
    )
    ssim = ssim_maps.mean(dim=(1, 2, 3))
    metrics = {"mse": mse.reshape(b, t), "psnr": psnr.reshape(b, t), "ssim": ssim.reshape(b, t)}
    if masks is not None:
        m = masks.flatten(0, 1)[:, None].to(p.dtype)  # (BT, 1, H, W)
        count = m.sum(dim=(1, 2, 3)) * p.shape[1]
        nan = torch.full_like(count, float("nan"))
        for name, values in (("recall_mse", squared), ("recall_ssim", ssim_maps)):
            total = (values * m).sum(dim=(1, 2, 3))
            metrics[name] = torch.where(count > 0, total / count.clamp_min(1), nan).reshape(b, t)
        metrics["recall_fraction"] = m.mean(dim=(1, 2, 3)).reshape(b, t)
    if block_masks is not None:
        if block_masks.shape != (b, t, *predictions.shape[3:]):
            raise ValueError(f"block_masks must be (B, T, H, W), got {tuple(block_masks.shape)}")
        m = block_masks.flatten(0, 1)[:, None].to(p.dtype)
        count = m.sum(dim=(1, 2, 3)) * p.shape[1]
        total = (squared * m).sum(dim=(1, 2, 3))
        metrics["block_mse"] = torch.where(count > 0, total / count.clamp_min(1), torch.nan).reshape(b, t)
    if p.shape[1] == 3:
        coloured = colour_pixels(y)
        hits = (coloured & colour_pixels(p)).sum(dim=(1, 2)).double()
        total = coloured.sum(dim=(1, 2)).double()
        metrics["colour_recall"] = torch.where(total > 0, hits / total.clamp_min(1), torch.nan).reshape(b, t)
    return metrics


COLOUR_SPREAD = 40 / 255
"""A pixel has colour when its channels differ by more than this (greys, whites and blacks do not)."""


def colour_pixels(frames: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` RGB in [0, 1] -> ``(..., H, W)`` bool: the pixels whose channels spread by more than
    :data:`COLOUR_SPREAD`.

    >>> colour_pixels(torch.tensor([[[0.5, 0.9]], [[0.5, 0.2]], [[0.5, 0.2]]])).tolist()
    [[False, True]]
    """
    return (frames.amax(dim=-3) - frames.amin(dim=-3)) > COLOUR_SPREAD


@torch.no_grad()
def rollout_metrics(
    model: WorldModel,
    dataset: Dataset,
    context: int,
    horizon: int,
    batch_size: int = 16,
    max_sequences: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    masks: torch.Tensor | None = None,
    block_masks: torch.Tensor | None = None,
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
        masks: ``(N, horizon, H, W)`` bool for the first ``N`` sequences (:func:`revisit_masks_for`): adds
            ``recall_mse``, ``recall_ssim`` (averaged over the sequences whose frame has masked pixels) and
            ``recall_fraction``; only the first ``N`` sequences are evaluated.
        block_masks: like ``masks``, the pixels of objects seen in the context: adds ``block_mse``.

    Returns:
        ``{"mse": [...], "psnr": [...], "ssim": [...]}`` with ``horizon`` entries each (step 1 first), and
        ``"sequences"``: the number of sequences averaged.
    """
    model = model.to(device).eval()
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, torch.Tensor] = {}
    if masks is not None:
        max_sequences = min(len(masks), max_sequences or len(masks))
    count = 0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in tqdm(loader, disable=not progress, desc="evaluate"):
        frames, actions = batch[:2]
        if max_sequences is not None and count >= max_sequences:
            break
        if max_sequences is not None:
            frames, actions = frames[: max_sequences - count], actions[: max_sequences - count]
        if frames.shape[1] < context + horizon:
            raise ValueError(
                f"clips have {frames.shape[1]} frames, need context + horizon = {context + horizon}"
            )
        frames, actions = (
            frames[:, : context + horizon].to(device),
            actions[:, : context + horizon].to(device),
        )
        predictions = model.rollout(frames, actions, context, horizon)
        batch_masks = None if masks is None else masks[count : count + len(frames)]
        batch_blocks = None if block_masks is None else block_masks[count : count + len(frames)]
        metrics = frame_metrics(predictions.cpu(), frames[:, context:].cpu(), batch_masks, batch_blocks)
        for name, values in metrics.items():
            # a masked metric is NaN for a frame without such pixels: skipped, not counted
            counted = torch.ones_like(values, dtype=torch.bool) if name in METRICS else ~values.isnan()
            sums[name] = sums.get(name, torch.zeros(horizon, dtype=torch.float64)) + torch.where(
                counted, values, 0.0
            ).sum(0)
            counts[name] = counts.get(name, torch.zeros(horizon, dtype=torch.float64)) + counted.sum(0)
        count += len(frames)
    if count == 0:
        raise ValueError("the dataset yielded no sequences")
    result: dict[str, list[float]] = {
        name: (sums[name] / counts[name]).tolist() for name in sums
    }  # NaN where no sequence had a value
    result["sequences"] = count
    return result


def revisit_masks_for(
    dataset: Dataset, context: int, horizon: int, max_sequences: int | None = None, progress: bool = False
) -> torch.Tensor:
    """For a Block World dataset with ground truth: which pixels of each predicted frame show something the
    model observed in the context, ``(N, horizon, H, W)`` bool (what only earlier *predicted* frames showed, the
    model never saw, so it does not count); :func:`replay_ground_truth`'s ``seen``."""
    return replay_ground_truth(dataset, context, horizon, max_sequences, progress)["seen"]


def replay_ground_truth(
    dataset: Dataset,
    context: int,
    horizon: int,
    max_sequences: int | None = None,
    progress: bool = False,
    room_only: bool = False,
) -> dict[str, torch.Tensor]:
    """For a Block World dataset with ground truth, per predicted frame (``N`` sequences, ``horizon`` frames):

    - ``seen``: ``(N, horizon, H, W)`` bool, the pixels that show something the model observed in the context;
    - ``seen_blocks``: the pixels of ``seen`` that show an object (a block or ball);
    - with ``room_only``, ``room_only``: ``(N, horizon, 3, H, W)`` in [0, 1], the true poses' views of the room
      without objects (a privileged reference: it knows the poses and draws no block).

    Each frame's pixels are labelled by what they show (an object, a patch of floor or wall, the background;
    :meth:`~equiworld.envs.video.block_world.BlockWorldEnv.surface_labels`, re-rendered from the recorded agent
    pose and block positions); a pixel counts as seen when its label appeared in a context frame of the clip
    (:func:`~equiworld.envs.video.block_world.revisit_masks` with ``observed=context``). Clips start where the
    dataset's clips start (frame 0 for evaluation).

    Args:
        dataset: a :class:`~equiworld.world_models.data.VideoShardDataset` of Block World made with ground truth
            and opened with ``ground_truth=True``.
        context: observed frames.
        horizon: predicted frames.
        max_sequences: the first this many sequences (default: all).
        progress: show a progress bar.
        room_only: also render the room-only reference.
    """
    from equiworld.envs.video.block_world import _STATIC_LABEL, BlockWorldEnv, revisit_masks

    spec = getattr(dataset, "spec", {})
    if spec.get("world") != "block" or not getattr(dataset, "ground_truth", False):
        raise ValueError("revisit masks need a Block World dataset opened with ground_truth=True")
    count = len(dataset) if max_sequences is None else min(len(dataset), max_sequences)
    env = BlockWorldEnv(**spec.get("env_kwargs", {}))
    seen, blocks, rooms = [], [], []
    try:
        for i in tqdm(range(count), disable=not progress, desc="replay ground truth"):
            truth = dataset[i][2]
            clip = slice(0, context + horizon)
            poses = truth["agent_positions"][clip].numpy(), truth["agent_headings"][clip].numpy()
            labels = env.replay_labels(*poses, truth["block_positions"][clip].numpy())
            mask = revisit_masks(labels, observed=context)[context:]
            objects = (labels[context:] >= 1) & (labels[context:] < _STATIC_LABEL)
            seen.append(torch.from_numpy(mask))
            blocks.append(torch.from_numpy(mask & objects))
            if room_only:
                prediction = truth["agent_positions"][context : context + horizon].numpy()
                headings = truth["agent_headings"][context : context + horizon].numpy()
                rooms.append(torch.from_numpy(env.replay_views(prediction, headings)).float() / 255)
    finally:
        env.close()
    out = {"seen": torch.stack(seen), "seen_blocks": torch.stack(blocks)}
    if room_only:
        out["room_only"] = torch.stack(rooms)
    return out


class ReplayPredictor(torch.nn.Module):
    """Precomputed predictions with the world models' ``rollout`` interface, handed out in dataset order (as
    :func:`rollout_metrics` asks for them): e.g. :func:`replay_ground_truth`'s privileged ``room_only``
    reference."""

    def __init__(self, predictions: torch.Tensor) -> None:
        super().__init__()
        self.predictions, self.cursor = predictions, 0

    def rollout(self, frames, actions, context: int, horizon: int | None = None) -> torch.Tensor:
        horizon = actions.shape[1] - context if horizon is None else horizon
        batch = self.predictions[self.cursor : self.cursor + len(frames), :horizon]
        if len(batch) != len(frames):
            raise ValueError(f"{len(self.predictions)} precomputed sequences, asked for more")
        self.cursor += len(frames)
        return batch.to(frames)


def plot_horizon_metrics(
    results: dict[str, dict[str, list[float]]], path: str | os.PathLike, title: str = ""
) -> Path:
    """One PNG with MSE, PSNR and SSIM vs predicted step, a line per model (and, when the results have them,
    MSE and SSIM on the pixels of views seen before)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "mse": "MSE (lower is better)",
        "psnr": "PSNR dB",
        "ssim": "SSIM",
        "recall_mse": "MSE on views seen before",
        "recall_ssim": "SSIM on views seen before",
    }
    shown = [m for m in titles if all(m in metrics for metrics in results.values())]
    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 4))
    for name, metrics in results.items():
        steps = np.arange(1, len(metrics["mse"]) + 1)
        style = {"linestyle": "--", "alpha": 0.7} if name in REFERENCE_PREDICTORS else {}
        for axis, metric in zip(axes, shown, strict=True):
            axis.plot(steps, metrics[metric], label=name, **style)
    for axis, metric in zip(axes, shown, strict=True):
        axis.set_xlabel("predicted step")
        axis.set_title(titles[metric])
        axis.grid(alpha=0.3)
        if metric.endswith("mse"):
            axis.set_yscale("log")
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
