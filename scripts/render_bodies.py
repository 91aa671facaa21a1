"""Render a picture of every full 3D-SGRL body (and optionally every variant) for the README.

MUJOCO_GL=egl python scripts/render_bodies.py            # docs/images/<morphology>.png for the full bodies
MUJOCO_GL=egl python scripts/render_bodies.py --all      # every morphology of the benchmark
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import mujoco
import numpy as np
import tyro

from equiworld.envs.morphology.catalog import FULL_BODIES, MORPHOLOGIES
from equiworld.envs.morphology.env import MorphologyEnv

DISPLAY_POSE = {  # hinge angles (rad) that part overlapping limbs, applied where the hinge exists
    "right_thigh_joint_y": 0.5,
    "right_shin_joint_y": -0.7,
    "left_thigh_joint_y": -0.2,
    "right_upper_arm_joint_y": 0.5,
}


@dataclass
class Args:
    out_dir: Path = Path("docs/images")
    """Folder to write the PNG files to."""
    all: bool = False
    """Render every morphology, not only the four full bodies."""
    width: int = 320
    """Image width in pixels."""
    height: int = 240
    """Image height in pixels."""
    yaw: float = 0.4
    """Heading of the body (rad) relative to the camera."""
    pose_steps: int = 0
    """Seeded random-action steps before the picture (0 shows the display pose)."""


def render(name: str, args: Args) -> np.ndarray:
    """One morphology near its start pose, rendered with shadows and multisampling."""
    env = MorphologyEnv(
        name,
        render_mode="rgb_array",
        width=args.width,
        height=args.height,
        reset_noise_scale=0.0,
        shadows=True,
        multisample=True,
    )
    env.reset(seed=0, options={"yaw": args.yaw, "target_direction": args.yaw})
    qpos = env.data.qpos.copy()
    for joint, angle in DISPLAY_POSE.items():
        if mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_JOINT, joint) >= 0:
            qpos[env.model.joint(joint).qposadr[0]] = angle
    env.set_state(qpos, env.data.qvel.copy())
    rng = np.random.default_rng(0)
    for _ in range(args.pose_steps):
        env.step(rng.uniform(-0.7, 0.7, env.action_space.shape))
    frame = env.render()
    env.close()
    return frame


def main(args: Args) -> list[Path]:
    args.out_dir.mkdir(parents=True, exist_ok=True)
    names = list(MORPHOLOGIES) if args.all else list(FULL_BODIES.values())
    written = []
    for name in names:
        path = args.out_dir / f"{name}.png"
        iio.imwrite(path, render(name, args))
        written.append(path)
        print(path)
    return written


if __name__ == "__main__":
    main(tyro.cli(Args))
