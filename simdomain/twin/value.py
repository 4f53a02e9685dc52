"""Order value: customers in tiers by their mean order value, a lognormal per tier.

Order-value tier is one of the segments that mattered in the seeds' AI-call tests
(000_1884a523510c7721.txt), so the twin's segments are value tiers: each customer is in
the tier of their own mean order value, each tier's orders are lognormal with the
tier's mean and coefficient of variation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TIERS = ("low_value", "mid_value", "high_value")
MIN_PER_TIER = 30
"""Fewer customers than this per tier and the tiers are merged."""


@dataclass(frozen=True)
class Tier:
    """One value tier: its share of customers and its order values."""

    share: float
    customers: int
    orders: int
    mean_cny: float
    cv: float
    mean_se: float
    """Standard error of the mean order value (orders of one person are not independent,
    so it is computed over customers' mean values)."""
    upper_cny: float
    """The tier's upper bound on a customer's mean order value."""


def fit_value_tiers(people: pd.DataFrame, orders: pd.DataFrame) -> dict[str, Tier]:
    """Split customers into value tiers by terciles of their mean order value.

    ``orders`` has ``person`` (row of ``people``) and ``amount``.
    """
    customers = people[people["orders"] > 0]
    count = len(TIERS) if len(customers) >= MIN_PER_TIER * len(TIERS) else 1
    names = TIERS if count == len(TIERS) else ("all_customers",)
    cuts = np.quantile(customers["mean_order_cny"], np.linspace(0, 1, count + 1)[1:-1])
    tier = np.searchsorted(cuts, customers["mean_order_cny"].to_numpy(), side="right")
    tier_of_person = np.full(len(people), -1)
    tier_of_person[np.flatnonzero(people["orders"].to_numpy() > 0)] = tier
    amounts = orders.loc[orders["amount"] > 0]
    order_tier = tier_of_person[amounts["person"].to_numpy()]
    out = {}
    bounds = [*cuts, np.inf]
    for t, name in enumerate(names):
        values = amounts["amount"].to_numpy()[order_tier == t]
        means = customers["mean_order_cny"].to_numpy()[tier == t]
        mean = float(values.mean()) if len(values) else float(customers["mean_order_cny"].mean())
        out[name] = Tier(
            share=float(np.mean(tier == t)), customers=int(np.sum(tier == t)),
            orders=len(values), mean_cny=mean,
            cv=float(values.std() / mean) if len(values) > 1 and mean > 0 else 0.0,
            mean_se=float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else 0.0,
            upper_cny=float(bounds[t]),
        )
    return out


def tier_of(people: pd.DataFrame, tiers: dict[str, Tier]) -> np.ndarray:
    """Each person's tier index; people with no order get -1 (drawn by share later)."""
    upper = np.array([t.upper_cny for t in tiers.values()])[:-1]
    tier = np.searchsorted(upper, people["mean_order_cny"].fillna(np.nan).to_numpy(), side="right")
    return np.where(people["orders"].to_numpy() > 0, tier, -1)
