"""The results files of the scripts (``docs/<area>/results.json``, or a user's own under ``runs/``): a JSON list of
flat rows, updated by read-modify-write that concurrent writers and readers can share.

Writers take an exclusive ``flock`` on the file's folder, so evaluations that finish together (two runs evaluated
side by side) do not drop each other's rows; the new list goes to a temporary file that replaces the file in one
``os.replace``, so a reader (which takes no lock) or a crash never meets a half-written file.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of the results file at ``path`` (``[]`` if it does not exist or is empty)."""
    path = Path(path)
    text = path.read_text() if path.is_file() else ""
    return json.loads(text) if text.strip() else []


def row_key(row: dict[str, Any], keys: Sequence[str]) -> tuple:
    """The values of ``keys`` in ``row`` as a hashable tuple (absent keys read as ``None``; lists, such as a wind's
    ``[strength, direction]``, as tuples)."""

    def hashable(value: Any) -> Any:
        return tuple(map(hashable, value)) if isinstance(value, list) else value

    return tuple(hashable(row.get(k)) for k in keys)


def upsert_rows(path: str | Path, rows: Sequence[dict[str, Any]], identity: Sequence[str]) -> Path:
    """Add ``rows`` to the results file at ``path`` (created if missing), replacing the rows that have the same
    values of the ``identity`` keys (absent keys read as ``None``); returns the path."""
    path = Path(path)
    keys = {row_key(r, identity) for r in rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        kept = [r for r in read_rows(path) if row_key(r, identity) not in keys]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps([*kept, *rows], indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        os.close(folder)  # releases the lock
    return path
