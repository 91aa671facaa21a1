"""Run a sweep of training runs on Ray (a grid of policies x bodies x seeds, world models x seeds, an expert fleet),
or show where it stands. The same spec runs 2 trials at a time here and across a cluster unchanged
(``ray start --head`` on one machine, ``ray start --address <head>:6379`` on the others, then ``RAY_ADDRESS=auto``).

    python scripts/sweep.py sweeps/specs/hopper_walker_policies.toml --max-concurrent 2
    python scripts/sweep.py sweeps/specs/hopper_walker_policies.toml --status
    RAY_ADDRESS=auto python scripts/sweep.py sweeps/specs/experts_walker.toml

Each trial is an ordinary run folder under ``<root>/<sweep>/trials/`` (resumable, evaluable and loadable alone); the
evaluation rows go into ``<root>/<sweep>/results.json`` (and, with ``--publish FILE``, into that file too). Running
the same spec again skips finished trials and resumes interrupted ones from their newest checkpoint; a failing trial
is retried ``retries`` times, then reported (the exit status is 1).
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import sys
from dataclasses import dataclass

import tyro

from equiworld.sweeps import SpecError, format_status, load_spec, run_sweep, sweep_status


@dataclass
class Args:
    spec: tyro.conf.Positional[str]
    """The sweep specification (TOML; see equiworld.sweeps.spec)."""
    root: str = "runs/sweeps"
    """Folder of the sweep folders."""
    status: bool = False
    """Print where every trial stands (done / running / failed / pending, steps, wall-clock, last metric) and exit."""
    max_concurrent: int | None = None
    """Trials at a time (a local Ray gets cpus x this many CPUs); default: as many as the resources allow."""
    address: str | None = None
    """A Ray cluster's address (default: RAY_ADDRESS, else a local Ray instance)."""
    publish: str | None = None
    """Also write the evaluation rows into this results file (e.g. docs/policies/results.json)."""
    progress: bool = True
    """Show a progress bar over the trials."""


def main(args: Args) -> int:
    spec = load_spec(args.spec)
    if args.status:
        print(format_status(sweep_status(spec, args.root)))
        return 0
    result = run_sweep(spec, args.root, args.max_concurrent, args.address, args.publish, args.progress)
    print(format_status(sweep_status(spec, args.root)))
    for name, error in result.failed.items():
        print(f"\nfailed: {name}\n{error}", file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(tyro.cli(Args, description=__doc__)))
    except (SpecError, RuntimeError) as error:
        raise SystemExit(f"sweep.py: {error}") from error
