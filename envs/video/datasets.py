"""Video datasets of the partially observed worlds, written as deterministic, resumable shards (numpy only).

A dataset is a directory of shards plus ``manifest.json``. Shard ``i`` holds sequences ``i * per_shard ...``
and is a deterministic function of (seed, split, shard index): any number of workers or machines can
produce disjoint shards, a re-run gives byte-identical files, and an interrupted run resumes by skipping the
shards already written (each shard is written to a temporary file and renamed, so a shard file is complete).

Shard format: an uncompressed ``.npz`` (zip, fixed timestamps) holding

- ``frames``: uint8 (N, T, C, H, W), the observations (MNIST World C=1, Block World C=3);
- ``actions``: (N, T, A), the action that produced each frame: ``actions[:, t]`` was applied to go from
  frame ``t - 1`` to frame ``t``; ``actions[:, 0]`` is the "no action" (MNIST World (0, 0), Block World
  no-op). MNIST World: int16 (dx, dy) window displacements, A=2. Block World: int8 action index, A=1.

With ``ground_truth=True`` a shard also holds, for MNIST World, ``world_frames`` uint8 (N, T, W, W),
``window_positions`` int16 (N, T, 2), ``digit_positions`` int16 (N, T, D, 2) and ``digit_velocities`` int8
(N, D, 2); for Block World, ``agent_positions`` int8 (N, T, 2), ``agent_headings`` int8 (N, T),
``block_positions`` and ``block_velocities`` int8 (N, T, B, 2) (B = the most blocks; unused slots have
position -1) and ``block_counts`` int8 (N,). Positions are (x, y) as in the envs' ``info``.

``read_shard`` memory-maps the arrays (they are stored uncompressed), so readers can sample clips without
loading whole shards. The torch reader is ``equiworld.world_models.data.VideoShardDataset``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from equiworld.envs import validation as check
from equiworld.envs.video.grid import BlockAction

__all__ = [
    "MANIFEST_NAME",
    "PRESETS",
    "TIME_INDEXED_GROUND_TRUTH",
    "VIDEO_WORLDS",
    "DatasetSpec",
    "ShardError",
    "VideoWorld",
    "file_sha256",
    "generate_dataset",
    "generate_shard",
    "load_manifest",
    "num_shards",
    "preset_spec",
    "read_shard",
    "remove_stale_temporaries",
    "shard_name",
    "write_shard",
]

MANIFEST_NAME = "manifest.json"
# Ground-truth arrays with a time axis (axis 1), which clips slice like the frames.
TIME_INDEXED_GROUND_TRUTH = (
    "world_frames",
    "window_positions",
    "digit_positions",
    "agent_positions",
    "agent_headings",
    "block_positions",
    "block_velocities",
)
FORMAT = "equiworld-video-shards"
FORMAT_VERSION = 1
_SPLIT_CODES = {"train": 0, "validation": 1}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# Published sizes ("paper", REFERENCES.md §2) and sizes a CPU can train on in minutes ("small").
PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("mnist", "paper"): {
        "train": {"num_sequences": 180_000, "sequence_length": 70, "context_length": 50},
        "validation": {"num_sequences": 8_000, "sequence_length": 200, "context_length": 50},
        "sequences_per_shard": 1000,
        "env_kwargs": {},
    },
    ("mnist", "small"): {
        "train": {"num_sequences": 2_000, "sequence_length": 40, "context_length": 20},
        "validation": {"num_sequences": 200, "sequence_length": 60, "context_length": 20},
        "sequences_per_shard": 250,
        "env_kwargs": {},
    },
    # The CPU recipe of the MNIST World world models: the published geometry shrunk to 0.64x the area (world
    # 40, window 26, steps up to 8, 3 digits keep the window/world, step/world and digit-density ratios), with
    # sequences of 20 context + 150 predicted frames so that training can reach the evaluated horizon.
    ("mnist", "cpu"): {
        "train": {"num_sequences": 2_000, "sequence_length": 170, "context_length": 20},
        "validation": {"num_sequences": 256, "sequence_length": 170, "context_length": 20},
        "sequences_per_shard": 250,
        "env_kwargs": {"world_size": 40, "window_size": 26, "max_step": 8, "num_digits": 3},
    },
    ("block", "paper"): {
        "train": {"num_sequences": 10_000, "sequence_length": 500, "context_length": 0},
        "validation": {"num_sequences": 1_000, "sequence_length": 500, "context_length": 0},
        "sequences_per_shard": 4,
        "env_kwargs": {"image_size": 128},
    },
    # The CPU recipe of the Block World models: 32 px frames, training sequences long enough for clips of the
    # published 70 context + 90 predicted frames from each sequence's start, validation sequences of the published
    # 70 + 210 (made with --ground-truth for the seen-before metric). The observer first turns a full
    # circle (context_length > 0), then wanders. `--static` makes the static-blocks stage.
    ("block", "cpu"): {
        "train": {"num_sequences": 2_000, "sequence_length": 160, "context_length": 70},
        "validation": {"num_sequences": 64, "sequence_length": 280, "context_length": 70},
        "sequences_per_shard": 50,
        "env_kwargs": {"image_size": 32},
    },
    ("block", "small"): {
        "train": {"num_sequences": 200, "sequence_length": 100, "context_length": 0},
        "validation": {"num_sequences": 20, "sequence_length": 100, "context_length": 0},
        "sequences_per_shard": 10,
        "env_kwargs": {"image_size": 64},
    },
}


class ShardError(ValueError):
    """A shard or manifest is missing, truncated, corrupted or inconsistent; the message names the file."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines a dataset's content.

    Attributes:
        world: ``"mnist"`` (MNIST World) or ``"block"`` (Block World).
        split: ``"train"`` or ``"validation"`` (MNIST World draws disjoint digit images for each).
        num_sequences: number of sequences (videos).
        sequence_length: frames per sequence.
        context_length: MNIST World: frames during which the observer seeks unseen pixels (then it walks
            randomly). Block World: if positive, the wandering observer starts by turning a full circle in place
            (it looks around before it walks; the published data has no such start, ``0``).
        sequences_per_shard: sequences per shard file (the last shard may hold fewer).
        seed: base seed; shard ``i`` uses ``SeedSequence([seed, split code, i])``.
        env_kwargs: keyword arguments of the environment class (e.g. ``image_size``, ``velocity_range``).
        ground_truth: also store the ground truth of every frame (see ``TIME_INDEXED_GROUND_TRUTH``), for evaluation
            and probing.
        turn_back_after: Block World: after this many frames the observer stops wandering and looks away and back
            in place (the turn-back protocol: every returning view is one it saw;
            :class:`~equiworld.envs.video.policies.WanderingPolicy`); ``None``: it wanders throughout.
    """

    world: str
    split: str
    num_sequences: int
    sequence_length: int
    context_length: int = 50
    sequences_per_shard: int = 1000
    seed: int = 0
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    ground_truth: bool = False
    turn_back_after: int | None = None

    def __post_init__(self) -> None:
        check.choice("world", self.world, tuple(VIDEO_WORLDS))
        check.choice("split", self.split, tuple(_SPLIT_CODES))
        for name in ("num_sequences", "sequence_length", "sequences_per_shard"):
            object.__setattr__(self, name, check.integer(name, getattr(self, name), low=1))
        object.__setattr__(
            self, "context_length", check.integer("context_length", self.context_length, low=0)
        )
        object.__setattr__(self, "seed", check.integer("seed", self.seed, low=0))
        if not isinstance(self.env_kwargs, dict):
            raise TypeError(f"env_kwargs must be a dict, got {self.env_kwargs!r}")
        if self.turn_back_after is not None:
            if self.world != "block":
                raise ValueError("turn_back_after is a Block World protocol (the observer turns in place)")
            turn = check.integer("turn_back_after", self.turn_back_after, low=1)
            object.__setattr__(self, "turn_back_after", turn)

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON-compatible dict (``DatasetSpec(**d)`` rebuilds it; ``turn_back_after`` only when set,
        so that the manifests of datasets made without it still match)."""
        data = dataclasses.asdict(self)
        if data["turn_back_after"] is None:
            del data["turn_back_after"]
        return data


