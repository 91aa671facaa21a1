"""Video dataset shards: determinism, format round trip, truncation and corruption detection, resume."""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest

from equiworld.envs.video.datasets import (
    MANIFEST_NAME,
    DatasetSpec,
    ShardError,
    generate_dataset,
    generate_shard,
    load_manifest,
    preset_spec,
    read_shard,
    shard_name,
    write_shard,
)


def _tiny_spec(seed: int = 0, **overrides):
    fields = {"num_sequences": 5, "sequence_length": 12, "context_length": 8, "sequences_per_shard": 2}
    return preset_spec("mnist", "small", "train", seed=seed, **{**fields, **overrides})


def test_same_seed_and_shard_give_byte_identical_shards(tmp_path):
    spec = _tiny_spec()
    write_shard(tmp_path / "a.npz", generate_shard(spec, 1))
    write_shard(tmp_path / "b.npz", generate_shard(spec, 1))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    write_shard(tmp_path / "c.npz", generate_shard(spec, 0))
    write_shard(tmp_path / "d.npz", generate_shard(_tiny_spec(seed=1), 1))
    assert (tmp_path / "c.npz").read_bytes() != (tmp_path / "a.npz").read_bytes()
    assert (tmp_path / "d.npz").read_bytes() != (tmp_path / "a.npz").read_bytes()


def test_shard_contents_follow_the_environment(tmp_path):
    spec = _tiny_spec()
    arrays = generate_shard(spec, 2)  # the last shard holds the remaining sequence
    assert arrays["frames"].shape == (1, 12, 1, 32, 32) and arrays["frames"].dtype == np.uint8
    assert arrays["actions"].shape == (1, 12, 2)
    np.testing.assert_array_equal(arrays["actions"][:, 0], 0)
    assert np.abs(arrays["actions"]).max() <= 10
    write_shard(tmp_path / "s.npz", arrays)
    read = read_shard(tmp_path / "s.npz")
    for key in ("frames", "actions"):
        np.testing.assert_array_equal(read[key], arrays[key])
    with np.load(tmp_path / "s.npz") as plain:  # also a plain .npz
        np.testing.assert_array_equal(plain["frames"], arrays["frames"])


def test_truncated_or_corrupted_shard_is_detected_and_named(tmp_path):
    path = tmp_path / "s.npz"
    write_shard(path, generate_shard(_tiny_spec(), 0))
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        path.write_bytes(data[:cut])
        with pytest.raises(ShardError, match=r"s\.npz"):
            read_shard(path)
    with pytest.raises(ShardError, match="does not exist"):
        read_shard(tmp_path / "nothing.npz")


def test_generation_resumes_without_redoing_finished_shards(tmp_path):
    spec = _tiny_spec()
    first = list(generate_dataset(spec, tmp_path, shards=[0, 2]))
    assert [(index, skipped) for index, _, skipped in first] == [(0, False), (2, False)]
    assert not load_manifest(tmp_path)["complete"]
    stamp = (tmp_path / shard_name(0)).stat().st_mtime_ns
    second = list(generate_dataset(spec, tmp_path))
    assert sorted((index, skipped) for index, _, skipped in second) == [(0, True), (1, False), (2, True)]
    assert (tmp_path / shard_name(0)).stat().st_mtime_ns == stamp
    manifest = load_manifest(tmp_path)
    assert manifest["complete"] and len(manifest["shards"]) == 3
    with pytest.raises(ShardError, match="different settings"):
        list(generate_dataset(_tiny_spec(seed=9), tmp_path))


def test_an_interrupted_run_leaves_no_stale_temporaries_after_resuming(tmp_path):
    spec = _tiny_spec()
    list(generate_dataset(spec, tmp_path, shards=[0]))
    stale = tmp_path / f".{shard_name(1)}.tmp4242"  # a writer killed mid-shard
    stale.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / f".{shard_name(2)}.tmp4343"  # another writer, still at work
    fresh.write_bytes(b"partial")
    list(generate_dataset(spec, tmp_path))
    assert not stale.exists() and fresh.exists()
    assert load_manifest(tmp_path)["complete"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        [MANIFEST_NAME, *(shard_name(i) for i in range(3))]
    )


def test_block_world_shards_are_byte_identical_too(tmp_path):
    spec = preset_spec(
        "block",
        "small",
        "train",
        num_sequences=1,
        sequence_length=6,
        sequences_per_shard=1,
        env_kwargs={"image_size": 16},
    )
    write_shard(tmp_path / "a.npz", generate_shard(spec, 0))
    write_shard(tmp_path / "b.npz", generate_shard(spec, 0))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    arrays = read_shard(tmp_path / "a.npz")
    assert arrays["frames"].shape == (1, 6, 3, 16, 16) and arrays["actions"].shape == (1, 6, 1)
    assert arrays["actions"][0, 0, 0] == 3  # the first "action" is a no-op


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("world", "atari", ValueError, "unknown world 'atari'"),
        ("split", "test", ValueError, "unknown split 'test'"),
        ("num_sequences", 0, ValueError, "num_sequences must be an integer >= 1, got 0"),
        ("sequence_length", 10.5, ValueError, "sequence_length must be an integer >= 1, got 10.5"),
        ("sequences_per_shard", "2", TypeError, "sequences_per_shard must be an integer >= 1, got '2'"),
        ("seed", -1, ValueError, "seed must be an integer >= 0, got -1"),
    ],
)
def test_bad_dataset_specs_name_the_field(field, value, error, message):
    fields = {**_tiny_spec().to_json(), field: value}
    with pytest.raises(error, match=re.escape(message)):
        DatasetSpec(**fields)


def test_the_turn_back_protocol_returns_to_views_the_observer_saw():
    from equiworld.envs.video.datasets import generate_shard, preset_spec

    spec = preset_spec(
        "block", "cpu", "validation", num_sequences=1, sequences_per_shard=1, sequence_length=90,
        turn_back_after=70, env_kwargs={"static_blocks": True, "image_size": 16},
    )  # fmt: skip
    frames = generate_shard(spec, 0)["frames"][0].astype(int)
    pause = 3  # WanderingPolicy's max_pause: from frame 70, turn, turn, hold x3, turn, turn, hold x3, ...
    last = frames[69]  # the context's last view (the context: frames 0 .. 69)
    facing_back = [t for t in range(70, 90) if (t - 70) % 10 >= 2 + pause + 1]  # turned back
    assert facing_back == [76, 77, 78, 79, 86, 87, 88, 89]
    for t in facing_back:
        assert np.array_equal(frames[t], last), t
    assert not np.array_equal(frames[71], last)  # in between it looked away
    assert "turn_back_after" not in preset_spec("block", "cpu", "validation").to_json()  # old manifests match
    with pytest.raises(ValueError, match="turn_back_after is a Block World protocol"):
        preset_spec("mnist", "cpu", "validation", turn_back_after=20)
    with pytest.raises(ValueError, match="turn_back_after"):
        preset_spec("block", "cpu", "validation", turn_back_after=0)
