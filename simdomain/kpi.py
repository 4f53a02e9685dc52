"""North-star KPIs per month, and the targets checked against them.

Definitions (per replication and calendar month):

- ``deletion_rate``: deletions / (pool at the month's start + new adds in the month).
- ``k_factor``: referred adds / pool at the month's start.
- ``member_order_share``: orders by members and KOCs / all orders.
- ``ltv_cny`` (the domain's formula): lifetime in years x average order value x
  orders per buyer per year, with lifetime = 1 / (12 x deletion_rate) years and buyers
  the customers, members and KOCs at the month's end. Undefined (NaN) when nobody
  deleted.
- ``cost_per_add_cny`` and ``cost_per_member_cny``: spend / adds and spend / new
  members in the month, per channel (members counted by the channel that brought them)
  and overall (``channel == "all"``, all spend including campaigns and referral gifts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simdomain.scenario.model import Scenario

ALL = "all"
FLOWS = ("new_adds", "referral_adds", "fraud_adds", "new_customers", "new_members", "new_kocs",
         "deletions", "orders", "gmv_cny", "spend_cny")
"""Overall KPIs that add up over months."""
STOCKS = ("pool_size",)
RATES = ("deletion_rate", "member_order_share", "k_factor", "ltv_cny")
COSTS = {"cost_per_add_cny": "new_adds", "cost_per_member_cny": "new_members"}
"""Cost KPIs and the flow they divide spend by."""
CHANNEL_KPIS = ("spend_cny", "contacts", "new_adds", "new_members", *COSTS)
"""KPIs also reported per channel."""
MONTHLY_COLUMNS = ["rep", "month", "kpi", "channel", "value"]
TARGET_COLUMNS = ["rep", "target", "period", "value", "goal", "met"]


def monthly_kpis(daily: pd.DataFrame, channels: pd.DataFrame,
                 channel_members: pd.DataFrame) -> pd.DataFrame:
    """Tidy monthly KPIs: one row per replication, month, KPI and channel."""
    daily = daily.assign(month=daily["date"].dt.strftime("%Y-%m"))
    by = daily.groupby(["rep", "month"], sort=True)
    flows = by[[*FLOWS, "member_orders"]].sum()
    last = by[["pool", "customer", "member", "koc"]].last()
    first = by.head(1).set_index(["rep", "month"])
    pool_start = first["pool"] - first["new_adds"] + first["deletions"]
    buyers = last[["customer", "member", "koc"]].sum(axis=1)
    overall = pd.DataFrame({
        "new_adds": flows["new_adds"],
        "referral_adds": flows["referral_adds"],
        "fraud_adds": flows["fraud_adds"],
        "new_customers": flows["new_customers"],
        "new_members": flows["new_members"],
        "new_kocs": flows["new_kocs"],
        "deletions": flows["deletions"],
        "deletion_rate": _ratio(flows["deletions"], pool_start + flows["new_adds"]),
        "pool_size": last["pool"],
        "orders": flows["orders"],
        "gmv_cny": flows["gmv_cny"],
        "member_order_share": _ratio(flows["member_orders"], flows["orders"]),
        "spend_cny": flows["spend_cny"],
        "cost_per_add_cny": _ratio(flows["spend_cny"], flows["new_adds"]),
        "cost_per_member_cny": _ratio(flows["spend_cny"], flows["new_members"]),
        "k_factor": _ratio(flows["referral_adds"], pool_start),
    })
    days_in_month = by["day"].count()
    aov = _ratio(flows["gmv_cny"], flows["orders"])
    orders_per_buyer_year = _ratio(flows["orders"], buyers) * 365.0 / days_in_month
    monthly_deletion = overall["deletion_rate"] * 30.4375 / days_in_month
    lifetime_years = _ratio(pd.Series(1.0, index=overall.index), 12 * monthly_deletion)
    overall["ltv_cny"] = lifetime_years * aov * orders_per_buyer_year
    tidy = overall.stack(future_stack=True).rename("value").reset_index()
    tidy = tidy.rename(columns={tidy.columns[2]: "kpi"}).assign(channel=ALL)
    return pd.concat([tidy, _channel_kpis(channels, channel_members, daily)],
                     ignore_index=True)[MONTHLY_COLUMNS]


def _channel_kpis(channels: pd.DataFrame, channel_members: pd.DataFrame,
                  daily: pd.DataFrame) -> pd.DataFrame:
    if channels.empty:
        return pd.DataFrame(columns=MONTHLY_COLUMNS)
    month_of_day = daily.drop_duplicates("day").set_index("day")["month"]
    frame = channels.assign(month=channels["day"].map(month_of_day),
                            channel=channels["channel"].astype(str))
    sums = frame.groupby(["rep", "month", "channel"], sort=True)[["spend_cny", "contacts", "adds"]].sum()
    members = channel_members.set_index(["rep", "month", "channel"])["new_members"]
    sums["new_members"] = members.reindex(sums.index).fillna(0).astype(np.int64)
    sums["cost_per_add_cny"] = _ratio(sums["spend_cny"], sums["adds"])
    sums["cost_per_member_cny"] = _ratio(sums["spend_cny"], sums["new_members"])
    sums = sums.rename(columns={"adds": "new_adds"})
    tidy = sums.stack(future_stack=True).rename("value").reset_index()
    return tidy.rename(columns={tidy.columns[3]: "kpi"})


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator / denominator.where(denominator != 0)


def check_targets(scenario: Scenario, daily: pd.DataFrame, monthly: pd.DataFrame) -> pd.DataFrame:
    """Each target per replication and period: the value, the goal and whether it is met.

    Monthly targets are checked in the months the horizon covers in full.
    """
    targets = scenario.targets
    rows: list[pd.DataFrame] = []
    overall = monthly[monthly["channel"] == ALL].pivot_table(
        index=["rep", "month"], columns="kpi", values="value", dropna=False)
    full = _full_months(daily)
    overall = overall[overall.index.get_level_values("month").isin(full)]
    for name, kpi, goal, at_least in [
        ("monthly_new_adds", "new_adds", targets.monthly_new_adds, True),
        ("monthly_new_members", "new_members", targets.monthly_new_members, True),
        ("max_monthly_deletion_rate", "deletion_rate", targets.max_monthly_deletion_rate, False),
    ]:
        if goal is None or overall.empty:
            continue
        value = overall[kpi]
        met = value >= goal if at_least else value <= goal
        rows.append(pd.DataFrame({
            "rep": value.index.get_level_values("rep"), "target": name,
            "period": value.index.get_level_values("month"), "value": value.to_numpy(),
            "goal": float(goal), "met": met.to_numpy(),
        }))
    day_index = daily.set_index(["rep", "date"])
    for pool in targets.pool_size:
        value = day_index.xs(pd.Timestamp(pool.date), level="date")["pool"]
        rows.append(_point_rows("pool_size", str(pool.date), value, pool.size))
    if targets.gmv is not None:
        upto = daily[daily["date"] <= pd.Timestamp(targets.gmv.by)]
        value = upto.groupby("rep")["gmv_cny"].sum()
        rows.append(_point_rows("gmv", str(targets.gmv.by), value, targets.gmv.total_cny))
    if not rows:
        return pd.DataFrame(columns=TARGET_COLUMNS)
    return pd.concat(rows, ignore_index=True)[TARGET_COLUMNS]


def _point_rows(name: str, period: str, value: pd.Series, goal: float) -> pd.DataFrame:
    return pd.DataFrame({"rep": value.index, "target": name, "period": period,
                         "value": value.to_numpy(dtype=float), "goal": float(goal),
                         "met": (value >= goal).to_numpy()})


def _full_months(daily: pd.DataFrame) -> list[str]:
    dates = daily.drop_duplicates("day")["date"]
    months = dates.dt.strftime("%Y-%m")
    counted = months.value_counts()
    return [m for m, n in counted.items() if n == dates[months == m].iloc[0].days_in_month]


def interval(values: pd.Series, level: float = 0.9) -> tuple[float, float, float]:
    """Mean and the central ``level`` interval of replications."""
    tail = (1 - level) / 2
    return float(values.mean()), float(values.quantile(tail)), float(values.quantile(1 - tail))


def parameter_share(values: np.ndarray, groups: np.ndarray) -> float | None:
    """Share of the variance between replications due to parameter uncertainty.

    Replications in one group share a parameter draw, so by the law of total variance
    the within-group variance estimates chance and the variance of the group means,
    less chance's share of it, the parameters' (one-way random-effects ANOVA, with the
    negative estimate truncated at 0). ``None`` when there is no group of two.
    """
    frame = pd.DataFrame({"v": values, "g": groups}).dropna()
    sizes = frame.groupby("g")["v"].size()
    if (sizes >= 2).sum() == 0 or sizes.size < 2:
        return None
    within = float(frame.groupby("g")["v"].var(ddof=1).dropna().mean())
    between = float(frame.groupby("g")["v"].mean().var(ddof=1))
    param = max(between - within / float(sizes.mean()), 0.0)
    total = param + within
    return param / total if total > 0 else 0.0


def horizon_kpis(monthly: pd.DataFrame) -> pd.DataFrame:
    """Overall KPIs over the whole horizon, per replication: ``rep, kpi, value``.

    Flows are summed, ``pool_size`` is the last month's, cost per add and per member
    are total spend over total adds and members, and the monthly rates
    (``deletion_rate``, ``member_order_share``, ``k_factor``, ``ltv_cny``) are averaged
    over the months.
    """
    wide = monthly[monthly["channel"] == ALL].pivot_table(
        index=["rep", "month"], columns="kpi", values="value", dropna=False).sort_index()
    by_rep = wide.groupby(level="rep")
    total = by_rep[list(FLOWS)].sum()
    total["pool_size"] = by_rep["pool_size"].last()
    total[list(RATES)] = by_rep[list(RATES)].mean()
    total["cost_per_add_cny"] = _ratio(total["spend_cny"], total["new_adds"])
    total["cost_per_member_cny"] = _ratio(total["spend_cny"], total["new_members"])
    tidy = total.stack(future_stack=True).rename("value").reset_index()
    return tidy.rename(columns={tidy.columns[1]: "kpi"})[["rep", "kpi", "value"]]
