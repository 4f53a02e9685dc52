"""An experiment's outcomes: one number per replication from a simulation result.

A KPI outcome reads :attr:`SimulationResult.monthly` (see :mod:`simdomain.kpi`) for one
channel (``"all"`` = the whole domain) over a window of calendar months (the horizon by
default) and aggregates the months:

- flows (adds, members, deletions, orders, GMV, spend, contacts) are summed;
- the pool size is the last month's value (a stock);
- rates (deletion rate, member order share, K-factor, LTV) are the mean of the months
  in which they are defined;
- costs per add and per member are the window's spend over its adds or new members
  (a ratio of sums, so quiet months do not weigh as much as busy ones).

``aggregate`` picks another of ``sum``, ``last``, ``mean``, ``min`` or ``max``.
A target outcome is the share of the target's periods in the window that the
replication meets; its mean over replications is the chance a period meets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from simdomain.kpi import ALL, CHANNEL_KPIS, COSTS, FLOWS, RATES, STOCKS
from simdomain.simulation import SimulationResult

KPIS = (*FLOWS, "contacts", *STOCKS, *RATES, *COSTS)
__all__ = ["CHANNEL_KPIS", "COSTS", "KPIS", "Measure", "default_aggregate", "measure"]


@dataclass(frozen=True)
class Measure:
    """An outcome resolved against the base scenario: what to read and over which months."""

    name: str
    months: tuple[str, ...]
    """Calendar months (``YYYY-MM``) of the window."""
    kpi: str | None = None
    target: str | None = None
    channel: str = ALL
    aggregate: str | None = None


def default_aggregate(kpi: str) -> str:
    """How the months of a window are combined when the outcome does not say."""
    if kpi in STOCKS:
        return "last"
    if kpi in RATES:
        return "mean"
    return "ratio" if kpi in COSTS else "sum"


def measure(result: SimulationResult, outcomes: Sequence[Measure]) -> list[dict[str, float]]:
    """Each outcome's value in each replication: one mapping per replication."""
    reps = pd.RangeIndex(result.reps, name="rep")
    columns = {o.name: _one(result, o).reindex(reps).astype(float) for o in outcomes}
    return pd.DataFrame(columns, index=reps).to_dict("records")


def _one(result: SimulationResult, outcome: Measure) -> pd.Series:
    months = list(outcome.months)
    if outcome.target is not None:
        targets = result.targets[result.targets["target"] == outcome.target]
        targets = targets[targets["period"].str[:7].isin(months)]
        return targets.groupby("rep")["met"].mean()
    monthly = result.monthly
    rows = monthly[(monthly["channel"] == outcome.channel) & monthly["month"].isin(months)]
    aggregate = outcome.aggregate or default_aggregate(outcome.kpi)
    if aggregate == "ratio":
        sums = rows.groupby(["rep", "kpi"])["value"].sum().unstack("kpi")
        denominator = sums.get(COSTS[outcome.kpi], pd.Series(dtype=float))
        return sums.get("spend_cny", pd.Series(dtype=float)) / denominator.where(denominator != 0)
    values = rows[rows["kpi"] == outcome.kpi].sort_values(["rep", "month"])
    return values.groupby("rep")["value"].agg(aggregate)
