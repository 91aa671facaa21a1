"""Train a world model: 2D (FloWM, its ablations or ConvLSTM) on MNIST World, or 3D (FloWM 3D, the learned-memory
baseline or ConvLSTM) on Block World (``--world block``).

    python scripts/make_dataset.py --world mnist --preset small --out data/mnist_small   # once
    python scripts/train_world_model.py --model flowm --out runs/wm/flowm
    torchrun --nproc-per-node 2 scripts/train_world_model.py --model flowm   # data parallel, same script

    python scripts/make_dataset.py --world block --preset small            # Block World (3D), once
    python scripts/train_world_model.py --world block --model flowm3d --out runs/wm_block/flowm3d

Every option is a field of ``equiworld.world_models.training.TrainSettings`` (``--help`` lists them).
"""

from __future__ import annotations

import json
import logging

import tyro

from equiworld.world_models.training import TrainSettings, train_world_model


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    final = train_world_model(tyro.cli(TrainSettings))
    print(json.dumps(final))


if __name__ == "__main__":
    main()
