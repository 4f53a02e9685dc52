"""Analysis of an experiment's runs: confidence intervals and sensitivity indices."""

from __future__ import annotations

import numpy as np
import pandas as pd
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from scipy import stats

from simdomain.experiments.design import DesignPoints, salib_problem
from simdomain.experiments.spec import ExperimentSpec

ANALYSIS_STREAM = 2
"""``SeedSequence`` spawn key of the bootstrap of the sensitivity indices."""
SUMMARY_COLUMNS = ["outcome", "n", "mean", "std", "ci_low", "ci_high"]
SENSITIVITY_COLUMNS = ["outcome", "factor", "index", "value", "conf"]


def summarize(runs: pd.DataFrame, factors: list[str], outcomes: list[str],
              level: float = 0.95) -> pd.DataFrame:
    """Mean and ``level`` t-interval of each outcome per design point.

    One row per run (design point) and outcome: the run, its factor values, ``n`` (the
    replications with a value), ``mean``, ``std`` and ``ci_low``/``ci_high``, the
    Student t interval ``mean -/+ t(n - 1) std / sqrt(n)`` (undefined for n < 2).
    """
    by_run = runs.groupby("run", sort=True)
    moments = by_run[outcomes].agg(["count", "mean", "std"])
    moments = moments.stack(level=0, future_stack=True).rename_axis(["run", "outcome"])
    n = moments["count"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = (stats.t.ppf(0.5 + level / 2, n - 1) * moments["std"] / np.sqrt(n)).where(n >= 2)
    table = pd.DataFrame({"n": n, "mean": moments["mean"], "std": moments["std"],
                          "ci_low": moments["mean"] - half, "ci_high": moments["mean"] + half})
    table = table.reset_index().merge(by_run[factors].first().reset_index(), on="run")
    return table[["run", *factors, *SUMMARY_COLUMNS]]


def sensitivity(spec: ExperimentSpec, design: DesignPoints, runs: pd.DataFrame,
                outcomes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Sensitivity indices of each outcome, from a ``sobol_sensitivity`` or ``morris`` design.

    Each run's output is the mean of its replications. Sobol designs give first-order
    (``S1``) and total-order (``ST``) indices, and ``S2`` for pairs (``factor`` is
    ``"a & b"``) with ``second_order``; Morris designs give ``mu``, ``mu_star`` and
    ``sigma`` of the elementary effects with each factor scaled to [0, 1], so an effect
    is the change in the outcome per whole range of the factor. ``conf`` is the
    half-width of the 95% bootstrap interval where SALib gives one.

    Returns
    -------
    indices
        Tidy ``outcome, factor, index, value, conf`` rows.
    notes
        Outcomes that could not be analysed, and why.
    """
    problem = salib_problem(spec)
    names = problem["names"]
    seed = int(np.random.SeedSequence(spec.seed, spawn_key=(ANALYSIS_STREAM,)).generate_state(1)[0])
    means = runs.groupby("run")[outcomes].mean().reindex(range(len(design)))
    rows: list[dict[str, object]] = []
    notes = []
    for outcome in outcomes:
        y = means[outcome].to_numpy(dtype=float)
        missing = int(np.count_nonzero(~np.isfinite(y)))
        if missing:
            notes.append(f"{outcome}: no sensitivity indices, {missing} of {len(y)} runs "
                         "have no value (failed or undefined)")
            continue
        if np.ptp(y) == 0:
            notes.append(f"{outcome}: no sensitivity indices, it is the same in every run")
            continue
        if spec.design.kind == "sobol_sensitivity":
            rows.extend(_sobol_rows(outcome, names, problem, y, spec.design.second_order, seed))
        else:
            assert design.unit is not None
            found = morris_analyze.analyze(problem, design.unit, y, conf_level=0.95,
                                           num_levels=spec.design.levels, seed=seed)
            for i, name in enumerate(names):
                rows += [_row(outcome, name, "mu", found["mu"][i]),
                         _row(outcome, name, "mu_star", found["mu_star"][i],
                              found["mu_star_conf"][i]),
                         _row(outcome, name, "sigma", found["sigma"][i])]
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS), notes


def _sobol_rows(outcome: str, names: list[str], problem: dict[str, object], y: np.ndarray,
                second_order: bool, seed: int) -> list[dict[str, object]]:
    found = sobol_analyze.analyze(problem, y, calc_second_order=second_order, conf_level=0.95,
                                  seed=seed)
    rows = []
    for i, name in enumerate(names):
        rows.append(_row(outcome, name, "S1", found["S1"][i], found["S1_conf"][i]))
        rows.append(_row(outcome, name, "ST", found["ST"][i], found["ST_conf"][i]))
    if second_order:
        for i, j in zip(*np.triu_indices(len(names), k=1)):
            rows.append(_row(outcome, f"{names[i]} & {names[j]}", "S2", found["S2"][i, j],
                             found["S2_conf"][i, j]))
    return rows


def _row(outcome: str, factor: str, index: str, value: float,
         conf: float = float("nan")) -> dict[str, object]:
    return {"outcome": outcome, "factor": factor, "index": index, "value": float(value),
            "conf": float(conf)}


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    """The failed runs: ``run`` and ``error``, one row per run."""
    failed = runs[runs["error"].notna()].drop_duplicates("run")
    return failed[["run", "error"]].reset_index(drop=True)
