"""``BatchedMorphologyEnv``: many simulations of one body stepped together, as a Gymnasium ``VectorEnv``.

The physics runs in one :class:`mujoco.batch.Batch` (all simulations on a thread pool, the GIL released, results
bit-identical to a loop of ``MjData``); observations, rewards, terminations and truncations are computed as
vectorized numpy over ``(envs, limbs, ...)``. Only resets run per environment (to draw each episode's start from
that environment's own generator, exactly as :class:`~equiworld.envs.morphology.env.MorphologyEnv` does), so the
batched env equals ``SyncVectorEnv`` over single envs with ``autoreset_mode=SAME_STEP``, seeds ``seed + i``,
observation for observation (tested to 1e-12).

>>> import gymnasium as gym
>>> import equiworld.envs  # noqa: F401
>>> envs = gym.make_vec("equiworld/Hopper3D_3_shin-v0", num_envs=4, vectorization_mode="vector_entry_point")
>>> obs, info = envs.reset(seed=0)
>>> obs["vectors"].shape
(4, 3, 8, 3)
>>> obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
>>> reward.shape, sorted(k for k in info if k.startswith("reward_"))
((4,), ['reward_alive', 'reward_ctrl', 'reward_heading', 'reward_progress'])
>>> envs.close()
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import mujoco.batch
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from .. import validation as check
from .catalog import MAX_LINEAR_SPEED, SCALAR_SLOTS, VECTOR_SLOTS, Slot
from .env import RESET_OPTIONS, REWARD_TERMS, MorphologyEnv

__all__ = ["BatchedMorphologyEnv", "ConcatVectorEnv", "check_num_envs"]

_STEP_INFO_KEYS = (
    *(f"reward_{term}" for term in REWARD_TERMS),
    "unstable",
    "action_clipped",
    "distance_to_target",
    "targets_reached",
    "progress",
)
_RESET_OPTIONS = (*RESET_OPTIONS, "reset_mask")


def seed_list(seed: int | Sequence[int | None] | None, num_envs: int) -> list[int | None]:
    """One seed per env: ``int`` -> ``seed + i`` (SB3's and Gymnasium's convention), ``None`` -> all ``None``, a
    sequence as given (its length checked)."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return [int(seed) + i for i in range(num_envs)]
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"seed must be an int, None or a sequence of {num_envs} seeds, got {seed!r}")
    return seeds


def check_num_envs(num_envs: Any, name: str = "num_envs") -> int:
    """``num_envs`` as a positive ``int``, or a ``ValueError`` naming the argument."""
    try:
        return check.integer(name, num_envs, low=1)
    except TypeError as error:
        raise ValueError(str(error)) from None


class BatchedMorphologyEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of one morphology env, stepped by MuJoCo's batch API.

    Every copy follows :class:`~equiworld.envs.morphology.env.MorphologyEnv` exactly (observation, reward terms,
    termination, the 1000-step truncation, the ``unstable`` truncation); see that class for their definitions. It
    is a Gymnasium 1.x vector env with ``autoreset_mode = SAME_STEP``: when copy ``i`` ends, its last observation
    and info are in ``info["final_obs"][i]`` / ``info["final_info"]`` and the returned observation is the first of
    its next episode (the layout of ``SyncVectorEnv``'s infos: an array per key with a ``"_key"`` mask).

    Args:
        morphology: A morphology name, e.g. ``"hopper_5_full"``.
        num_envs: Number of simulations (a positive integer).
        max_episode_steps: Truncation length (the registration's 1000); ``None`` never truncates by time.
        max_limbs: Pad observations and actions to this many limbs with masks, as
            :class:`~equiworld.envs.morphology.wrappers.PadMorphology` does (``None``: no padding).
        nthread: Threads of the batch (``0``: every CPU).
        **env_kwargs: Keywords of :class:`~equiworld.envs.morphology.env.MorphologyEnv` (``task``, reward weights,
            ``friction_cone``, ...; rendering keywords are not accepted).

    Raises:
        ValueError: For a bad ``num_envs``, ``max_limbs`` or any keyword ``MorphologyEnv`` refuses.

    Reset options (``reset(options=...)``): ``yaw`` and ``target_direction`` as a number (every env) or an array of
    ``num_envs`` numbers (one per env), and ``reset_mask`` (bool array) to reset only some envs.

    Actions: ``(num_envs, 3 (n_limbs - 1))`` (padded: ``3 (max_limbs - 1)``, the padded entries ignored); a wrong
    shape or a non-finite entry raises ``ValueError`` before anything is simulated; values outside [-1, 1] are
    clipped and counted in ``info["action_clipped"]``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        morphology: str = "walker_7_full",
        num_envs: int = 1,
        *,
        max_episode_steps: int | None = 1000,
        max_limbs: int | None = None,
        nthread: int = 0,
        **env_kwargs: Any,
    ) -> None:
        num_envs = check_num_envs(num_envs)
        for key in (
            "render_mode",
            "width",
            "height",
            "camera_distance",
            "shadows",
            "reflections",
            "multisample",
        ):
            if key in env_kwargs:
                raise ValueError(f"BatchedMorphologyEnv does not render; {key!r} is not accepted")
        if max_episode_steps is not None:
            max_episode_steps = check.integer("max_episode_steps", max_episode_steps, low=1)
        self.reference = MorphologyEnv(morphology, **env_kwargs)
        ref = self.reference
        n = ref.n_limbs
        if max_limbs is not None:
            max_limbs = check.integer(
                f"max_limbs (at least the {n} limbs of {ref.morphology.name})", max_limbs, low=n
            )
        self.morphology = ref.morphology  # the catalog entry, as MorphologyEnv.morphology
        self.n_limbs, self.max_limbs = n, max_limbs
        self.num_envs = num_envs
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.model = ref.model
        self.frame_skip, self.dt = ref.frame_skip, ref.dt
        self.render_mode = None
        self.metadata = {**self.metadata, "render_fps": ref.metadata["render_fps"]}

        self.batch = mujoco.batch.Batch(self.model, nsim=num_envs, nthread=int(nthread))
        b = self.batch
        self._qpos, self._qvel, self._ctrl = b.bind("qpos"), b.bind("qvel"), b.bind("ctrl")
        self._xpos, self._xmat, self._cvel = b.bind("xpos"), b.bind("xmat"), b.bind("cvel")
        self._subtree_com, self._xaxis = b.bind("subtree_com"), b.bind("xaxis")

        self._nu = self.model.nu
        self._setup_spaces()
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._targets = np.zeros((num_envs, 2))
        self._targets_reached = np.zeros(num_envs, dtype=int)
        self._elapsed = np.zeros(num_envs, dtype=int)
        self._last_obs: dict[str, np.ndarray] | None = None
        self._front_thighs = np.asarray(ref._front_thighs, dtype=int)
        self.closed = False

    # --- spaces and padding --------------------------------------------------------------------------

    def _setup_spaces(self) -> None:
        ref, n, m = self.reference, self.n_limbs, self.max_limbs
        if m is None:
            single_obs = ref.observation_space
            single_act = ref.action_space
            self._graph = {k: v.copy() for k, v in ref.graph.items()}
            self._masks: dict[str, np.ndarray] = {}
        else:
            from .wrappers import PadMorphology

            pad = PadMorphology(ref, m)
            single_obs, single_act = pad.observation_space, pad.action_space
            padded = pad._pad(
                {
                    **ref.graph,
                    "vectors": np.zeros((n, len(VECTOR_SLOTS), 3)),
                    "scalars": np.zeros((n, len(SCALAR_SLOTS))),
                }
            )
            self._graph = {k: padded[k] for k in ref.graph}
            self._masks = {"limb_mask": padded["limb_mask"], "action_mask": padded["action_mask"]}
        self.single_observation_space = single_obs
        self.single_action_space = single_act
        self.observation_space = batch_space(single_obs, self.num_envs)
        self.action_space = batch_space(single_act, self.num_envs)
        self._limbs_padded = m if m is not None else n
        # the constant keys, stacked once; each step hands out a fresh copy
        self._constant = {
            key: np.broadcast_to(value, (self.num_envs, *value.shape)).copy()
            for key, value in {**self._graph, **self._masks}.items()
        }
        self._vector_template = np.zeros((self.num_envs, self._limbs_padded, len(VECTOR_SLOTS), 3))
        self._vector_template[:, :n, Slot.GRAVITY] = ref._vector_template[0, Slot.GRAVITY]
        scalars = np.zeros((self._limbs_padded, len(SCALAR_SLOTS)))
        scalars[:n] = ref._static_scalars
        self._scalar_template = np.broadcast_to(scalars, (self.num_envs, *scalars.shape)).copy()

    # --- Gymnasium vector API ------------------------------------------------------------------------

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start new episodes in every env (or in those of ``options["reset_mask"]``).

        Args:
            seed: ``int``: env ``i`` is seeded with ``seed + i``; a sequence: one seed (or ``None``) per env.
            options: ``yaw`` / ``target_direction`` (a number or one per env) and ``reset_mask``.

        Returns:
            The batched observation and the info (``target``, ``yaw`` per reset env, with masks).

        Raises:
            ValueError: For an unknown option, an option or seed list of the wrong length, or a bad mask.
        """
        options = check.known_options(options, _RESET_OPTIONS)
        mask = options.pop("reset_mask", None)
        if mask is None:
            ids = np.arange(self.num_envs)
        else:
            mask = np.asarray(mask)
            if mask.dtype != np.bool_ or mask.shape != (self.num_envs,) or not mask.any():
                raise ValueError(
                    f"reset_mask must be a bool array of shape ({self.num_envs},) with a True entry, got {mask!r}"
                )
            ids = np.flatnonzero(mask)
        seeds = seed_list(seed, self.num_envs)
        per_env = {}
        for key, value in options.items():
            value = check.finite_array(f"reset option {key!r}", value)
            if value.ndim == 0:
                value = np.full(self.num_envs, float(value))
            if value.shape != (self.num_envs,):
                raise ValueError(
                    f"reset option {key!r} must be a number or an array of {self.num_envs} numbers, "
                    f"got shape {value.shape}"
                )
            per_env[key] = value
        for i in ids:
            if seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(seeds[i])
        info = self._reset_envs(ids, {k: v[ids] for k, v in per_env.items()})
        self._last_obs = self._observe()
        return self._copy_obs(self._last_obs), info

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env once (``frame_skip`` physics steps) and reset the ones whose episode ended.

        Raises:
            ValueError: For a wrong action shape or a non-finite entry (nothing is simulated).
            RuntimeError: If called before :meth:`reset`.
        """
        if self._last_obs is None:
            raise RuntimeError("call reset() before step()")
        actions = check.numeric_array(f"{self.morphology.name}: actions", actions)
        if actions.shape != self.action_space.shape:
            raise ValueError(
                f"{self.morphology.name}: expected actions of shape {self.action_space.shape} ({self.num_envs} envs), "
                f"got shape {actions.shape}"
            )
        actions = actions[:, : self._nu]
        finite = np.isfinite(actions)
        if not finite.all():
            bad = sorted({int(i) for i in np.flatnonzero(~finite.all(axis=1))})
            raise ValueError(f"{self.morphology.name}: actions of envs {bad} have non-finite entries")
        ref = self.reference
        clipped = np.clip(actions, -1.0, 1.0)
        n_clipped = np.count_nonzero(clipped != actions, axis=1)
        mat = self._xmat[:, 1]
        hx, hy = mat[:, 0].copy(), mat[:, 3].copy()
        norm = np.hypot(hx, hy)
        positive = norm > 0
        hx[positive] /= norm[positive]
        hy[positive] /= norm[positive]
        xy0 = self._qpos[:, 0:2].copy()

        self._ctrl[:] = clipped
        self.batch.step(nstep=self.frame_skip, stage=mujoco.mjtStage.mjSTAGE_VEL)
        self._elapsed += 1

        qpos, qvel = self._qpos, self._qvel
        xy1 = qpos[:, 0:2]
        with np.errstate(invalid="ignore", over="ignore"):  # unstable envs: their rewards are replaced below
            unstable = ~np.isfinite(np.einsum("ij,ij->i", qpos, qpos) + np.einsum("ij,ij->i", qvel, qvel))
            terms, progress, dist_after = ref.reward_terms(self._targets.T, xy0.T, xy1.T, (hx, hy), clipped)
        reward = sum(terms[term] for term in REWARD_TERMS)
        terminated = self._has_fallen()
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:
            truncated |= self._elapsed >= self.max_episode_steps

        reached = np.flatnonzero((dist_after < ref.waypoint_radius) & ~unstable)
        for i in reached:
            self._targets[i] = ref.next_target(self._targets[i], xy1[i].copy(), self._rngs[i])
            self._targets_reached[i] += 1
        obs = self._observe()
        step_info = {
            **{f"reward_{term}": terms[term] for term in REWARD_TERMS},
            "unstable": unstable,
            "action_clipped": n_clipped.astype(int),
            "distance_to_target": dist_after,
            "targets_reached": self._targets_reached.copy(),
            "progress": progress,
        }
        if unstable.any():
            # as MorphologyEnv: the last finite observation, zero reward, truncated, no distance
            bad = np.flatnonzero(unstable)
            warnings.warn(
                f"{self.morphology.name}: the simulations of envs {bad.tolist()} became unstable (non-finite "
                "state); truncated with info['unstable'] = True and reset",
                RuntimeWarning,
                stacklevel=2,
            )
            for key in obs:
                obs[key][bad] = self._last_obs[key][bad]
            for key in (*(f"reward_{term}" for term in REWARD_TERMS), "progress"):
                step_info[key][bad] = 0.0
            reward[bad] = 0.0
            terminated[bad] = False
            truncated[bad] = True
        done = terminated | truncated
        info = self._vector_info(step_info, ~done, unstable)
        if done.any():
            ids = np.flatnonzero(done)
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in ids:
                final_obs[i] = {key: value[i].copy() for key, value in obs.items()}
            final_info = self._vector_info(step_info, done, unstable)
            reset_info = self._reset_envs(ids, {})
            fresh = self._observe()
            for key in obs:
                obs[key][ids] = fresh[key][ids]
            info.update(reset_info)
            info.update(
                final_obs=final_obs, _final_obs=done.copy(), final_info=final_info, _final_info=done.copy()
            )
        self._last_obs = obs
        return self._copy_obs(obs), reward, terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        """Free the batch and the reference env."""
        self.reference.close()
        self.batch = None

    # --- pieces --------------------------------------------------------------------------------------

    def _reset_envs(self, ids: np.ndarray, options: dict[str, np.ndarray]) -> dict[str, Any]:
        """Draw and set new starts for ``ids`` (per env, from each env's generator); returns the reset info."""
        ref = self.reference
        starts = []
        for k, i in enumerate(ids):
            opts = {key: value[k] for key, value in options.items()}
            starts.append(ref.sample_start(self._rngs[i], opts))
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        self._qpos[ids] = np.stack([s[0] for s in starts])
        self._qvel[ids] = np.stack([s[1] for s in starts])
        self.batch.forward(ids)
        yaw = np.zeros(self.num_envs)
        for (_, _, start_yaw, direction), i in zip(starts, ids, strict=True):
            self._targets[i] = ref.first_target(self._qpos[i, 0:2].copy(), direction, self._rngs[i])
            yaw[i] = start_yaw
        self._targets_reached[ids] = 0
        self._elapsed[ids] = 0
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[ids] = True
        target = np.where(mask[:, None], self._targets, 0.0)
        return {"target": target, "_target": mask, "yaw": yaw, "_yaw": mask.copy()}

    def _vector_info(self, values: dict[str, np.ndarray], mask: np.ndarray, unstable: np.ndarray) -> dict:
        info: dict[str, Any] = {}
        for key in _STEP_INFO_KEYS:
            key_mask = mask & ~unstable if key == "distance_to_target" else mask
            if not key_mask.any():
                continue
            value = np.array(values[key])
            value[~key_mask] = 0
            info[key], info[f"_{key}"] = value, key_mask.copy()
        return info

    def _has_fallen(self) -> np.ndarray:
        r = self.reference.rules
        mat = self._xmat[:, 1]
        qpos, qvel = self._qpos, self._qvel
        fallen = np.zeros(self.num_envs, dtype=bool)
        with np.errstate(invalid="ignore"):
            if r.max_tilt is not None:
                fallen |= np.arccos(np.clip(mat[:, 8], -1.0, 1.0)) >= r.max_tilt
            if r.max_abs_state is not None:
                fallen |= np.abs(qpos[:, 3:]).max(axis=1) >= r.max_abs_state
                fallen |= np.abs(qvel).max(axis=1) >= r.max_abs_state
            if r.max_pitch_roll is not None:
                pitch = np.arctan2(-mat[:, 6], np.hypot(mat[:, 7], mat[:, 8]))
                roll = np.arctan2(mat[:, 7], mat[:, 8])
                fallen |= (np.abs(pitch) >= r.max_pitch_roll) | (np.abs(roll) >= r.max_pitch_roll)
            height = qpos[:, 2]
            if self._front_thighs.size:
                height = np.minimum(height, self._xpos[:, self._front_thighs, 2].min(axis=1))
            low, high = self.reference._torso_height_band
            if low is not None:
                fallen |= height <= low
            if high is not None:
                fallen |= height >= high
            if r.min_qvel_sq is not None:
                fallen |= np.einsum("ij,ij->i", qvel, qvel) <= r.min_qvel_sq
        return fallen

    def _observe(self) -> dict[str, np.ndarray]:
        ref, n = self.reference, self.n_limbs
        xpos, cvel = self._xpos[:, 1:], self._cvel[:, 1:]
        vectors = self._vector_template.copy()
        real = vectors[:, :n]
        np.subtract(xpos, xpos[:, :1], out=real[:, :, Slot.POSITION])
        towards = self._targets - xpos[:, 0, 0:2]
        dist = np.hypot(towards[:, 0], towards[:, 1])
        positive = dist > 0
        real[positive, :, Slot.TARGET_DIRECTION, 0:2] = (towards[positive] / dist[positive, None])[:, None, :]
        real[:, :, Slot.ANGULAR_VELOCITY] = cvel[:, :, 0:3]
        # velocity of each limb frame's origin: com-based linear velocity + angular velocity x offset
        w, r = cvel[:, :, 0:3], xpos - self._subtree_com[:, 1][:, None, :]
        lin = np.cross(w, r) + cvel[:, :, 3:6]
        speed_sq = np.einsum("elk,elk->el", lin, lin)
        fast = speed_sq > MAX_LINEAR_SPEED**2
        if fast.any():  # clip the norm, not the components: stays equivariant
            lin[fast] *= (MAX_LINEAR_SPEED / np.sqrt(speed_sq[fast]))[:, None]
        real[:, :, Slot.LINEAR_VELOCITY] = lin
        real[:, 1:, Slot.HINGE_AXES] = self._xaxis[:, 1:].reshape(self.num_envs, n - 1, 3, 3)

        scalars = self._scalar_template.copy()
        angles = self._qpos[:, 7:].reshape(self.num_envs, n - 1, 3)
        scalars[:, 1:n, Slot.ANGLES] = angles
        scalars[:, 1:n, Slot.NORMALIZED_ANGLES] = (angles - ref._range_low) / ref._range_span
        scalars[:, :n, Slot.HEIGHT] = xpos[:, :, 2]
        obs = {"vectors": vectors, "scalars": scalars}
        obs.update(self._constant)
        return obs

    def _copy_obs(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in obs.items()}


class ConcatVectorEnv(gym.vector.VectorEnv):
    """Several vector envs with the same single spaces side by side, as one vector env (e.g. one
    :class:`BatchedMorphologyEnv` per body of a suite, all padded to the same limb count).

    Env ``k`` of part ``p`` is env ``offset_p + k`` of the whole; ``reset(seed=s)`` seeds env ``i`` with ``s + i``.
    Infos are merged key by key with their masks.

    Raises:
        ValueError: If the parts are empty or their single spaces differ.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(self, parts: Sequence[gym.vector.VectorEnv]) -> None:
        if not parts:
            raise ValueError("ConcatVectorEnv needs at least one vector env")
        first = parts[0]
        for part in parts[1:]:
            if (
                part.single_observation_space != first.single_observation_space
                or part.single_action_space != first.single_action_space
            ):
                raise ValueError("ConcatVectorEnv: every part must have the same single spaces (pad them)")
        self.parts = list(parts)
        self.num_envs = sum(p.num_envs for p in self.parts)
        self._bounds = np.cumsum([0] + [p.num_envs for p in self.parts])
        self.single_observation_space = first.single_observation_space
        self.single_action_space = first.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        self.closed = False

    @property
    def morphologies(self) -> list[Any]:
        """The morphology (catalog entry) of every env, in order."""
        return [p.morphology for p in self.parts for _ in range(p.num_envs)]

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset every part; per-env option arrays and ``reset_mask`` are split between the parts."""
        seeds = seed_list(seed, self.num_envs)
        results = []
        for p, (lo, hi) in enumerate(zip(self._bounds[:-1], self._bounds[1:], strict=True)):
            opts = {}
            for key, value in (options or {}).items():
                value = np.asarray(value)
                opts[key] = value[lo:hi] if value.ndim == 1 and value.shape[0] == self.num_envs else value
            if "reset_mask" in opts and not np.asarray(opts["reset_mask"]).any():
                results.append(None)
                continue
            results.append(self.parts[p].reset(seed=seeds[lo:hi], options=opts or None))
        obs_parts = [r[0] if r is not None else self.parts[p]._last_obs for p, r in enumerate(results)]
        infos = [r[1] if r is not None else {} for r in results]
        return self._join(obs_parts), self._merge(infos)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every part with its slice of ``actions``."""
        actions = np.asarray(actions)
        if actions.shape != self.action_space.shape:
            raise ValueError(
                f"expected actions of shape {self.action_space.shape}, got shape {actions.shape}"
            )
        results = [
            part.step(actions[lo:hi])
            for part, lo, hi in zip(self.parts, self._bounds[:-1], self._bounds[1:], strict=True)
        ]
        obs = self._join([r[0] for r in results])
        reward, terminated, truncated = (np.concatenate([r[k] for r in results]) for k in (1, 2, 3))
        return obs, reward, terminated, truncated, self._merge([r[4] for r in results])

    def close_extras(self, **kwargs: Any) -> None:
        """Close every part."""
        for part in self.parts:
            part.close()

    def _join(self, parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _merge(self, infos: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        keys = [k for info in infos for k in info if not k.startswith("_")]
        for key in dict.fromkeys(keys):
            values, masks = [], []
            for part, info in zip(self.parts, infos, strict=True):
                if key in info:
                    values.append(info[key])
                    masks.append(info[f"_{key}"])
                else:
                    values.append(None)
                    masks.append(np.zeros(part.num_envs, dtype=bool))
            if isinstance(next(v for v in values if v is not None), dict):
                merged[key] = self._merge([v if v is not None else {} for v in values])
            else:
                template = next(v for v in values if v is not None)
                filled = [
                    v if v is not None else np.zeros((p.num_envs, *template.shape[1:]), dtype=template.dtype)
                    for v, p in zip(values, self.parts, strict=True)
                ]
                if template.dtype == object:
                    filled = [
                        v if v is not None else np.full(p.num_envs, None, dtype=object)
                        for v, p in zip(values, self.parts, strict=True)
                    ]
                merged[key] = np.concatenate(filled)
            merged[f"_{key}"] = np.concatenate(masks)
        return merged
