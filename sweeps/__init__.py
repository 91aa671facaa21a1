"""Sweeps: grids of training runs (policies x bodies x seeds, world models x seeds, expert fleets) on Ray, the same
specification on a laptop (2 trials at a time) and on a cluster (``ray start --head``, then ``RAY_ADDRESS``), each
trial an ordinary, resumable run folder, their evaluation rows in one results file.

``scripts/sweep.py SPEC`` is the command line; Ray is an optional extra (``pip install 'equiworld[sweeps]'``).

>>> from equiworld.sweeps import option_args
>>> option_args({"seed": 0, "progress": False})
['--seed', '0', '--no-progress']
"""

from .run import SweepResult, TrialFailed, TrialState, format_status, run_sweep, sweep_folder, sweep_status
from .spec import TRAINERS, SpecError, SweepSpec, Trial, load_spec, option_args

__all__ = [
    "TRAINERS",
    "SpecError",
    "SweepResult",
    "SweepSpec",
    "Trial",
    "TrialFailed",
    "TrialState",
    "format_status",
    "load_spec",
    "option_args",
    "run_sweep",
    "sweep_folder",
    "sweep_status",
]
