"""The world-model interface that every model implements, 2D (MNIST World) and 3D (Block World), and the one
rollout loop they share.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["WorldModel"]


class WorldModel(nn.Module):
    """A recurrent world model. Models implement four steps:

    ``initial_state(frame)`` — the state before anything was seen, in the form ``observe`` accepts;
    ``predict(state, action) -> (frame, update)`` — advance by the world's motion and the observer's action, and
    predict the frame about to be seen; ``observe(update, frame, action) -> state`` — fold in the (observed or
    predicted) frame; ``prepare_actions(actions)`` — validate the environment's actions ``(B, T, A)`` and return
    the per-step form ``predict`` / ``observe`` receive (MNIST World: map displacements; Block World: one-hot).
    :meth:`rollout` runs them: ``context`` observed frames, then ``horizon`` predicted ones fed back.
    """

    def initial_state(self, frames: Tensor) -> object:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, state: object, action: Tensor) -> tuple[Tensor, object]:  # pragma: no cover
        """Advance ``state`` by the world's motion and the observer's ``action``; return the predicted frame and
        the pre-input update."""
        raise NotImplementedError

    def observe(self, update: object, frame: Tensor, action: Tensor) -> object:  # pragma: no cover
        """Fold an (observed or predicted) ``frame`` into the advanced state."""
        raise NotImplementedError

    def prepare_actions(self, actions: Tensor) -> Tensor:  # pragma: no cover - interface
        """Validate the environment's actions and return what ``predict`` / ``observe`` receive per step."""
        raise NotImplementedError

    def _check(self, frames: Tensor, actions: Tensor, context: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def rollout(
        self,
        frames: Tensor,
        actions: Tensor,
        context: int,
        horizon: int | None = None,
        teacher_forcing: float = 0.0,
    ) -> Tensor:
        """Consume ``context`` frames, then predict the next ``horizon`` frames autoregressively.

        Args:
            frames: ``(B, T, C, h, w)`` in [0, 1]; only the first ``context`` are read.
            actions: ``(B, T', A)`` the environment's actions, ``T' >= context + horizon`` (MNIST World: window
                moves ``(dx, dy)``; see :meth:`prepare_actions`).
            context: number of observed frames.
            horizon: number of predicted frames (default ``T' - context``).
            teacher_forcing: probability, per sequence and predicted step, of writing the true frame into the
                memory instead of the prediction (training option; the published Block World recipe uses 0.125).
                Needs ``frames`` to hold all ``context + horizon`` frames when positive.

        Returns:
            ``(B, horizon, C, h, w)`` predictions of frames ``context .. context + horizon - 1``.
        """
        horizon = actions.shape[1] - context if horizon is None else horizon
        self._check(frames[:, :context], actions[:, :context], context)
        if actions.shape[1] < context + horizon:
            raise ValueError(f"need {context + horizon} actions, got {actions.shape[1]}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be a probability in [0, 1], got {teacher_forcing}")
        if teacher_forcing and frames.shape[1] < context + horizon:
            raise ValueError(f"teacher forcing needs all {context + horizon} frames, got {frames.shape[1]}")
        steps = self.prepare_actions(actions[:, : context + horizon])
        state = self.initial_state(frames[:, 0])
        state = self.observe(state, frames[:, 0], steps[:, 0])
        for t in range(1, context):
            _, update = self.predict(state, steps[:, t])
            state = self.observe(update, frames[:, t], steps[:, t])
        predictions = []
        for t in range(context, context + horizon):
            prediction, update = self.predict(state, steps[:, t])
            predictions.append(prediction)
            # The prediction is fed back as the next input, clamped to the range of a real frame.
            fed = prediction.clamp(0, 1)
            if teacher_forcing:
                shape = (fed.shape[0],) + (1,) * (fed.dim() - 1)
                forced = torch.rand(shape, device=fed.device) < teacher_forcing
                fed = torch.where(forced, frames[:, t], fed)
            state = self.observe(update, fed, steps[:, t])
        return torch.stack(predictions, 1)

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """:meth:`rollout` with the same arguments (so that wrappers such as DistributedDataParallel can call the
        model)."""
        return self.rollout(*args, **kwargs)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
