"""Backtest a twin: calibrate on the data up to a cutoff, simulate on, compare with what happened.

An order here is a customer-day with an order, as the twin's engine and the BG/NBD
baseline count them (a customer's several orders on one day are one). Per customer, the
twin's forecast is their expected orders given their history, scaled by what the
simulation adds (see :func:`_customers`); the baseline is a BG/NBD fitted on the same
data by :func:`simdomain.twin.baseline.bgnbd_baseline`. Intervals are the central 90% of the
replications; coverage is the share of months whose actual value falls inside them;
CRPS is the ensemble continuous ranked probability score (the baseline's ensemble is
drawn from its own posterior, as many draws as the twin has replications).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simdomain.scenario.io import load_scenario
from simdomain.scenario.model import Scenario
from simdomain.simulation import SimulationResult, simulate
from simdomain.twin import btyd
from simdomain.twin.baseline import (
    bgnbd_baseline,
    bgnbd_expected_orders,
    bgnbd_sample_orders,
)
from simdomain.twin.calibrate import Twin, calibrate
from simdomain.twin.history import NOT_A_CONTACT, build_history
from simdomain.twin.write import write_twin

LEVEL = 0.9


@dataclass
class Backtest:
    """One origin's backtest.

    Attributes
    ----------
    customers
        Per customer known at the cutoff: ``customer_id, source, actual_orders,
        forecast_orders, simulated_mean, forecast_low, forecast_high, forecast_crps,
        baseline_orders, baseline_crps, p_alive``.
    monthly
        Per month and measure (``orders``, ``gmv_cny``, ``deletions``, ``new_members``,
        ``adds`` per channel): ``forecast_mean, forecast_low, forecast_high, actual``,
        and for known customers' orders the baseline.
    metrics
        Totals and their errors, per-customer MAE/RMSE/bias, coverage and CRPS, for the
        twin and the baseline (see :func:`metrics`).
    """

    cutoff: dt.date
    end: dt.date
    twin: Twin
    result: SimulationResult
    customers: pd.DataFrame
    monthly: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)


def _inside(times: pd.Series, after: dt.date, end: dt.date) -> pd.Series:
    """Whether each time falls in the days ``(after, end]``."""
    at = pd.to_datetime(times, errors="coerce")
    return (at >= pd.Timestamp(after) + pd.Timedelta(days=1)) & (
        at < pd.Timestamp(end) + pd.Timedelta(days=1))


def _day_orders(orders: pd.DataFrame, after: dt.date, end: dt.date) -> pd.DataFrame:
    """Customer-days with an order (and their amounts) in ``(after, end]``."""
    window = orders.loc[_inside(orders["ordered_at"], after, end)]
    day = pd.to_datetime(window["ordered_at"]).dt.normalize()
    frame = pd.DataFrame({"customer_id": window["customer_id"].astype(str).to_numpy(),
                          "date": day.to_numpy(), "amount": window["amount"].to_numpy(float)})
    return frame.groupby(["customer_id", "date"], as_index=False)["amount"].sum()


def _monthly_spend(spend: pd.DataFrame | None, scenario: Scenario) -> dict[str, list[float]]:
    """Each channel's actual spend per month of the horizon, where recorded."""
    if spend is None or spend.empty:
        return {}
    months = pd.period_range(scenario.start_date, scenario.end_date, freq="M")
    table = spend.assign(month=pd.PeriodIndex(spend["month"].astype(str), freq="M")).pivot_table(
        index="month", columns="channel", values="spend_cny", aggfunc="sum")
    table = table.reindex(months).fillna(0.0)
    return {str(c): [float(v) for v in table[c]] for c in table.columns
            if str(c) in scenario.channels}


