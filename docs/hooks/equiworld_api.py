"""MkDocs hook: let mkdocstrings (griffe) find the `equiworld` namespace package without importing it.

pyproject.toml maps each subpackage to a top-level folder (`envs/` is `equiworld.envs`, ...), so there is no
`equiworld/` folder for griffe's static analysis to find, and the editable install's import hook is invisible to
it. Before each build this hook writes `build/mkdocs_api/equiworld/`, one symlink per subpackage mapped in
`[tool.setuptools] package-dir`, which mkdocs.yml gives the python handler as its search path.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "build" / "mkdocs_api" / "equiworld"


def on_startup(command: str, dirty: bool) -> None:
    with open(ROOT / "pyproject.toml", "rb") as file:
        package_dir = tomllib.load(file)["tool"]["setuptools"]["package-dir"]
    PACKAGE.mkdir(parents=True, exist_ok=True)
    for old in PACKAGE.iterdir():
        if old.is_symlink():
            old.unlink()
    for name, folder in package_dir.items():
        parts = name.split(".")
        target = ROOT / folder
        # only the direct subpackages: a nested one lives inside its parent's folder
        if len(parts) == 2 and parts[0] == "equiworld" and target.is_dir():
            (PACKAGE / parts[1]).symlink_to(target, target_is_directory=True)
