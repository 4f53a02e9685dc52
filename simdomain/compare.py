"""Side-by-side what-ifs with common random numbers.

Every variant runs with the same root seed, so replication ``r`` of each variant sees
the same random draws wherever the variants agree (each process draws from its own
named stream). Differences to the base are paired by replication; comparing a scenario
with itself gives a difference of exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from simdomain.kpi import ALL, horizon_kpis
from simdomain.scenario.model import Scenario
from simdomain.simulation import SimulationResult, simulate
from simdomain.workers import Cluster

TOTAL = "total"
"""The ``month`` label of KPIs over the whole horizon."""
COLUMNS = ["variant", "month", "kpi", "mean", "low", "high",
           "diff_mean", "diff_low", "diff_high"]


@dataclass
class Comparison:
    """Variants' results and the table of KPIs against the base (the first variant).

    ``table`` has one row per variant, month (or ``"total"``) and KPI: the mean and
    central interval of the outcome over replications (``low``, ``high``), and the
    mean paired difference to the base with its confidence interval at the same level
    (``diff_low``, ``diff_high``; a t interval over the replications' differences).
    """

    results: dict[str, SimulationResult]
    table: pd.DataFrame
    level: float

    @property
    def base(self) -> str:
        return next(iter(self.results))


def compare(variants: dict[str, Scenario], *, seed: int = 0, reps: int = 10,
            level: float = 0.9, progress: bool | None = False, shards: int = 1,
            cluster: Cluster | None = None) -> Comparison:
    """Simulate each variant with the same seeds and tabulate the KPIs against the first
    (each split into ``shards`` run on ``cluster``, if given: see :func:`simulate`)."""
    if reps < 2:
        raise ValueError(f"reps must be at least 2 to give intervals, got {reps}")
    results = {name: simulate(scenario, seed=seed, reps=reps, keep_agents=False,
                              progress=progress, shards=shards, cluster=cluster)
               for name, scenario in variants.items()}
    outcomes = {name: _outcomes(result) for name, result in results.items()}
    base = outcomes[next(iter(outcomes))].rename(columns={"value": "value_base"})
    rows = []
    for name, outcome in outcomes.items():
        joined = outcome.join(base, how="left")
        for (month, kpi), group in joined.groupby(level=["month", "kpi"], sort=True):
            values = group["value"].dropna()
            diffs = (group["value"] - group["value_base"]).dropna()
            rows.append([name, month, kpi, *_spread(values, level), *_mean_interval(diffs, level)])
    return Comparison(results, pd.DataFrame(rows, columns=COLUMNS), level)


def _outcomes(result: SimulationResult) -> pd.DataFrame:
    """Overall KPIs per month and over the horizon, indexed by month, KPI and rep."""
    monthly = result.monthly[result.monthly["channel"] == ALL][["rep", "month", "kpi", "value"]]
    total = horizon_kpis(result.monthly).assign(month=TOTAL)
    frame = pd.concat([monthly, total], ignore_index=True)
    return frame.set_index(["month", "kpi", "rep"]).sort_index()


def _spread(values: pd.Series, level: float) -> tuple[float, float, float]:
    if values.empty:
        return (np.nan,) * 3
    tail = (1 - level) / 2
    return float(values.mean()), float(values.quantile(tail)), float(values.quantile(1 - tail))


def _mean_interval(diffs: pd.Series, level: float) -> tuple[float, float, float]:
    """Mean of paired differences and its t confidence interval."""
    if diffs.empty:
        return (np.nan,) * 3
    mean = float(diffs.mean())
    if len(diffs) < 2 or np.allclose(diffs, mean, rtol=0, atol=0):
        return mean, mean, mean
    half = stats.t.ppf(0.5 + level / 2, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    return mean, mean - half, mean + half
