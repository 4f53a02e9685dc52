"""What an add is worth, by the channel it came through: members, orders, GMV and
deletions per add within a fixed follow-up, from the brand's own people.

Only people added at least :data:`FOLLOW_UP_DAYS` before the as-of date count (every
cohort followed for the full window), so channels that grew lately are not made to look
worse. Members and deletions per add are shares: their 90% intervals are the quantiles of
the Jeffreys beta posterior. Orders and GMV per add are means of skewed counts: their
intervals come from a Poisson bootstrap over people (each person weighted by a Poisson(1)
draw, :data:`BOOTSTRAP` times), or past :data:`BOOTSTRAP_MAX` people in a channel from
the normal approximation it tends to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from simdomain.twin.history import History

FOLLOW_UP_DAYS = 180
BOOTSTRAP = 400
BOOTSTRAP_MAX = 20_000
"""Past this many people a channel's intervals for orders and GMV are normal (CLT)."""
LEVEL = 0.9


def channel_values(history: History, *, follow_up_days: int = FOLLOW_UP_DAYS,
                   seed: int = 0) -> pd.DataFrame:
    """One row per contact channel with a cohort of full follow-up.

    Columns: ``channel, adds`` (people followed), ``follow_up_days``, ``members_per_add``
    with ``_low``/``_high`` (if the data has members), ``orders_per_add``, ``gmv_per_add_cny``
    and ``deletions_per_add``, each with ``_low``/``_high``. Readable by ``simdomain plan
    --channel-values``.
    """
    people = history.people
    followed = people[people["contact"] & (people["add_day"] <= -follow_up_days)]
    if followed.empty:
        return pd.DataFrame(columns=["channel", "adds", "follow_up_days"])
    add = followed["add_day"].to_numpy(float)
    within = {}
    for name, column in (("members", "member_day"), ("deletions", "deletion_day")):
        day = followed[column].to_numpy(float)
        within[name] = np.isfinite(day) & (day - add < follow_up_days)
    rows = people.index.get_indexer(followed.index)
    orders = history.orders
    owner = orders["person"].to_numpy()
    position = np.full(len(people), -1)
    position[rows] = np.arange(len(rows))
    slot = position[owner]
    day = orders["day"].to_numpy(float)
    keep = slot >= 0
    keep[keep] &= (day[keep] >= add[slot[keep]]) & (day[keep] < add[slot[keep]] + follow_up_days)
    count = np.bincount(slot[keep], minlength=len(rows)).astype(float)
    gmv = np.bincount(slot[keep], weights=orders["amount"].to_numpy(float)[keep],
                      minlength=len(rows))
    source = followed["source"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    out = []
    for channel in sorted(set(source)):
        mine = source == channel
        n = int(mine.sum())
        row: dict[str, object] = {"channel": channel, "adds": n,
                                  "follow_up_days": follow_up_days}
        if "members" in history.tables:
            row |= _share("members_per_add", int(within["members"][mine].sum()), n)
        row |= _means(("orders_per_add", "gmv_per_add_cny"), (count[mine], gmv[mine]), rng)
        if "contacts" in history.tables:
            row |= _share("deletions_per_add", int(within["deletions"][mine].sum()), n)
        out.append(row)
    return pd.DataFrame(out)


def _share(name: str, k: int, n: int) -> dict[str, float]:
    low, high = stats.beta.ppf([(1 - LEVEL) / 2, (1 + LEVEL) / 2], k + 0.5, n - k + 0.5)
    return {name: k / n, f"{name}_low": float(low), f"{name}_high": float(high)}


def _means(names: tuple[str, ...], columns: tuple[np.ndarray, ...],
           rng: np.random.Generator) -> dict[str, float]:
    """Means and their 90% intervals: a Poisson bootstrap over people (the same weights
    for every column), or, past :data:`BOOTSTRAP_MAX` people, the normal approximation
    that the bootstrap tends to (the standard error of the mean)."""
    n = len(columns[0])
    out: dict[str, float] = {}
    if n > BOOTSTRAP_MAX:
        z = stats.norm.ppf((1 + LEVEL) / 2)
        for name, values in zip(names, columns):
            mean, se = float(values.mean()), float(values.std(ddof=1) / np.sqrt(n))
            out |= {name: mean, f"{name}_low": mean - z * se, f"{name}_high": mean + z * se}
        return out
    w = rng.poisson(1.0, size=(BOOTSTRAP, n)).astype(np.float64)
    weight = np.maximum(w.sum(axis=1), 1.0)
    for name, values in zip(names, columns):
        low, high = np.quantile(w @ values / weight, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        out |= {name: float(values.mean()), f"{name}_low": float(low), f"{name}_high": float(high)}
    return out
