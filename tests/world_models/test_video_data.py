"""The torch reader of video datasets: clip shapes, starts, value range, broken shards."""

from __future__ import annotations

import re

import pytest
import torch

from equiworld.envs.video.datasets import generate_dataset, preset_spec, shard_name
from equiworld.world_models.data import ShardError, VideoShardDataset


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    spec = preset_spec(
        "mnist",
        "small",
        "train",
        num_sequences=5,
        sequence_length=14,
        context_length=8,
        sequences_per_shard=2,
    )
    list(generate_dataset(spec, root))
    return root


def test_reader_returns_requested_clip_shapes(mnist_root):
    data = VideoShardDataset(mnist_root, context=6, predict=4)
    assert len(data) == 5
    for index in range(len(data)):
        frames, actions = data[index]
        assert frames.shape == (10, 1, 32, 32) and frames.dtype == torch.float32
        assert actions.shape == (10, 2) and actions.dtype == torch.float32
        assert 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0 and float(frames.max()) > 0
    loader = torch.utils.data.DataLoader(data, batch_size=3, num_workers=0)
    frames, actions = next(iter(loader))
    assert frames.shape == (3, 10, 1, 32, 32) and actions.shape == (3, 10, 2)


def test_fixed_and_random_starts(mnist_root):
    fixed = VideoShardDataset(mnist_root, context=4, predict=2, random_start=False, start=0)
    full = VideoShardDataset(mnist_root, context=14, predict=0, random_start=False)
    frames, actions = fixed[3]
    torch.testing.assert_close(frames, full[3][0][:6])
    torch.testing.assert_close(actions[0], torch.zeros(2))  # the sequence's first "no action"
    randomized = VideoShardDataset(mnist_root, context=4, predict=2, random_start=True, seed=1)
    starts = {randomized.clip_start(i) for i in range(5)} | {
        (randomized.set_epoch(e), randomized.clip_start(0))[1] for e in range(10)
    }
    assert len(starts) > 1 and all(0 <= s <= 8 for s in starts)
    randomized.set_epoch(0)
    start = randomized.clip_start(2)
    clip, clip_actions = randomized[2]
    torch.testing.assert_close(clip, full[2][0][start : start + 6])
    torch.testing.assert_close(clip_actions, full[2][1][start : start + 6])


def test_reader_rejects_impossible_clips_and_broken_shards(mnist_root, tmp_path):
    with pytest.raises(ShardError, match="do not fit"):
        VideoShardDataset(mnist_root, context=10, predict=5)
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in mnist_root.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    shard = broken / shard_name(1)
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ShardError, match=re.escape(shard_name(1))):
        VideoShardDataset(broken, context=4, predict=2)
    shard.write_bytes((mnist_root / shard_name(1)).read_bytes()[::-1])  # right size, wrong content
    with pytest.raises(ShardError, match=re.escape(shard_name(1))):
        VideoShardDataset(broken, context=4, predict=2, verify=True)
    with pytest.raises(ShardError, match="manifest"):
        VideoShardDataset(tmp_path, context=4, predict=2)


def test_block_world_clips_have_one_hot_actions(tmp_path):
    spec = preset_spec(
        "block",
        "small",
        "train",
        num_sequences=2,
        sequence_length=6,
        sequences_per_shard=2,
        env_kwargs={"image_size": 16},
    )
    list(generate_dataset(spec, tmp_path))
    frames, actions = VideoShardDataset(tmp_path, context=3, predict=2, random_start=False)[1]
    assert frames.shape == (5, 3, 16, 16) and actions.shape == (5, 4)
    torch.testing.assert_close(actions.sum(1), torch.ones(5))
    no_op = torch.tensor([0.0, 0.0, 0.0, 1.0])  # the first "action" of a sequence
    torch.testing.assert_close(actions[0], no_op)


def test_ground_truth_clips_match_the_frames(tmp_path, mnist_root):
    from equiworld.envs.video.mnist_world import crop_torus

    spec = preset_spec(
        "mnist",
        "small",
        "validation",
        num_sequences=2,
        sequence_length=9,
        context_length=4,
        sequences_per_shard=2,
        ground_truth=True,
    )
    list(generate_dataset(spec, tmp_path / "mnist"))
    data = VideoShardDataset(tmp_path / "mnist", context=4, predict=3, seed=2, ground_truth=True)
    frames, actions, truth = data[1]
    assert truth["world_frames"].shape == (7, 50, 50) and truth["window_positions"].shape == (7, 2)
    assert truth["digit_positions"].shape == (7, 5, 2) and truth["digit_velocities"].shape == (5, 2)
    for t in range(7):
        window = crop_torus(truth["world_frames"][t].numpy(), truth["window_positions"][t].numpy(), 32)
        torch.testing.assert_close(frames[t, 0], torch.from_numpy(window).float() / 255)
    positions = truth["window_positions"].long()
    moves = torch.remainder(positions[1:] - positions[:-1], 50)
    torch.testing.assert_close(moves, torch.remainder(actions[1:].long(), 50))
    with pytest.raises(ShardError, match="ground-truth"):
        VideoShardDataset(mnist_root, context=4, predict=2, ground_truth=True)

    block = preset_spec(
        "block",
        "small",
        "train",
        num_sequences=1,
        sequence_length=5,
        sequences_per_shard=1,
        env_kwargs={"image_size": 16},
        ground_truth=True,
    )
    list(generate_dataset(block, tmp_path / "block"))
    _, _, truth = VideoShardDataset(tmp_path / "block", context=3, predict=2, ground_truth=True)[0]
    count = int(truth["block_counts"])
    assert (
        6 <= count <= 10
        and truth["agent_positions"].shape == (5, 2)
        and truth["agent_headings"].shape == (5,)
    )
    assert truth["block_positions"].shape == (5, 10, 2)
    assert bool((truth["block_positions"][:, :count] >= 0).all()) and bool(
        (truth["block_positions"][:, count:] == -1).all()
    )


def test_cpu_preset_keeps_the_published_geometry_ratios(tmp_path):
    """The CPU recipe's MNIST World: 40 x 40 world, 26 x 26 window, steps up to 8, 3 digits (the published 50 /
    32 / 10 / 5 shrunk to 0.64x the area, ratios kept within 2%), sequences of 20 context + 150 predicted
    frames; the model's sizes follow the data."""
    from equiworld.world_models.registry import model_config_for_dataset

    spec = preset_spec("mnist", "cpu", "validation")
    assert spec.sequence_length == 170 and spec.context_length == 20 and spec.num_sequences >= 256
    kw = spec.env_kwargs
    assert abs(kw["window_size"] / kw["world_size"] - 32 / 50) < 0.02
    assert abs(kw["max_step"] / kw["world_size"] - 10 / 50) < 0.02
    assert abs(kw["num_digits"] / kw["world_size"] ** 2 - 5 / 50**2) / (5 / 50**2) < 0.1
    tiny = preset_spec("mnist", "cpu", "train", num_sequences=2, sequence_length=24, sequences_per_shard=2)
    list(generate_dataset(tiny, tmp_path))
    frames, actions = VideoShardDataset(tmp_path, context=20, predict=4, random_start=False)[1]
    assert frames.shape == (24, 1, 26, 26) and actions.abs().max() <= 8
    config = model_config_for_dataset("small", tmp_path)
    assert (config.world_size, config.window_size, config.max_step) == (40, 26, 8)
