"""Seasons and sale spikes in a brand's orders, as campaign windows for the twin.

The Pareto/NBD rates are constant in time; a brand's are not (6.18, Double 11, holidays:
000_1884a523510c7721.txt). Each day's repeat orders are compared with what the fitted
constant-rate model expects that day (the sum over cohorts of first orders). Runs of
days far above it are *spikes*; the remaining ratio per calendar month is a *month
index*, normalised to a mean of 1 over the history (so the fitted rates keep their
level). Both are carried into the forecast as campaigns on the same calendar days,
multiplying first and repeat orders. With less than a year of history, months not
seen have index 1 and the output says so; with less than a year none is fitted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simdomain.twin import btyd

MIN_DAYS = 365
"""Less history than this and no season is fitted (a trend would pass for a season)."""
SPIKE_RATIO = 2.0
SPIKE_SIGMAS = 4.0
"""A spike day has at least twice the orders expected and is 4 Poisson sds above it."""


@dataclass(frozen=True)
class Spike:
    """A run of days (month and day of the first, length) with its multiplier."""

    month: int
    day: int
    days: int
    multiplier: float
    first_seen: dt.date


@dataclass(frozen=True)
class Season:
    """Multipliers on order rates by calendar month, and the spikes on top of them."""

    month_index: dict[int, float]
    months_seen: dict[int, int]
    """Days of history behind each month's index (0: not seen, index 1)."""
    spikes: list[Spike] = field(default_factory=list)

    def campaigns(self, start: dt.date, end: dt.date) -> list[dict]:
        """Campaign windows (scenario mappings) carrying the season from start to end."""
        out = []
        for month in pd.period_range(start, end, freq="M"):
            index = self.month_index.get(month.month, 1.0)
            first = max(month.start_time.date(), start)
            last = min(month.end_time.date(), end)
            if abs(index - 1.0) > 1e-3:
                out.append(_campaign(f"season_{month}", first, (last - first).days + 1, index))
        for spike in self.spikes:
            for year in range(start.year, end.year + 1):
                try:
                    day = dt.date(year, spike.month, spike.day)
                except ValueError:
                    continue
                if start <= day <= end:
                    days = min(spike.days, (end - day).days + 1)
                    out.append(_campaign(f"spike_{day}", day, days, spike.multiplier))
        return out


def _campaign(name: str, start: dt.date, days: int, multiplier: float) -> dict:
    return {"name": name, "start": start.isoformat(), "days": int(days),
            "multipliers": {"repeat_order": round(float(multiplier), 6),
                            "first_order": round(float(multiplier), 6)}}


def expected_by_day(customers: pd.DataFrame, params: btyd.ParetoNBDParams,
                    days: np.ndarray) -> np.ndarray:
    """Expected repeat orders on each of ``days`` (relative to the as-of date) under the
    constant-rate model: for each cohort of customers by first order day, the number
    still observed that day (not yet deleted) times one customer's expected orders on
    that day of their life."""
    first = customers["first_order_day"].to_numpy(float)
    ended = np.minimum((customers["deletion_day"] + 1).fillna(0.0).to_numpy(float), 0.0)
    start = days[0]
    n = len(days)
    f = np.clip((first - start).astype(int), 0, n - 1)
    e = np.clip((ended - start).astype(int), 0, n)  # first day index no longer observed
    counts = np.zeros((n, n + 1))
    np.add.at(counts, (f, e), 1.0)
    # observed[f, d]: customers of cohort f whose observation ends after day d
    observed = counts[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
    out = np.zeros(n)
    cohorts = np.flatnonzero(counts.sum(axis=1))
    for c in cohorts:
        age = np.arange(n) - c
        live = age >= 1
        gain = np.zeros(n)
        gain[live] = (btyd.expected_orders_new(params, age[live] + 1)
                      - btyd.expected_orders_new(params, age[live]))
        out += gain * observed[c]
    return out


def fit_season(history, params: btyd.ParetoNBDParams) -> Season | None:
    """Month index and spikes from the history's repeat orders; ``None`` if too short."""
    customers = history.customers
    repeats = history.repeat_days()
    start = float(customers["first_order_day"].min()) + 1
    if -start < MIN_DAYS:
        return None
    days = np.arange(start, 0.0)
    observed = np.bincount((repeats.to_numpy() - start).astype(int), minlength=len(days))[
        : len(days)].astype(float)
    expected = expected_by_day(customers, params, days)
    as_of_end = pd.Timestamp(history.as_of) + pd.Timedelta(days=1)
    dates = as_of_end + pd.to_timedelta(days, unit="D")
    frame = pd.DataFrame({"date": dates, "observed": observed, "expected": expected})
    frame = frame[frame["expected"] > 1.0]  # the first days of the brand say little
    frame["month"] = frame["date"].dt.month
    frame["period"] = frame["date"].dt.to_period("M")
    typical = (frame["observed"] / frame["expected"]).groupby(frame["period"]).transform("median")
    base = frame["expected"] * typical
    spike = (base >= 1.0) & (frame["observed"] >= SPIKE_RATIO * base) & (
        frame["observed"] - base > SPIKE_SIGMAS * np.sqrt(base))
    spikes = _runs(frame, spike, base)
    calm = frame[~spike]
    sums = calm.groupby("month")[["observed", "expected"]].sum()
    ratio = (sums["observed"] / sums["expected"]).clip(lower=1e-3)
    weight = frame.groupby("month")["expected"].sum().reindex(ratio.index)
    ratio /= float((ratio * weight).sum() / weight.sum())
    seen = frame.groupby("month").size()
    return Season(month_index={m: float(ratio.get(m, 1.0)) for m in range(1, 13)},
                  months_seen={m: int(seen.get(m, 0)) for m in range(1, 13)},
                  spikes=spikes)


def _runs(frame: pd.DataFrame, flag: pd.Series, base: pd.Series) -> list[Spike]:
    """Consecutive flagged days as spikes, the latest year's occurrence of each date."""
    spikes: dict[tuple[int, int], Spike] = {}
    flagged = frame[flag]
    if flagged.empty:
        return []
    group = (flagged["date"].diff() != pd.Timedelta(days=1)).cumsum()
    for _, run in flagged.groupby(group):
        first = run["date"].iloc[0].date()
        multiplier = float(run["observed"].sum() / base.loc[run.index].sum())
        spikes[(first.month, first.day)] = Spike(first.month, first.day, len(run), multiplier,
                                                 first)
    return list(spikes.values())
