"""The two fits behind ``simdomain fit``, as functions with typed results.

- :func:`fit_simulation`: simulate a scenario with snapshots, build the panel, fit the
  models on 75% of the people, evaluate them on the other 25%, fit the cohort model and
  tabulate channel values; with two or more replications, check the cohort model's
  members per add against replications it was not fitted on.
- :func:`fit_transactions`: read a brand's order log, estimate its lifecycle rates,
  and fit and evaluate the models on features derived from it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from simdomain.models.estimators import ESTIMATORS, MIN_EACH, LifecycleModels
from simdomain.models.evaluate import Evaluation, evaluate, split_people
from simdomain.models.lifecycle import LifecycleRates, fit_rates, rates_fragment
from simdomain.models.panel import FEATURES, LABELS, default_days, simulate_panel
from simdomain.models.persist import ModelBundle
from simdomain.models.transactions import (
    TX_FEATURES,
    TX_LABELS,
    Transactions,
    read_transactions,
    transaction_panel,
)
from simdomain.models.value import CohortModel, Cohorts, channel_value_table, realized_outcomes
from simdomain.scenario.model import Scenario
from simdomain.simulation import SimulationResult

CHECK_COLUMNS = ["channel", "horizon_days", "predicted", "realized_mean", "realized_sd",
                 "realized_min", "realized_max", "z", "within_spread", "fit_reps", "check_reps"]


@dataclass
class SimulationFit:
    """Everything :func:`fit_simulation` produced (see its docstring)."""

    scenario: Scenario
    seed: int
    reps: int
    days: list[int]
    models: dict[str, LifecycleModels]
    evaluation: Evaluation
    cohort: CohortModel
    value: pd.DataFrame
    check: pd.DataFrame
    rows: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def bundle(self) -> ModelBundle:
        return ModelBundle("simulation", self.models, {
            "scenario": self.scenario.name, "seed": self.seed, "reps": self.reps,
            "days": self.days, "features": list(FEATURES), "rows": self.rows})


@dataclass
class TransactionsFit:
    """Everything :func:`fit_transactions` produced."""

    transactions: Transactions
    rates: LifecycleRates
    fragment: str
    models: dict[str, LifecycleModels]
    evaluation: Evaluation | None
    seed: int
    rows: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def bundle(self) -> ModelBundle:
        return ModelBundle("transactions", self.models, {
            "file": self.transactions.source, "seed": self.seed,
            "features": list(TX_FEATURES), "rows": self.rows})


def fit_simulation(scenario: Scenario, *, seed: int = 0, reps: int = 3,
                   days: Sequence[int] | None = None,
                   estimators: Sequence[str] = ESTIMATORS, max_rows: int | None = 200_000,
                   test_share: float = 0.25, progress: bool | None = False) -> SimulationFit:
    """Simulate, fit, evaluate and value the channels of ``scenario``.

    Every random choice derives from ``seed``: the simulation's replications, the split
    of people into training and test sets, the row draws and the estimators.
    """
    clock = _Clock()
    days = default_days(scenario.horizon_days) if days is None else sorted(set(days))
    result, panel = simulate_panel(scenario, seed=seed, reps=reps, days=days, progress=progress)
    clock.lap("simulate")
    test = split_people(panel, test_share=test_share, seed=seed)
    X, y = panel[list(FEATURES)], panel[list(LABELS)]
    models = {name: LifecycleModels(name, max_rows=max_rows, random_state=seed).fit(X[~test], y[~test])
              for name in estimators}
    clock.lap("fit")
    evaluation = evaluate(models, X[test], y[test])
    clock.lap("evaluate")
    cohort = CohortModel().fit(Cohorts.of(result), panel)
    value = channel_value_table(cohort)
    check = value_check(result, panel)
    clock.lap("value")
    result.snapshots = None
    rows = {"panel": len(panel), "train": int((~test).sum()), "test": int(test.sum())}
    return SimulationFit(scenario, seed, reps, list(days), models, evaluation, cohort, value,
                         check, rows, clock.seconds)


def value_check(result: SimulationResult, panel: pd.DataFrame,
                horizon_days: int | None = None) -> pd.DataFrame:
    """Predicted vs realized members per add, per channel, on held-out replications.

    The cohort model is fitted on the first half of the replications, on the adds
    followed for the whole horizon (``horizon_days``, default 90 or half the simulated
    days), and compared with the mean of what the other half realized for the same adds.
    The replications' spread is the standard deviation of the realized value over all
    replications; ``z`` is the difference in units of it and ``within_spread`` is
    ``|z| <= 2``. Empty with fewer than two replications.
    """
    if result.reps < 2:
        return pd.DataFrame(columns=CHECK_COLUMNS)
    last = result.scenario.horizon_days - 1
    h = horizon_days or min(90, (last + 1) // 2)
    fit_reps = list(range(result.reps // 2))
    check_reps = list(range(result.reps // 2, result.reps))
    cohorts = Cohorts.of(_subset(result, fit_reps), joined=(0, last - h + 1))
    model = CohortModel().fit(cohorts, panel[panel["rep"].isin(fit_reps)])
    per_add = model.per_add((h,)).set_index("cell")
    cells = model.cells_.assign(members=per_add["members"].to_numpy(), adds=model.adds_)
    realized = realized_outcomes(result, h)
    rows = []
    for channel, group in cells.groupby("channel", sort=False):
        predicted = float(np.average(group["members"], weights=group["adds"]))
        mine = realized[realized["channel"] == channel].set_index("rep")["members_per_add"]
        check = mine.reindex(check_reps).dropna()
        sd = float(mine.std(ddof=1)) if len(mine) > 1 else float("nan")
        mean = float(check.mean()) if len(check) else float("nan")
        z = (predicted - mean) / sd if np.isfinite(sd) and sd > 0 else float("nan")
        rows.append([channel, h, predicted, mean, sd,
                     float(check.min()) if len(check) else np.nan,
                     float(check.max()) if len(check) else np.nan, z,
                     bool(np.isfinite(z) and abs(z) <= 2), len(fit_reps), len(check_reps)])
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def _subset(result: SimulationResult, reps: list[int]) -> SimulationResult:
    agents = result.agents[result.agents["rep"].isin(reps)]
    return SimulationResult(scenario=result.scenario, seed=result.seed, reps=len(reps),
                            daily=result.daily, channels=result.channels,
                            monthly=result.monthly, targets=result.targets, agents=agents)


def fit_transactions(path: str | Path, *, seed: int = 0, estimators: Sequence[str] = ESTIMATORS,
                     test_share: float = 0.25) -> TransactionsFit:
    """Estimate the lifecycle rates of an order log and fit the models on its panel."""
    clock = _Clock()
    tx = read_transactions(path)
    clock.lap("read")
    rates = fit_rates(tx)
    clock.lap("rates")
    panel = transaction_panel(tx)
    labels = [c for c in TX_LABELS if _fittable(panel[c])]
    X = panel[list(TX_FEATURES)].copy()
    X["channel"] = X["channel"].astype("category")
    models, evaluation = {}, None
    if labels:
        test = split_people(panel, test_share=test_share, seed=seed, by=("customer",))
        y = panel[labels]
        models = {name: LifecycleModels(name, random_state=seed).fit(X[~test], y[~test])
                  for name in estimators}
        evaluation = evaluate(models, X[test], y[test], group_by=("channel",))
    else:
        test = np.zeros(len(panel), dtype=bool)
    clock.lap("fit")
    rows = {"panel": len(panel), "train": int((~test).sum()), "test": int(test.sum())}
    return TransactionsFit(tx, rates, rates_fragment(rates, tx), models, evaluation, seed, rows,
                           clock.seconds)


def _fittable(label: pd.Series) -> bool:
    known = label.dropna()
    return min(int(known.sum()), int(len(known) - known.sum())) >= MIN_EACH


class _Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now