def run_backtest(
    bundle: Any,
    cutoff: dt.date,
    end: dt.date,
    folder: Path,
    *,
    base: Scenario | None = None,
    reps: int = 20,
    seed: int = 0,
    draws: int = 200,
    parameters: str = "posterior",
    progress: bool = False,
) -> Backtest:
    """Calibrate on ``bundle`` up to ``cutoff``, simulate to ``end``, compare.

    The twin is written into ``folder / "twin"``; with the actual spend after the
    cutoff where the bundle has it (else each channel's recent spend or adds go on).
    """
    if end <= cutoff:
        from simdomain.errors import InputError, Problem

        raise InputError([Problem("--end", (), f"{end} is not after the cutoff {cutoff}")])
    train = bundle.until(cutoff)
    history = build_history(train.orders, cutoff, contacts=train.contacts,
                            members=train.members, referrals=train.referrals)
    twin = calibrate(history, spend=train.spend, referrals=train.referrals, base=base,
                     name=f"backtest_{cutoff:%Y%m%d}", horizon_days=(end - cutoff).days,
                     draws=draws, seed=seed, tests=train.tests, touches=train.touches)
    spend_after = _monthly_spend(bundle.spend, Scenario.model_validate(twin.scenario))
    for channel, values in spend_after.items():
        twin.scenario["channels"][channel]["monthly_spend_cny"] = values
        twin.notes[("channels", channel, "monthly_spend_cny")] = "data: the actual spend"
    write_twin(twin, folder / "twin")
    scenario = load_scenario(folder / "twin" / "scenario.yaml")
    result = simulate(scenario, seed=seed, reps=reps, keep_agents=True, keep_orders=True,
                      progress=progress, parameters=parameters)  # type: ignore[arg-type]

    actual = _day_orders(bundle.orders, cutoff, end)
    people = twin.population
    rfm = people.loc[people["orders"] > 0, ["x", "t_x", "T"]]
    base = bgnbd_baseline(rfm, (end - cutoff).days)
    customers = _customers(twin, result, actual, base, (end - cutoff).days, seed)
    monthly = _monthly(bundle, result, twin, history, actual, cutoff, end, base.params)
    test = Backtest(cutoff=cutoff, end=end, twin=twin, result=result, customers=customers,
                    monthly=monthly)
    test.metrics = metrics(test)
    return test


def _customers(twin: Twin, result: SimulationResult, actual: pd.DataFrame, base: Any,
               horizon: int, seed: int) -> pd.DataFrame:
    """Per customer known at the cutoff: actual orders, the twin's and the baseline's.

    The twin's point forecast is each customer's expected orders under the fitted
    Pareto/NBD given their history, scaled per source channel by what the simulation
    adds to the closed form (deletions, seasons, campaigns, parameter draws): the
    simulated orders of the channel's known customers over their closed-form total.
    The mean of a few replications per customer would carry simulation noise into every
    customer's error; this keeps the simulation's aggregate effects without it. The
    simulated counts give the intervals and the CRPS.
    """
    people = twin.population
    n = len(people)
    agents = result.agents
    assert agents is not None
    made = (agents.loc[agents["agent"] < n, "orders"].to_numpy().reshape(result.reps, n)
            - people["orders"].to_numpy())
    buyers = people["orders"].to_numpy() > 0
    made = made[:, buyers]
    people = people[buyers]
    params = tuple(float(twin.parameters.loc[0, f"pnbd.{k}"]) for k in ("r", "alpha", "s", "beta"))
    closed = btyd.expected_orders(params, horizon, people["x"], people["t_x"], people["T"])
    source = people["source"].to_numpy()
    simulated = pd.Series(made.mean(axis=0)).groupby(source).sum()
    scale = (simulated / pd.Series(closed).groupby(source).sum()).fillna(1.0)
    actual_orders = actual.groupby("customer_id").size().reindex(
        people["customer_id"]).fillna(0).to_numpy(int)
    rng = np.random.default_rng(seed)
    draws = np.stack([bgnbd_sample_orders(base.params, horizon, people["x"], people["t_x"],
                                          people["T"], rng) for _ in range(result.reps)])
    frame = pd.DataFrame({
        "customer_id": people["customer_id"].to_numpy(),
        "source": source,
        "actual_orders": actual_orders,
        "forecast_orders": closed * scale.reindex(source).to_numpy(),
        "simulated_mean": made.mean(axis=0),
        "forecast_low": np.quantile(made, (1 - LEVEL) / 2, axis=0),
        "forecast_high": np.quantile(made, (1 + LEVEL) / 2, axis=0),
        "forecast_crps": _crps_ensemble(made, actual_orders),
        "baseline_orders": base.customers["expected_orders"].to_numpy(),
        "baseline_crps": _crps_ensemble(draws, actual_orders),
        "p_alive": people["p_alive"].to_numpy(),
    })
    frame.attrs["baseline_method"] = base.method
    return frame.reset_index(drop=True)