def preset_spec(
    world: str, preset: str, split: str = "train", seed: int = 0, **overrides: Any
) -> DatasetSpec:
    """The ``DatasetSpec`` of a preset (``"paper"`` or ``"small"``), with optional field overrides.

    Overrides whose value is None are ignored; ``env_kwargs`` overrides are merged into the preset's.
    """
    key = (world, preset)
    if key not in PRESETS:
        raise ValueError(f"unknown world/preset {key}; allowed: {sorted(PRESETS)}")
    if split not in _SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; allowed: {tuple(_SPLIT_CODES)}")
    table = PRESETS[key]
    fields: dict[str, Any] = {
        **table[split],
        "sequences_per_shard": table["sequences_per_shard"],
        "env_kwargs": dict(table["env_kwargs"]),
    }
    for name, value in overrides.items():
        if value is None:
            continue
        if name == "env_kwargs":
            fields["env_kwargs"].update(value)
        else:
            fields[name] = value
    return DatasetSpec(world=world, split=split, seed=seed, **fields)


def num_shards(spec: DatasetSpec) -> int:
    """Number of shard files of a dataset."""
    return -(-spec.num_sequences // spec.sequences_per_shard)


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"shard_{index:05d}.npz"


@dataclasses.dataclass(frozen=True)
class VideoWorld:
    """What dataset generation knows of a world: its env, its observer policy, its action and ground-truth arrays.

    Attributes:
        make_env: ``spec -> env``.
        make_policy: ``(env, spec) -> policy`` (``reset(info, rng)``, then ``policy(info) -> action``).
        action_shape: per-frame action shape ``(A,)``.
        action_dtype: the actions' dtype.
        no_action: the action of frame 0.
        allocate_truth: ``(env, count, length) -> arrays`` of the ground truth.
        record_truth: ``(arrays, env, info, sequence, t)``: writes frame ``t``'s ground truth.
        static_kwargs: the env keywords of a world whose objects do not move.
        model_actions: stored actions ``(T, A)`` -> the float32 actions a world model reads (Block World: one-hot).
        env_options: the env keywords that ``scripts/make_dataset.py`` exposes as options of this world alone.
    """

    make_env: Callable[[DatasetSpec], Any]
    make_policy: Callable[[Any, DatasetSpec], Any]
    action_shape: tuple[int, ...]
    action_dtype: type
    no_action: int
    allocate_truth: Callable[[Any, int, int], dict[str, np.ndarray]]
    record_truth: Callable[[dict[str, np.ndarray], Any, dict[str, Any], int, int], None]
    static_kwargs: dict[str, Any]
    model_actions: Callable[[np.ndarray], np.ndarray]
    env_options: tuple[str, ...] = ()


def _mnist_env(spec: DatasetSpec) -> Any:
    from equiworld.envs.video.mnist_world import MNISTWorldEnv

    return MNISTWorldEnv(split=spec.split, **spec.env_kwargs)


def _block_env(spec: DatasetSpec) -> Any:
    from equiworld.envs.video.block_world import BlockWorldEnv

    return BlockWorldEnv(**spec.env_kwargs)


def _mnist_policy(env: Any, spec: DatasetSpec) -> Any:
    from equiworld.envs.video.policies import MNISTObserverPolicy

    return MNISTObserverPolicy.for_env(env, context_length=spec.context_length)


def _block_policy(env: Any, spec: DatasetSpec) -> Any:
    from equiworld.envs.video.policies import WanderingPolicy

    return WanderingPolicy.for_env(
        env, look_around=spec.context_length > 0, turn_back_after=spec.turn_back_after
    )


def _mnist_truth(env: Any, count: int, length: int) -> dict[str, np.ndarray]:
    size, digits = env.world_size, env.num_digits
    return {
        "world_frames": np.zeros((count, length, size, size), np.uint8),
        "window_positions": np.zeros((count, length, 2), np.int16),
        "digit_positions": np.zeros((count, length, digits, 2), np.int16),
        "digit_velocities": np.zeros((count, digits, 2), np.int8),
    }


def _block_truth(env: Any, count: int, length: int) -> dict[str, np.ndarray]:
    slots = env.num_blocks[1]
    return {
        "agent_positions": np.zeros((count, length, 2), np.int8),
        "agent_headings": np.zeros((count, length), np.int8),
        "block_positions": np.full((count, length, slots, 2), -1, np.int8),
        "block_velocities": np.zeros((count, length, slots, 2), np.int8),
        "block_counts": np.zeros(count, np.int8),
    }


def _record_mnist_truth(
    truth: dict[str, np.ndarray], env: Any, info: dict[str, Any], sequence: int, t: int
) -> None:
    truth["world_frames"][sequence, t] = env.world_frame()
    truth["window_positions"][sequence, t] = info["window_position"]
    truth["digit_positions"][sequence, t] = info["digit_positions"]
    truth["digit_velocities"][sequence] = info["digit_velocities"]


def _record_block_truth(
    truth: dict[str, np.ndarray], env: Any, info: dict[str, Any], sequence: int, t: int
) -> None:
    blocks = len(info["block_positions"])
    truth["agent_positions"][sequence, t] = info["agent_position"]
    truth["agent_headings"][sequence, t] = info["agent_heading"]
    truth["block_positions"][sequence, t, :blocks] = info["block_positions"]
    truth["block_velocities"][sequence, t, :blocks] = info["block_velocities"]
    truth["block_counts"][sequence] = blocks


def _moves(actions: np.ndarray) -> np.ndarray:
    return np.asarray(actions, dtype=np.float32)


def _one_hot(actions: np.ndarray) -> np.ndarray:
    return np.eye(len(BlockAction), dtype=np.float32)[np.asarray(actions)[:, 0].astype(np.int64)]


VIDEO_WORLDS: dict[str, VideoWorld] = {
    "mnist": VideoWorld(
        make_env=_mnist_env,
        make_policy=_mnist_policy,
        action_shape=(2,),
        action_dtype=np.int16,
        no_action=0,
        allocate_truth=_mnist_truth,
        record_truth=_record_mnist_truth,
        static_kwargs={"velocity_range": 0},
        model_actions=_moves,
    ),
    "block": VideoWorld(
        make_env=_block_env,
        make_policy=_block_policy,
        action_shape=(1,),
        action_dtype=np.int8,
        no_action=int(BlockAction.NOOP),
        allocate_truth=_block_truth,
        record_truth=_record_block_truth,
        static_kwargs={"static_blocks": True},
        model_actions=_one_hot,
        env_options=("image_size", "textured"),
    ),
}
"""The video worlds by name: the one table that dataset generation reads."""


def generate_shard(spec: DatasetSpec, index: int) -> dict[str, np.ndarray]:
    """Generates shard ``index`` of a dataset: a deterministic function of (spec, index).

    Returns:
        ``{"frames": uint8 (N, T, C, H, W), "actions": (N, T, A)}`` as described in the module docstring.
    """
    if not 0 <= index < num_shards(spec):
        raise ValueError(f"shard index {index} out of range [0, {num_shards(spec)})")
    count = min(spec.sequences_per_shard, spec.num_sequences - index * spec.sequences_per_shard)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, _SPLIT_CODES[spec.split], index]))
    world = VIDEO_WORLDS[spec.world]
    env = world.make_env(spec)
    length = spec.sequence_length
    frames = np.empty((count, length, *env.observation_space.shape), np.uint8)
    actions = np.full((count, length, *world.action_shape), world.no_action, world.action_dtype)
    policy = world.make_policy(env, spec)
    truth = world.allocate_truth(env, count, length) if spec.ground_truth else {}
    try:
        for sequence in range(count):
            env_seed, policy_seed = rng.integers(0, 2**63 - 1, 2)
            frames[sequence, 0], info = env.reset(seed=int(env_seed))
            if truth:
                world.record_truth(truth, env, info, sequence, 0)
            policy.reset(info, np.random.default_rng(int(policy_seed)))
            for t in range(1, length):
                action = policy(info)
                frames[sequence, t], _, _, _, info = env.step(action)
                actions[sequence, t] = action
                if truth:
                    world.record_truth(truth, env, info, sequence, t)
    finally:
        env.close()
    return {"frames": frames, "actions": actions, **truth}


