"""Imitation of a teacher policy by regression of mean actions: one regression pass (shared with DAgger,
:mod:`equiworld.agents.distill`) and :class:`ImitationCallback`, which keeps a PPO run close to a teacher early on
(kickstarting) — ``train_policy.py --teacher``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from .teachers import Teachers, load_teachers

__all__ = ["ImitationCallback", "regression_pass"]


def regression_pass(
    policy: Any,
    states: dict[str, np.ndarray],
    labels: np.ndarray,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> float:
    """One pass of mean-squared-error regression of ``policy``'s mean actions onto ``labels`` (masked entries of a
    padded suite excluded), in shuffled minibatches; returns the mean loss."""
    count, total = len(labels), 0.0
    order = rng.permutation(count)
    for start in range(0, count, batch_size):
        index = order[start : start + batch_size]
        obs, _ = policy.obs_to_tensor({k: v[index] for k, v in states.items()})
        distribution = policy.get_distribution(obs)
        mean = distribution.mode()
        error = (mean - torch.as_tensor(labels[index], dtype=mean.dtype, device=mean.device)) ** 2
        mask = getattr(distribution, "mask", None)
        loss = (error * mask).sum() / mask.sum() if mask is not None else error.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(index)
    return total / count


class ImitationCallback(BaseCallback):
    """Kickstarting (Schmitt et al. 2018) for SB3's PPO: after every PPO update, the policy's mean actions are
    regressed onto a teacher's on the states of the rollout that update learnt from.

    The order keeps PPO exact: the states and the teacher's labels are taken when a rollout ends, the regression runs
    when the next rollout starts (after PPO's update), so every rollout is collected, and its PPO ratios measured,
    by one and the same policy (an auxiliary phase, as in phasic policy gradient). The regression has its own Adam
    optimizer over the actor (value function and noise excluded), whose learning rate falls linearly from
    ``learning_rate`` to 0 over the first ``steps`` environment steps of the run; after that PPO trains alone. Labels
    are the teacher's deterministic actions clipped to the action space (as :func:`distill_policy` labels them).
    Logs ``imitation/loss`` and ``imitation/learning_rate``.

    With an expert per body (a fleet's folder), each body's states are labelled by its own expert
    (:class:`~equiworld.agents.teachers.Teachers`).

    Args:
        teacher: the teacher's PPO model .zip (any policy on the same observations and actions), its run folder, or
            a folder of one expert per body of the run's env (an expert fleet).
        steps: environment steps over which the imitation fades out (``> 0``).
        learning_rate: the regression's initial learning rate.
        epochs: passes over each rollout's states.
        batch_size: minibatch size of the regression.
        seed: seeds the minibatch order.
    """

    def __init__(
        self,
        teacher: str | Path,
        steps: int,
        learning_rate: float = 3e-4,
        epochs: int = 2,
        batch_size: int = 1024,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("steps", steps), ("epochs", epochs), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"ImitationCallback: {name} must be >= 1, got {value}")
        if not learning_rate > 0:
            raise ValueError(f"ImitationCallback: learning_rate must be > 0, got {learning_rate}")
        self.teacher_path = Path(teacher)
        if not self.teacher_path.exists():
            raise ValueError(f"ImitationCallback: no teacher model at {self.teacher_path}")
        self.loaded = load_teachers([self.teacher_path])
        self.steps, self.learning_rate = int(steps), float(learning_rate)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.rng = np.random.default_rng(seed)
        self.teachers: Teachers | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.pending: tuple[dict[str, np.ndarray], np.ndarray] | None = None

    def _on_training_start(self) -> None:
        bodies = [m.name for m in self.training_env.get_attr("morphology")]
        distinct = list(dict.fromkeys(bodies))
        # the rollout's states are labelled env-major: each body's envs are consecutive, n_steps states each
        self.teachers = Teachers(self.loaded, distinct, len(bodies) // len(distinct) * self.model.n_steps)
        self.teachers.check(self.model.observation_space)
        actor = [
            p for n, p in self.model.policy.named_parameters() if "value" not in n and "log_std" not in n
        ]
        self.optimizer = torch.optim.Adam(actor, lr=self.learning_rate)

    def current_learning_rate(self) -> float:
        """The regression's learning rate at the model's current step count."""
        return self.learning_rate * max(0.0, 1.0 - self.model.num_timesteps / self.steps)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.current_learning_rate() <= 0 or self.teachers is None:
            return
        buffer = self.model.rollout_buffer
        states = {
            k: v.swapaxes(0, 1).reshape(-1, *v.shape[2:]).copy() for k, v in buffer.observations.items()
        }
        self.pending = (states, self.teachers.label(states, self.model.action_space.shape[0]))

    def _on_rollout_start(self) -> None:
        lr = self.current_learning_rate()
        if self.pending is None or self.optimizer is None:
            return
        states, labels = self.pending
        self.pending = None
        if lr <= 0:
            return
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        policy = self.model.policy
        policy.set_training_mode(True)
        losses = [
            regression_pass(policy, states, labels, self.batch_size, self.optimizer, self.rng)
            for _ in range(self.epochs)
        ]
        policy.set_training_mode(False)
        self.logger.record("imitation/loss", losses[-1])
        self.logger.record("imitation/learning_rate", lr)