def _crps_ensemble(samples: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """CRPS of an ensemble (replications down axis 0) per column: E|X - y| - E|X - X'| / 2."""
    first = np.abs(samples - actual[None, :]).mean(axis=0)
    ordered = np.sort(samples, axis=0)
    m = samples.shape[0]
    weights = (2 * np.arange(1, m + 1) - m - 1)[:, None]
    spread = (weights * ordered).sum(axis=0) / (m * m)  # E|X - X'| / 2
    return first - spread


def _month_ends(start: dt.date, end: dt.date) -> pd.DataFrame:
    months = pd.period_range(start, end, freq="M")
    last = [min(m.end_time.date(), end) for m in months]
    return pd.DataFrame({"month": months.astype(str), "last": last})


def _monthly(bundle: Any, result: SimulationResult, twin: Twin, history: Any,
             actual: pd.DataFrame, cutoff: dt.date, end: dt.date, params: Any) -> pd.DataFrame:
    daily = result.daily.assign(month=pd.to_datetime(result.daily["date"]).dt.strftime("%Y-%m"))
    sim = daily.groupby(["rep", "month"])[["orders", "gmv_cny", "deletions",
                                           "new_members"]].sum()
    actual_month = actual.assign(month=pd.to_datetime(actual["date"]).dt.strftime("%Y-%m"))
    observed = {
        "orders": actual_month.groupby("month").size(),
        "gmv_cny": actual_month.groupby("month")["amount"].sum(),
    }
    if bundle.contacts is not None and len(bundle.contacts):
        deleted = pd.to_datetime(bundle.contacts["deleted_at"], errors="coerce")
        inside = _inside(deleted, cutoff, end)
        observed["deletions"] = deleted[inside].dt.strftime("%Y-%m").value_counts()
    if bundle.members is not None and len(bundle.members):
        joined = pd.to_datetime(bundle.members["joined_at"])
        inside = _inside(joined, cutoff, end)
        observed["new_members"] = joined[inside].dt.strftime("%Y-%m").value_counts()
    rows = []
    months = _month_ends(cutoff + dt.timedelta(days=1), end)
    for measure in ("orders", "gmv_cny", "deletions", "new_members"):
        values = sim[measure].unstack("month")
        for month in months["month"]:
            column = values[month] if month in values else pd.Series([0.0])
            row = _row(month, measure, "all", column.to_numpy(float))
            if measure in observed:
                row["actual"] = float(observed[measure].get(month, 0))
            rows.append(row)
    rows.extend(_adds_rows(bundle, result, cutoff, end, months))
    known = _baseline_monthly(twin, history, months, params)
    known_orders = actual_month[actual_month["customer_id"].isin(
        twin.population.loc[twin.population["orders"] > 0, "customer_id"])].groupby("month").size()
    made = _known_monthly(result, twin, months)
    for i, month in enumerate(months["month"]):
        row = _row(month, "orders_known_customers", "all", made[:, i])
        row.update(actual=float(known_orders.get(month, 0)), baseline=float(known[i]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["crps"] = [np.nan if np.isnan(y) else float(_crps_ensemble(x[:, None], np.array([y]))[0])
                     for x, y in zip(frame["samples"], frame["actual"].fillna(np.nan))]
    return frame


def _row(month: str, measure: str, channel: str, values: np.ndarray) -> dict[str, Any]:
    return {"month": month, "measure": measure, "channel": channel,
            "forecast_mean": float(values.mean()),
            "forecast_low": float(np.quantile(values, (1 - LEVEL) / 2)),
            "forecast_high": float(np.quantile(values, (1 + LEVEL) / 2)),
            "samples": values}


def _adds_rows(bundle: Any, result: SimulationResult, cutoff: dt.date, end: dt.date,
               months: pd.DataFrame) -> list[dict[str, Any]]:
    if bundle.contacts is None or not len(bundle.contacts):
        return []
    added = pd.to_datetime(bundle.contacts["added_at"])
    inside = _inside(added, cutoff, end)
    contacts = bundle.contacts.loc[inside]
    observed = contacts.groupby([contacts["channel"].astype(str),
                                 added[inside].dt.strftime("%Y-%m")]).size()
    channels = result.channels.assign(month=(pd.Timestamp(result.scenario.start_date)
                                             + pd.to_timedelta(result.channels["day"], unit="D")
                                             ).dt.strftime("%Y-%m"))
    sim = channels.groupby(["channel", "rep", "month"], observed=True)["adds"].sum()
    rows = []
    # buyers who are not contacts are not adds in the data: they are not compared
    for channel in sorted(set(sim.index.get_level_values(0).astype(str)) - {NOT_A_CONTACT}):
        table = sim.loc[channel].unstack("month")
        for month in months["month"]:
            values = table[month].to_numpy(float) if month in table else np.zeros(result.reps)
            row = _row(month, "adds", channel, values)
            row["actual"] = float(observed.get((channel, month), 0))
            rows.append(row)
    return rows


def _baseline_monthly(twin: Twin, history: Any, months: pd.DataFrame, params: Any) -> np.ndarray:
    """The BG/NBD's expected orders of the known customers in each month."""
    rfm = twin.population.loc[twin.population["orders"] > 0, ["x", "t_x", "T"]]
    ends = np.array([(m - history.as_of).days for m in months["last"]], dtype=float)
    cumulative = np.array([bgnbd_expected_orders(params, t, rfm["x"], rfm["t_x"],
                                                 rfm["T"]).sum() for t in ends])
    return np.diff(np.concatenate([[0.0], cumulative]))


def _known_monthly(result: SimulationResult, twin: Twin, months: pd.DataFrame) -> np.ndarray:
    """Orders per replication and month by the customers known at the cutoff (reps x months)."""
    orders = result.orders
    buyers = np.flatnonzero(twin.population["orders"].to_numpy() > 0)
    if orders is None:
        return np.zeros((result.reps, len(months)))
    known = orders[orders["agent"].isin(buyers)]
    month = (pd.Timestamp(result.scenario.start_date)
             + pd.to_timedelta(known["day"], unit="D")).dt.strftime("%Y-%m")
    table = known.groupby([known["rep"], month]).size().unstack(fill_value=0)
    table = table.reindex(index=range(result.reps), columns=months["month"], fill_value=0)
    return table.to_numpy(float)


def metrics(test: Backtest) -> dict[str, Any]:
    """Totals, per-customer errors, interval coverage and CRPS, twin and baseline."""
    c = test.customers
    out: dict[str, Any] = {"cutoff": str(test.cutoff), "end": str(test.end),
                           "customers": len(c), "reps": test.result.reps,
                           "baseline_method": c.attrs.get("baseline_method")}
    actual = c["actual_orders"].to_numpy(float)
    for name, forecast in (("twin", c["forecast_orders"]), ("baseline", c["baseline_orders"])):
        error = forecast.to_numpy(float) - actual
        out[name] = {
            "total_forecast": float(forecast.sum()),
            "total_actual": float(actual.sum()),
            "total_error_pct": float(100 * (forecast.sum() - actual.sum()) / max(actual.sum(), 1)),
            "mae": float(np.mean(np.abs(error))),
            "rmse": float(np.sqrt(np.mean(error**2))),
            "bias": float(np.mean(error)),
        }
    out["twin"]["crps"] = float(c["forecast_crps"].mean())
    out["twin"]["customer_coverage"] = float(np.mean(
        (actual >= c["forecast_low"]) & (actual <= c["forecast_high"])))
    out["baseline"]["crps"] = float(c["baseline_crps"].mean())
    m = test.monthly.dropna(subset=["actual"])
    inside = (m["actual"] >= m["forecast_low"]) & (m["actual"] <= m["forecast_high"])
    out["monthly_coverage"] = {k: float(v) for k, v in inside.groupby(m["measure"]).mean().items()}
    out["monthly_coverage_all"] = float(inside.mean()) if len(m) else None
    out["monthly_crps_mean"] = float(m["crps"].mean()) if len(m) else None
    return out
