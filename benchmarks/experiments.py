"""Benchmark: runs per minute of an experiment on 1, 2, ... local workers.

Runs the shipped touch frequency experiment (12 design points x 3 replications of a
year of the social e-commerce scenario) once per worker count, in fresh temporary
folders, and reports runs per minute, the speed-up over the first count, the cores
the run kept busy (CPU time of this process and its workers over wall time), and
whether every count produced the same table::

    python benchmarks/experiments.py                    # 1 and 2 workers
    python benchmarks/experiments.py --workers 1 2 4 8

Wall times include starting the worker processes. The speed-up approaches the number
of workers while it is at most the number of idle cores; on a shared machine, "cores
busy" below the worker count shows the workers waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from pathlib import Path

import pandas as pd

import simdomain
from simdomain.experiments import load_experiment, run_experiment

ROOT = Path(__file__).parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default=str(ROOT / "experiments" / "touch_frequency.yaml"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    experiment = load_experiment(args.experiment)
    print(f"{experiment.spec.name}: cores {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'workers':>7} {'runs':>5} {'seconds':>8} {'runs/min':>9} {'speed-up':>9} "
          f"{'cores busy':>10}")
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        first = None
        for workers in args.workers:
            out = Path(tmp) / f"workers-{workers}"
            cpu = _cpu_seconds()
            report = run_experiment(experiment, out, workers=workers, progress=None)
            busy = (_cpu_seconds() - cpu) / report.seconds
            first = first or report.runs_per_minute
            print(f"{workers:>7} {report.ran:>5} {report.seconds:>8.1f} "
                  f"{report.runs_per_minute:>9.2f} {report.runs_per_minute / first:>8.2f}x "
                  f"{busy:>10.2f}", flush=True)
            tables.append(simdomain.load_results(out).runs)
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])
    print("identical results for every worker count")


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
