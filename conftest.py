"""Settings for the code fences of README.md and docs/ (run by pytest-markdown-docs): each fence runs as a script
would, so a ``if __name__ == "__main__":`` block in it runs too."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def pytest_markdown_docs_globals():
    return {"__name__": "__main__"}
