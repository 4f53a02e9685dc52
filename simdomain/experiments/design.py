"""Design points: the factor values of every run, and every run's seed.

Samplers draw points in the unit cube, one coordinate per factor, and map each
coordinate to the factor: ``low + u (high - low)`` for a range, the
``floor(u (high - low + 1))``-th whole number of an integer range, the
``floor(u n)``-th of ``n`` listed values. Latin hypercube and Sobol points come from
:mod:`scipy.stats.qmc`; Sobol (Saltelli) and Morris sensitivity designs from SALib,
whose unit sample is kept for the analysis.

Seeds: run ``i`` simulates with the seed drawn from
``SeedSequence(experiment_seed, spawn_key=(0, i))``; the samplers use
``spawn_key=(1,)``. A run's results therefore depend on the experiment seed and its
index only, not on which worker ran it or when.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample
from scipy.stats import qmc

from simdomain.experiments.spec import SENSITIVITY_DESIGNS, ExperimentSpec, Factor

RUN_STREAM, DESIGN_STREAM = 0, 1


@dataclass(frozen=True)
class DesignPoints:
    """What each run of an experiment simulates.

    Attributes
    ----------
    values
        Per run, each factor's value (by factor label), as the scenario receives it.
    seeds
        Per run, the seed passed to :func:`simdomain.simulate`.
    unit
        For sensitivity designs, SALib's sample in the unit cube (runs x factors).
    """

    values: list[dict[str, Any]]
    seeds: list[int]
    unit: np.ndarray | None

    def __len__(self) -> int:
        return len(self.values)

    def table(self) -> pd.DataFrame:
        """One row per run: ``run``, ``seed`` and a column per factor.

        A factor whose values are all numbers (or all text, or all booleans) keeps that
        type; other values (lists, dates) are written as JSON text.
        """
        labels = list(self.values[0]) if self.values else []
        columns: dict[str, Any] = {"run": np.arange(len(self.values), dtype=np.int64),
                                   "seed": np.array(self.seeds, dtype=np.int64)}
        for label in labels:
            columns[label] = _column([row[label] for row in self.values])
        return pd.DataFrame(columns)


def build_design(spec: ExperimentSpec) -> DesignPoints:
    """The design points of an experiment, in run order."""
    too_large = spec.size_problem(force=True)
    if too_large:
        raise ValueError(too_large)
    factors = spec.factors
    unit = None
    if spec.design.kind == "grid":
        combos = itertools.product(*(_grid_axis(f) for f in factors))
        values = [{f.label: v for f, v in zip(factors, combo)} for combo in combos]
    else:
        cube = _unit_sample(spec)
        values = [{f.label: _from_unit(f, float(u)) for f, u in zip(factors, row)} for row in cube]
        unit = cube if spec.design.kind in SENSITIVITY_DESIGNS else None
    return DesignPoints(values, [run_seed(spec.seed, i) for i in range(len(values))], unit)


def run_seed(seed: int, run: int) -> int:
    """The simulation seed of run ``run`` (a non-negative 63-bit integer)."""
    state = np.random.SeedSequence(seed, spawn_key=(RUN_STREAM, run)).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def salib_problem(spec: ExperimentSpec) -> dict[str, Any]:
    """The SALib problem: one unit-interval variable per factor."""
    names = [f.label for f in spec.factors]
    return {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}


def _grid_axis(factor: Factor) -> list[Any]:
    if factor.values is not None:
        return list(factor.values)
    assert factor.low is not None and factor.high is not None and factor.levels is not None
    if factor.integer and factor.grid_levels < factor.levels:  # every whole number is a point
        return list(range(int(factor.low), int(factor.high) + 1))
    points = np.linspace(factor.low, factor.high, factor.levels)
    if factor.integer:
        return sorted({round(p) for p in points})
    return [float(p) for p in points]


def _unit_sample(spec: ExperimentSpec) -> np.ndarray:
    design, dims = spec.design, len(spec.factors)
    assert design.samples is not None  # checked by Design
    stream = np.random.SeedSequence(spec.seed, spawn_key=(DESIGN_STREAM,))
    if design.kind == "latin_hypercube":
        return qmc.LatinHypercube(d=dims, rng=np.random.default_rng(stream)).random(design.samples)
    if design.kind == "sobol_sequence":
        sobol = qmc.Sobol(d=dims, scramble=True, rng=np.random.default_rng(stream))
        return sobol.random_base2(int(math.log2(design.samples)))
    seed = int(stream.generate_state(1)[0])
    if design.kind == "sobol_sensitivity":
        return sobol_sample.sample(salib_problem(spec), design.samples,
                                   calc_second_order=design.second_order, seed=seed)
    return morris_sample.sample(salib_problem(spec), design.samples,
                                num_levels=design.levels, seed=seed)


def _from_unit(factor: Factor, u: float) -> Any:
    if factor.values is not None:
        return factor.values[min(int(u * len(factor.values)), len(factor.values) - 1)]
    assert factor.low is not None and factor.high is not None
    if factor.integer:
        span = int(factor.high - factor.low)
        return int(factor.low) + min(int(u * (span + 1)), span)
    return factor.low + u * (factor.high - factor.low)


def _column(values: list[Any]) -> Any:
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.float64)
    if all(isinstance(v, str) for v in values):
        return pd.array(values, dtype="string")
    return pd.array([json.dumps(v, default=str, sort_keys=True) for v in values], dtype="string")
