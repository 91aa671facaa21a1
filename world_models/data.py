"""Torch reader of the video datasets written by ``scripts/make_dataset.py``.

>>> from equiworld.world_models.data import VideoShardDataset
>>> data = VideoShardDataset("data/mnist_small/train", context=20, predict=20)  # doctest: +SKIP
>>> frames, actions = data[0]  # doctest: +SKIP
>>> frames.shape, actions.shape  # doctest: +SKIP
(torch.Size([40, 1, 32, 32]), torch.Size([40, 2]))

Shards are memory-mapped, so a clip is read without loading its shard; each DataLoader worker opens its
own maps. See ``equiworld.envs.video.datasets`` for the shard format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from equiworld.envs.video.datasets import (
    TIME_INDEXED_GROUND_TRUTH,
    VIDEO_WORLDS,
    ShardError,
    file_sha256,
    load_manifest,
    read_shard,
    shard_name,
)

__all__ = ["ShardError", "VideoShardDataset"]


class VideoShardDataset(Dataset):
    """Clips of ``context + predict`` frames (and their actions) from a sharded video dataset.

    Item ``i`` is sequence ``i`` of the dataset (sequences are numbered across shards in order), as a tuple
    ``(frames, actions)``:

    - ``frames``: float32 tensor (T, C, H, W) in [0, 1] (uint8 / 255), T = ``context + predict``;
    - ``actions``: float32 tensor (T, A). ``actions[t]`` is the action that led from frame t-1 to frame t
      (in the clip's first frame it is the action that led into it, or the "no action" at a sequence's
      start). MNIST World: A = 2, the window displacement (dx, dy) in pixels (integers stored as floats).
      Block World: A = 4, one-hot of (turn left, turn right, forward, no-op).

    The clip starts at frame 0 (``random_start=False``) or at a start drawn uniformly from the possible
    ones by ``numpy.random.default_rng((seed, epoch, i))``, so a (seed, epoch) gives the same clips in any
    worker; call ``set_epoch`` to draw new starts.

    Args:
        root: dataset directory (holding ``manifest.json`` and the shards).
        context: number of context frames.
        predict: number of frames to predict.
        random_start: draw the clip's start at random (True) or start at ``start`` (False).
        seed: seed of the random starts.
        start: the fixed start frame when ``random_start`` is False.
        verify: check every shard's SHA-256 against the manifest when opening (slow for big datasets).
            Sizes and zip structure are always checked.
        ground_truth: also return a third element, a dict of the clip's ground-truth tensors (datasets made
            with ``--ground-truth``; see ``equiworld.envs.video.datasets``): time-indexed arrays are cut to
            the clip (T first), the others (e.g. ``digit_velocities``, ``block_counts``) are per sequence.

    Raises:
        ShardError: missing manifest, missing/truncated/corrupted shard (the message names the file), or
            sequences shorter than ``start + context + predict``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        context: int,
        predict: int,
        random_start: bool = True,
        seed: int = 0,
        start: int = 0,
        verify: bool = False,
        ground_truth: bool = False,
    ) -> None:
        if context < 1 or predict < 0:
            raise ValueError(f"need context >= 1 and predict >= 0, got context={context}, predict={predict}")
        self.root = Path(root)
        self.manifest = load_manifest(self.root)
        self.spec: dict[str, Any] = self.manifest["spec"]
        self.context, self.predict = int(context), int(predict)
        self.clip_length = self.context + self.predict
        self.random_start, self.seed, self.start = bool(random_start), int(seed), int(start)
        self.epoch = 0
        self.ground_truth = bool(ground_truth)
        if self.ground_truth and not self.spec.get("ground_truth", False):
            raise ShardError(
                f"dataset {str(self.root)!r} was made without ground truth; re-create it with --ground-truth"
            )
        self.sequence_length = int(self.spec["sequence_length"])
        if self.start + self.clip_length > self.sequence_length:
            raise ShardError(
                f"clips of {self.clip_length} frames from frame {self.start} do not fit the "
                f"{self.sequence_length}-frame sequences of {str(self.root)!r}"
            )
        names = [shard_name(i) for i in range(int(self.manifest["num_shards"]))]
        missing = [name for name in names if name not in self.manifest["shards"]]
        if missing:
            raise ShardError(
                f"dataset {str(self.root)!r} is incomplete: {len(missing)} shard(s) not generated, e.g. "
                f"{missing[0]!r}; re-run scripts/make_dataset.py with the same arguments to finish it"
            )
        self._paths = [self.root / name for name in names]
        counts = []
        for path in self._paths:
            record = self.manifest["shards"][path.name]
            if not path.is_file():
                raise ShardError(f"shard {str(path)!r} is missing")
            if path.stat().st_size != record["bytes"]:
                raise ShardError(
                    f"shard {str(path)!r} is truncated or corrupted: {path.stat().st_size} bytes, "
                    f"the manifest says {record['bytes']}"
                )
            if verify and file_sha256(path) != record["sha256"]:
                raise ShardError(f"shard {str(path)!r} is corrupted: its SHA-256 differs from the manifest's")
            counts.append(int(record["sequences"]))
        self._first = np.concatenate([[0], np.cumsum(counts)])
        self._open: dict[int, dict[str, np.ndarray]] = {}
        if self._paths:  # open one shard now, so a broken file or a bad shape fails early
            self._shard(0)

    def __len__(self) -> int:
        return int(self._first[-1])

    def set_epoch(self, epoch: int) -> None:
        """Selects the random starts of an epoch."""
        self.epoch = int(epoch)

    def clip_start(self, index: int) -> int:
        """The first frame of item ``index``'s clip in its sequence."""
        if not self.random_start:
            return self.start
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return int(rng.integers(0, self.sequence_length - self.clip_length + 1))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} sequences")
        index %= len(self)
        shard = int(np.searchsorted(self._first, index, side="right")) - 1
        arrays = self._shard(shard)
        row, start = index - int(self._first[shard]), self.clip_start(index)
        clip = slice(start, start + self.clip_length)
        frames = torch.from_numpy(np.array(arrays["frames"][row, clip], dtype=np.float32)) / 255.0
        actions = torch.from_numpy(
            VIDEO_WORLDS[self.spec["world"]].model_actions(arrays["actions"][row, clip])
        )
        if not self.ground_truth:
            return frames, actions
        truth = {
            key: torch.from_numpy(
                np.array(value[row, clip] if key in TIME_INDEXED_GROUND_TRUTH else value[row])
            )
            for key, value in arrays.items()
            if key not in ("frames", "actions")
        }
        return frames, actions, truth

    def _shard(self, shard: int) -> dict[str, np.ndarray]:
        if shard not in self._open:
            arrays = read_shard(self._paths[shard])
            expected = int(self.manifest["shards"][self._paths[shard].name]["sequences"])
            if arrays["frames"].shape[:2] != (expected, self.sequence_length):
                raise ShardError(
                    f"shard {str(self._paths[shard])!r} holds frames of shape {arrays['frames'].shape}, "
                    f"expected ({expected}, {self.sequence_length}, ...)"
                )
            self._open[shard] = arrays
        return self._open[shard]

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in each worker
        state = self.__dict__.copy()
        state["_open"] = {}
        return state
