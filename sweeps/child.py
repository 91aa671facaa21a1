"""Start a trial's script as the child of the Ray task that runs it: ``python -m equiworld.sweeps.child SCRIPT
ARGS...`` asks Linux to end it when the task's worker dies (a killed driver or worker takes its trials along, instead
of leaving them running unseen), gives it the priority the sweep asked for (Ray runs its workers at a lower one),
then becomes the script (``exec``)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

from equiworld.sweeps.trainers import PRIORITY_VARIABLE


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m equiworld.sweeps.child SCRIPT [ARGS...]")
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if PRIORITY_VARIABLE in os.environ:
        with contextlib.suppress(OSError, PermissionError):  # raising a priority may need privileges
            os.setpriority(os.PRIO_PROCESS, 0, int(os.environ[PRIORITY_VARIABLE]))
    os.execv(sys.executable, [sys.executable, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
