"""The registered environments as markdown tables, read from Gymnasium's registry: every morphology ID (family,
limbs, actions, whether a suite holds it out) and the suites.

    python scripts/list_envs.py
"""

from __future__ import annotations

import gymnasium as gym

import equiworld.envs  # noqa: F401  (registers the environments)
from equiworld.envs.morphology import SUITES, get_morphology


def morphology_table() -> str:
    held_out = {m for suite in SUITES.values() for m in suite.zero_shot}
    lines = ["| environment ID | family | limbs | actions | split |", "|---|---|---|---|---|"]
    for env_id, spec in gym.registry.items():
        name = spec.kwargs.get("morphology") if env_id.startswith("equiworld/") else None
        if name is None:
            continue
        n = get_morphology(name).n_limbs
        family = env_id.split("/")[1].split("3D_")[0]
        split = "zero-shot" if name in held_out else "train"
        lines.append(f"| `{env_id}` | {family} | {n} | {3 * (n - 1)} | {split} |")
    return "\n".join(lines)


def suite_table() -> str:
    lines = [
        "| suite | families | training morphologies | zero-shot morphologies |",
        "|---|---|---|---|",
    ]
    for name, suite in SUITES.items():
        lines.append(
            f"| `{name}` | {', '.join(suite.families)} | {len(suite.train)} | {len(suite.zero_shot)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(suite_table())
    print()
    print(morphology_table())
