"""Agent tests run many tiny forward/backward passes: one torch thread is much faster than several on a
shared CPU (no oversubscription), and the previous setting is restored afterwards."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
