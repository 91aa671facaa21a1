"""Evaluation metrics: the recall metrics (on pixels of views seen before) against the whole-frame ones."""

from __future__ import annotations

import math

import pytest
import torch

from equiworld.world_models.evaluation import frame_metrics


def test_recall_metrics_score_only_the_masked_pixels():
    gen = torch.Generator().manual_seed(0)
    truth = torch.rand(2, 3, 3, 16, 16, generator=gen)
    prediction = truth.clone()
    prediction[..., :8] = torch.rand(2, 3, 3, 16, 8, generator=gen)  # wrong on the left half only
    every = torch.ones(2, 3, 16, 16, dtype=torch.bool)
    metrics = frame_metrics(prediction, truth, every)
    torch.testing.assert_close(metrics["recall_mse"], metrics["mse"])
    torch.testing.assert_close(metrics["recall_ssim"], metrics["ssim"])
    assert torch.equal(metrics["recall_fraction"], torch.ones(2, 3, dtype=torch.float64))
    right = every.clone()
    right[..., :8] = False
    masked = frame_metrics(prediction, truth, right)
    assert masked["recall_mse"].abs().max() == 0 and (masked["mse"] > 0.05).all()
    torch.testing.assert_close(masked["recall_fraction"], torch.full((2, 3), 0.5, dtype=torch.float64))
    assert (masked["recall_ssim"] > masked["ssim"]).all()
    none = frame_metrics(prediction, truth, torch.zeros_like(every))
    assert all(math.isnan(v) for v in none["recall_mse"].flatten().tolist())
    with pytest.raises(ValueError, match="masks must be"):
        frame_metrics(prediction, truth, every[:, :2])


def test_psnr_of_an_exact_frame_is_capped():
    from equiworld.world_models.evaluation import PSNR_CAP

    frames = torch.rand(2, 3, 1, 8, 8)
    predictions = frames.clone()
    predictions[1] += 0.1
    psnr = frame_metrics(predictions, frames)["psnr"]
    assert torch.isfinite(psnr).all()
    assert (psnr[0] == PSNR_CAP).all() and (psnr[1] < 25).all()
