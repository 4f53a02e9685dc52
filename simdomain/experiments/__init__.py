"""Batch experiments: sweeps, replications and sensitivity analyses of a scenario.

Define an experiment in YAML (:mod:`simdomain.experiments.spec`), run it with
:func:`run_experiment` (or ``simdomain experiment FILE``) on all cores or a Dask
cluster, resume it after a crash, and read the tidy results with :func:`load_results`.
Names load on first use, so importing simdomain does not import SciPy or SALib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simdomain.experiments.runner import ExperimentReport as ExperimentReport
    from simdomain.experiments.runner import run_experiment as run_experiment
    from simdomain.experiments.spec import Experiment as Experiment
    from simdomain.experiments.spec import ExperimentSpec as ExperimentSpec
    from simdomain.experiments.spec import load_experiment as load_experiment
    from simdomain.experiments.store import ExperimentResults as ExperimentResults
    from simdomain.experiments.store import load_results as load_results

_HOMES = {
    "ExperimentReport": "runner",
    "run_experiment": "runner",
    "Experiment": "spec",
    "ExperimentSpec": "spec",
    "load_experiment": "spec",
    "ExperimentResults": "store",
    "load_results": "store",
}

__all__ = [
    "Experiment",
    "ExperimentReport",
    "ExperimentResults",
    "ExperimentSpec",
    "load_experiment",
    "load_results",
    "run_experiment",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
