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


def test_action_shift_is_exact_for_still_digits_inside_the_old_window():
    import numpy as np

    from equiworld.envs.video import MNISTWorldEnv
    from equiworld.world_models.evaluation import ReferencePredictor

    env = MNISTWorldEnv(world_size=40, window_size=26, num_digits=6, velocity_range=0, max_step=8)
    rng = np.random.default_rng(0)
    frames, moves = [env.reset(seed=3)[0]], [np.zeros(2)]
    for _ in range(6):
        move = rng.integers(-8, 9, 2)
        frames.append(env.step(move.astype(float))[0])
        moves.append(move)
    frames = torch.tensor(np.stack(frames), dtype=torch.float64)[None] / 255  # (1, 7, 1, 26, 26)
    moves = torch.tensor(np.stack(moves), dtype=torch.float64)[None]
    predicted = ReferencePredictor("action_shift", world="mnist").rollout(frames, moves, context=2, horizon=5)
    total = moves[0, 2:].cumsum(0).long()  # window displacement since the last context frame, (dx, dy)
    for k in range(5):
        dx, dy = total[k].tolist()
        ys, xs = slice(max(0, -dy), min(26, 26 - dy)), slice(max(0, -dx), min(26, 26 - dx))
        truth, guess = frames[0, 2 + k, 0], predicted[0, k, 0]
        torch.testing.assert_close(guess[ys, xs], truth[ys, xs], rtol=0, atol=0)  # inside: exact
        outside = torch.ones_like(guess, dtype=torch.bool)
        outside[ys, xs] = False
        assert (guess[outside] == 0).all()  # entering pixels empty
    assert (frames[0, 2:].sum() > 0) and not torch.equal(predicted[0, 0], frames[0, 1])  # something moved
    copy = ReferencePredictor("action_shift", world="block").rollout(frames, moves, context=2, horizon=5)
    assert torch.equal(copy, frames[:, 1:2].expand(-1, 5, -1, -1, -1))  # no warp is defined: the last frame


def test_seen_before_columns_come_only_from_context_masked_rows(script_module):
    results = script_module("world_model_results")

    def row(model, seed, recall, mask):
        r = {"world": "block", "model": model, "seed": seed, "context": 70, "horizon": 210, "train_steps": 10,
             "wall_clock_s": 60.0, "mse_at": {"1": 0.1, "210": 0.1}, "ssim_at": {"1": 0.5, "210": 0.5},
             "recall_mse_at": {"1": recall, "210": recall}, "recall_ssim_at": {"1": 0.5, "210": 0.5}}  # fmt: skip
        return r | ({"seen_mask": mask} if mask else {})

    old = results.summarise([row("flowm3d", 0, 0.2, None), row("memory3d", 0, 0.3, None)], (1, 210))
    assert "recall_mse@210" not in old[0]
    assert "seen-before" not in results.markdown(old, (1, 210))  # no row measured it: no columns
    goal = results.block_goal(old, static=True)
    assert goal["met"] is False and "context mask" in goal["missing"]
    new = results.summarise([row("flowm3d", 0, 0.2, "context"), row("memory3d", 0, 0.3, None)], (1, 210))
    assert new[0]["recall_mse@210"] == (0.2, None) and "recall_mse@210" not in new[1]
    assert "| `memory3d` | 1 | 10 | 1 | 0.1000 | 0.1000 | 0.500 | – | – |" in results.markdown(new, (1, 210))


def test_block_pixels_and_colour_recall_score_what_they_say():
    truth = torch.full((1, 2, 3, 16, 16), 0.5)  # grey frames
    truth[0, :, 0, :8, :8] = 0.9  # a red-ish block in the top-left corner of both frames
    prediction = torch.full_like(truth, 0.5)  # the room right, the block forgotten (grey)
    blocks = torch.zeros(1, 2, 16, 16, dtype=torch.bool)
    blocks[0, 0, :8, :8] = True  # seen in the context: frame 0 only
    metrics = frame_metrics(prediction, truth, masks=torch.ones_like(blocks), block_masks=blocks)
    assert metrics["block_mse"][0, 0].item() == pytest.approx(
        0.4**2 / 3
    )  # one channel of three is off by 0.4
    assert math.isnan(metrics["block_mse"][0, 1].item())  # no seen block in frame 1: not counted
    assert metrics["colour_recall"][0].tolist() == [0.0, 0.0]  # the truth's colour, nowhere in the prediction
    prediction[0, 1, 0, :4, :8] = 0.9  # colour drawn on half of the block in frame 1
    assert frame_metrics(prediction, truth)["colour_recall"][0].tolist() == [0.0, 0.5]
    grey = torch.full_like(truth, 0.3)
    assert math.isnan(frame_metrics(grey, grey)["colour_recall"][0, 0].item())  # no colour in the truth
    assert "colour_recall" not in frame_metrics(truth[:, :, :1], truth[:, :, :1])  # greyscale frames


def test_rows_recorded_before_a_setting_existed_are_seeds_of_the_same_recipe(script_module):
    results = script_module("world_model_results")
    base = {"world": "mnist", "model": "flowm", "context": 20, "horizon": 150, "train_steps": 1800,
            "wall_clock_s": 60.0, "mse_at": {"150": 0.1}, "ssim_at": {"150": 0.5}}  # fmt: skip
    old = base | {"seed": 1, "train_settings": {"lr": 0.001}}
    new = base | {"seed": 0, "train_settings": {"lr": 0.001, "batch_size": 4, "teacher_forcing": 0.0}}
    other = base | {"seed": 2, "train_settings": {"lr": 0.001, "batch_size": 8}}
    summary = results.summarise([old, new, other], (150,))
    assert [e["seeds"] for e in summary] == [[0, 1], [2]]