def write_shard(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Writes arrays as an uncompressed ``.npz`` with fixed timestamps, atomically (temporary file + rename).

    Returns:
        The shard's manifest record: ``{"sequences", "bytes", "sha256"}``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            member.external_attr = 0o644 << 16
            archive.writestr(member, buffer.getvalue(), compress_type=zipfile.ZIP_STORED)
    os.replace(tmp, path)
    return {"sequences": len(arrays["frames"]), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def read_shard(path: str | os.PathLike, mmap: bool = True) -> dict[str, np.ndarray]:
    """Opens a shard; arrays are read-only memory maps (``mmap=True``) or loaded into memory.

    Raises:
        ShardError: if the file is missing, truncated, not a shard, or its arrays are inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"shard {str(path)!r} does not exist")
    try:
        arrays = {}
        with zipfile.ZipFile(path) as archive, open(path, "rb") as stream:
            for member in archive.infolist():
                if member.compress_type != zipfile.ZIP_STORED or not member.filename.endswith(".npy"):
                    raise ShardError(f"shard {str(path)!r} has an unexpected member {member.filename!r}")
                stream.seek(member.header_offset)
                local = stream.read(30)
                if len(local) < 30 or local[:4] != b"PK\x03\x04":
                    raise ShardError(f"shard {str(path)!r} is corrupted (bad local header)")
                name_length, extra_length = (
                    int.from_bytes(local[26:28], "little"),
                    int.from_bytes(local[28:30], "little"),
                )
                start = member.header_offset + 30 + name_length + extra_length
                stream.seek(start)
                version = np.lib.format.read_magic(stream)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(stream)
                offset = stream.tell()
                if fortran or offset - start + dtype.itemsize * int(np.prod(shape)) != member.file_size:
                    raise ShardError(f"shard {str(path)!r}: member {member.filename!r} has the wrong size")
                key = member.filename[: -len(".npy")]
                if mmap and int(np.prod(shape)) > 0:
                    arrays[key] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
                else:
                    stream.seek(offset)
                    raw = stream.read(dtype.itemsize * int(np.prod(shape)))
                    arrays[key] = np.frombuffer(raw, dtype=dtype).reshape(shape)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        if isinstance(error, ShardError):
            raise
        raise ShardError(f"shard {str(path)!r} is truncated or corrupted: {error}") from error
    if "frames" not in arrays or "actions" not in arrays:
        raise ShardError(f"shard {str(path)!r} lacks 'frames' or 'actions' (has {sorted(arrays)})")
    if arrays["frames"].shape[:2] != arrays["actions"].shape[:2]:
        raise ShardError(
            f"shard {str(path)!r}: frames {arrays['frames'].shape} and actions {arrays['actions'].shape} disagree"
        )
    return arrays


def load_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """Reads a dataset's ``manifest.json``.

    Raises:
        ShardError: if it is missing or unreadable.
    """
    path = Path(root) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ShardError(
            f"no dataset manifest {str(path)!r}; create the dataset with scripts/make_dataset.py"
        ) from error
    except (OSError, json.JSONDecodeError) as error:
        raise ShardError(f"dataset manifest {str(path)!r} is unreadable: {error}") from error
    if manifest.get("format") != FORMAT:
        raise ShardError(f"{str(path)!r} is not an equiworld video dataset manifest")
    return manifest


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    tmp = root / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, root / MANIFEST_NAME)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _generate_and_write(spec: DatasetSpec, index: int, root: str) -> tuple[int, dict[str, Any]]:
    return index, write_shard(Path(root) / shard_name(index), generate_shard(spec, index))


STALE_AFTER_S = 600.0
"""A temporary shard file untouched for this long is left over from an interrupted run (a live writer renames its file
within seconds of creating it)."""


def remove_stale_temporaries(root: str | os.PathLike, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the temporary shard and manifest files that interrupted runs left in ``root``; returns them.

    Files younger than ``stale_after_s`` are kept: another process (or machine sharing the folder) may be writing them.
    """
    now = time.time()
    removed = []
    for path in Path(root).glob(".*.tmp*"):
        if path.is_file() and now - path.stat().st_mtime > stale_after_s:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def generate_dataset(
    spec: DatasetSpec, root: str | os.PathLike, workers: int = 1, shards: list[int] | None = None
) -> Iterator[tuple[int, dict[str, Any], bool]]:
    """Generates (or resumes) a dataset, yielding ``(shard index, record, was_skipped)`` as shards finish.

    Shards whose file already exists are skipped (and recorded if the manifest missed them). The manifest
    is rewritten after every shard and gets ``"complete": true`` at the end.

    Args:
        spec: what to generate.
        root: output directory (created if needed).
        workers: number of worker processes (1 = in this process).
        shards: shard indices to produce (default all), e.g. to split the work over machines.

    Raises:
        ShardError: if ``root`` holds a dataset of a different spec.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if (root / MANIFEST_NAME).exists():
        manifest = load_manifest(root)
        if manifest["spec"] != json.loads(json.dumps(spec.to_json())):
            raise ShardError(
                f"{str(root)!r} holds a dataset with different settings ({manifest['spec']}); "
                "use another output directory"
            )
    else:
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "spec": spec.to_json(), "shards": {}}
    manifest["num_shards"] = num_shards(spec)
    manifest["complete"] = False
    _write_manifest(root, manifest)
    remove_stale_temporaries(root)
    wanted = list(range(num_shards(spec))) if shards is None else sorted(set(shards))
    todo = []
    for index in wanted:
        path = root / shard_name(index)
        if path.is_file():
            if shard_name(index) not in manifest["shards"]:
                manifest["shards"][shard_name(index)] = {
                    "sequences": int(read_shard(path)["frames"].shape[0]),
                    "bytes": path.stat().st_size,
                    "sha256": file_sha256(path),
                }
                _write_manifest(root, manifest)
            yield index, manifest["shards"][shard_name(index)], True
        else:
            todo.append(index)

    def finished(index: int, record: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        manifest["shards"][shard_name(index)] = record
        _write_manifest(root, manifest)
        return index, record, False

    if workers <= 1:
        for index in todo:
            yield finished(*_generate_and_write(spec, index, str(root)))
    elif todo:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_generate_and_write, spec, index, str(root)) for index in todo]
            for future in concurrent.futures.as_completed(futures):
                yield finished(*future.result())
    manifest["complete"] = all(shard_name(i) in manifest["shards"] for i in range(num_shards(spec)))
    _write_manifest(root, manifest)
