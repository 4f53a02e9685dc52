"""What an add from each channel is worth downstream: the channel value table.

The table comes from a **cohort model** fitted on the simulated adds (people a channel,
referral or organic word of mouth brought, never the initial pool): a daily
multi-state life table over tenure (days since the add) with the states fan, customer,
member, KOC, and "deleted after reaching" each of them. For each channel x segment and
tenure band it estimates the daily probability of each move (first order, joining, KOC,
deletion from each stage) as events over person-days at risk, with administrative
censoring at the last observed day, and the daily repeat-order rate of customers,
members and KOCs from the panel's 30-day windows. Rolling the chain forward from the
add gives every expected count at any horizon; within the observed follow-up this is
the life-table estimate of what the simulation realized (``basis_* = "observed"``);
beyond it the last band's daily rates continue (``"extrapolated"``).

Sparse cells borrow strength: a cell's rate is ``(events + k * prior) / (exposure + k)``
with ``k = prior_days`` person-days and ``prior`` the channel's rate (itself shrunk to
the rate over all channels).

Column contract of :func:`channel_value_table` (:data:`VALUE_COLUMNS`), one row per
channel and segment plus a ``segment == "all"`` row per channel (the channel's own
segment mix of adds). Horizons count the add day as day 1: "within 90 days" is tenure
0 to 89.

=========================  ================================================================
column                     meaning
=========================  ================================================================
``channel``                source of the adds: a scenario channel, ``referral`` or ``organic``
``segment``                a scenario segment, ``fraud`` (fake referred accounts) or ``all``
``adds``                   adds per replication in the simulated window (cohort size)
``members_per_add``        members per add within 365 days (ever joined, deleted or not)
``members_per_add_90d``    members per add within 90 days
``customers_per_add``      adds who order at least once within 365 days, per add
``retention_90d``          share of adds who have not deleted the brand 90 days on
``retention_365d``         the same at 365 days
``orders_per_add_90d``     expected orders per add within 90 days (first and repeat)
``orders_per_add_365d``    the same within 365 days
``gmv_per_add_90d_cny``    expected GMV per add within 90 days (yuan)
``gmv_per_add_365d_cny``   the same within 365 days
``kocs_per_1000_adds``     KOCs per 1,000 adds within 365 days
``aov_cny``                average order value
``lifetime_years``         1 / (12 x monthly deletion rate), the monthly rate from
                           ``retention_365d``; NaN if nobody deletes
``ltv_cny``                the domain's LTV per buyer: lifetime_years x aov_cny x orders
                           per buyer in the first year (orders_per_add_365d /
                           customers_per_add)
``basis_90d``              ``observed`` or ``extrapolated`` (90-day columns)
``basis_365d``             the same for the 365-day columns and the LTV
=========================  ================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simdomain.simulation import SimulationResult

VALUE_COLUMNS = [
    "channel", "segment", "adds", "members_per_add", "members_per_add_90d",
    "customers_per_add", "retention_90d", "retention_365d",
    "orders_per_add_90d", "orders_per_add_365d", "gmv_per_add_90d_cny", "gmv_per_add_365d_cny",
    "kocs_per_1000_adds", "aov_cny", "lifetime_years", "ltv_cny", "basis_90d", "basis_365d",
]
ALL_SEGMENTS = "all"
BANDS = (0, 1, 3, 7, 14, 30, 60, 90, 120, 180, 270)
"""Starts of the tenure bands (days) of the move rates; the last is open-ended."""
ORDER_BANDS = (0, 30, 60, 90, 120, 180, 270)
"""Starts of the tenure bands of the repeat-order rates."""

FAN, CUSTOMER, MEMBER, KOC = range(4)
N_STATES = 8
"""Alive stages 0-3, then "deleted after reaching stage s" at ``4 + s``."""
NEVER = np.iinfo(np.int64).max // 4
MONTH_DAYS = 30.4375


@dataclass
class Cohorts:
    """The adds of a simulation as of a day, in tenure (days since the add).

    Event tenures are :data:`NEVER` when the event did not happen by ``until_day``.
    """

    rep: np.ndarray
    agent: np.ndarray
    cell: np.ndarray
    cells: pd.DataFrame
    """``channel, segment`` of each cell code."""
    join_day: np.ndarray
    first_order: np.ndarray
    member: np.ndarray
    koc: np.ndarray
    deletion: np.ndarray
    follow: np.ndarray
    """Last observed tenure (``until_day - join_day``)."""
    until_day: int
    reps: int

    @classmethod
    def of(cls, result: SimulationResult, until_day: int | None = None,
           joined: tuple[int, int] | None = None) -> Cohorts:
        """The adds in ``result.agents`` with what was known at the end of ``until_day``
        (default: the last simulated day), optionally only those added on days
        ``joined[0] .. joined[1]``."""
        if result.agents is None:
            raise ValueError("the cohorts need the agents: simulate with keep_agents=True")
        last = result.scenario.horizon_days - 1
        until = last if until_day is None else int(until_day)
        if not 0 <= until <= last:
            raise ValueError(f"until_day must lie in 0..{last}, got {until_day}")
        agents = result.agents
        join = agents["join_day"].to_numpy(np.int64)
        first, last_join = (0, until) if joined is None else joined
        keep = (join >= max(first, 0)) & (join <= min(last_join, until))
        frame = agents[keep]
        join = join[keep]
        channel = frame["source"].astype(str).to_numpy()
        segment = frame["segment"].astype(str).to_numpy()
        cells, cell = _cells(channel, segment, result)

        def tenure(column: str) -> np.ndarray:
            day = frame[column].to_numpy(np.int64)
            return np.where((day >= 0) & (day <= until), day - join, NEVER)

        return cls(rep=frame["rep"].to_numpy(np.int64), agent=frame["agent"].to_numpy(np.int64),
                   cell=cell, cells=cells, join_day=join,
                   first_order=tenure("first_order_day"), member=tenure("member_day"),
                   koc=tenure("koc_day"), deletion=tenure("deletion_day"),
                   follow=until - join, until_day=until, reps=result.reps)


def _cells(channel: np.ndarray, segment: np.ndarray,
           result: SimulationResult) -> tuple[pd.DataFrame, np.ndarray]:
    """Cell codes in a stable order: the scenario's channels, then referral and organic;
    segments in the scenario's order, then fraud."""
    scenario = result.scenario
    channel_order = [*scenario.channels, "referral", "organic"]
    segment_order = [*scenario.segments, "fraud"]
    pairs = pd.DataFrame({"channel": channel, "segment": segment}).drop_duplicates()
    pairs["c"] = pairs["channel"].map({c: i for i, c in enumerate(channel_order)}).fillna(99)
    pairs["s"] = pairs["segment"].map({s: i for i, s in enumerate(segment_order)}).fillna(99)
    cells = pairs.sort_values(["c", "s"])[["channel", "segment"]].reset_index(drop=True)
    code = pd.MultiIndex.from_frame(cells).get_indexer(
        pd.MultiIndex.from_arrays([channel, segment]))
    return cells, code.astype(np.int64)


class CohortModel:
    """Daily multi-state life table of adds per channel x segment (see the module docs).

    Parameters
    ----------
    bands, order_bands
        Starts of the tenure bands of the move rates and of the repeat-order rates.
    prior_days
        Person-days of the parent's rate mixed into each cell's rate.

    Attributes
    ----------
    cells_ : DataFrame
        ``channel, segment`` of each cell.
    moves_ : ndarray of shape (cells, bands, 4, 2)
        Daily probability, from each alive stage, of moving up (``[..., 0]``) and of
        deleting (``[..., 1]``).
    order_rate_ : ndarray of shape (cells, order_bands, 4)
        Daily repeat orders per customer, member and KOC (the fan column is 0).
    aov_ : ndarray of shape (cells,)
        Average order value (yuan).
    adds_ : ndarray of shape (cells,)
        Adds per replication.
    observed_days_ : int
        Longest follow-up of any add, in days (tenure + 1).
    """

    def __init__(self, *, bands: Sequence[int] = BANDS, order_bands: Sequence[int] = ORDER_BANDS,
                 prior_days: float = 50.0) -> None:
        self.bands = bands
        self.order_bands = order_bands
        self.prior_days = prior_days

    def fit(self, cohorts: Cohorts, panel: pd.DataFrame) -> CohortModel:
        """Fit on the adds (``cohorts``) and the panel's 30-day windows (``panel``, from
        :func:`simdomain.models.panel.build_panel` on the same result)."""
        bands = np.asarray(self.bands)
        if bands[0] != 0 or np.any(np.diff(bands) <= 0):
            raise ValueError(f"The 'bands' parameter must start at 0 and increase. Got {self.bands!r}.")
        n_cells = len(cohorts.cells)
        channel_of = pd.factorize(cohorts.cells["channel"])[0]
        self.observed_days_ = int(cohorts.follow.max()) + 1 if len(cohorts.follow) else 0
        events, exposure = _move_counts(cohorts, bands, n_cells)
        usable = _usable(bands, self.observed_days_)
        self.moves_ = _shrunk(events, exposure, channel_of, self.prior_days, usable)
        order_bands = np.asarray(self.order_bands)
        orders, days, gmv, counted = _window_counts(cohorts, panel, order_bands, n_cells)
        usable = _usable(order_bands, self.observed_days_ - 15)
        self.order_rate_ = _shrunk(orders, days, channel_of, self.prior_days, usable)
        self.order_rate_[..., FAN] = 0.0
        self.aov_ = _aov(gmv, counted, channel_of)
        self.cells_ = cohorts.cells
        self.adds_ = np.bincount(cohorts.cell, minlength=n_cells) / cohorts.reps
        return self

    def roll(self, days: int) -> tuple[np.ndarray, np.ndarray]:
        """State shares and cumulative expected orders per add, day by day.

        Returns ``shares`` of shape (cells, days + 1, 8), the states at the start of each
        tenure day (``shares[:, h]`` is the state "within h days"), and ``orders`` of shape
        (cells, days + 1), the expected orders in tenure days ``0 .. h - 1``.
        """
        moves, rates = self.moves_, self.order_rate_
        n_cells = moves.shape[0]
        band = np.searchsorted(np.asarray(self.bands), np.arange(days), side="right") - 1
        order_band = np.searchsorted(np.asarray(self.order_bands), np.arange(days), side="right") - 1
        shares = np.zeros((n_cells, days + 1, N_STATES))
        shares[:, 0, FAN] = 1.0
        orders = np.zeros((n_cells, days + 1))
        for t in range(days):
            now = shares[:, t]
            up, gone = moves[:, band[t], :, 0], moves[:, band[t], :, 1]
            alive = now[:, :4]
            nxt = now.copy()
            nxt[:, :4] -= alive * (up + gone)
            nxt[:, 1:4] += alive[:, :3] * up[:, :3]
            nxt[:, 4:] += alive * gone
            shares[:, t + 1] = nxt
            first = alive[:, FAN] * up[:, FAN]
            repeat = (alive * rates[:, order_band[t]]).sum(axis=1)
            orders[:, t + 1] = orders[:, t] + first + repeat
        return shares, orders

    def per_add(self, horizons: Sequence[int] = (90, 365)) -> pd.DataFrame:
        """Expected outcomes per add of each cell at each horizon (long form)."""
        days = max(horizons)
        shares, orders = self.roll(days)
        rows = []
        for h in horizons:
            s = shares[:, h]
            rows.append(pd.DataFrame({
                "cell": np.arange(len(s)), "horizon_days": h,
                "members": s[:, [MEMBER, KOC, 4 + MEMBER, 4 + KOC]].sum(axis=1),
                "customers": 1.0 - s[:, [FAN, 4 + FAN]].sum(axis=1),
                "kocs": s[:, [KOC, 4 + KOC]].sum(axis=1),
                "retention": s[:, :4].sum(axis=1),
                "orders": orders[:, h],
                "gmv_cny": orders[:, h] * self.aov_,
                "basis": "observed" if h <= self.observed_days_ else "extrapolated",
            }))
        return pd.concat(rows, ignore_index=True)


def _move_counts(cohorts: Cohorts, bands: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Events and person-days at risk per cell, band, alive stage and move (up, delete)."""
    n_bands = len(bands)
    events = np.zeros((n_cells, n_bands, 4, 2))
    exposure = np.zeros((n_cells, n_bands, 4, 2))
    follow = cohorts.follow
    entered = np.zeros_like(follow)  # tenure at which the person is in the stage at dawn
    reached = np.ones(len(follow), dtype=bool)
    for stage, leave_up in enumerate((cohorts.first_order, cohorts.member, cohorts.koc, None)):
        up = np.full_like(follow, NEVER) if leave_up is None else leave_up
        end = np.minimum(np.minimum(up, cohorts.deletion), follow)
        at_risk = reached & (end >= entered)
        for b, lo in enumerate(bands):
            hi = bands[b + 1] - 1 if b + 1 < n_bands else NEVER
            days = np.clip(np.minimum(end, hi) - np.maximum(entered, lo) + 1, 0, None) * at_risk
            exposure[:, b, stage, :] += np.bincount(cohorts.cell, weights=days,
                                                    minlength=n_cells)[:, None]
        band_of = np.searchsorted(bands, np.minimum(end, NEVER - 1), side="right") - 1
        moved_up = at_risk & (up == end) & (up <= follow)
        deleted = at_risk & (cohorts.deletion == end) & (cohorts.deletion <= follow)
        np.add.at(events, (cohorts.cell[moved_up], band_of[moved_up], stage, 0), 1.0)
        np.add.at(events, (cohorts.cell[deleted], band_of[deleted], stage, 1), 1.0)
        reached = moved_up
        entered = np.where(moved_up, up + 1, NEVER)
    return events, exposure


def _window_counts(cohorts: Cohorts, panel: pd.DataFrame, bands: np.ndarray,
                   n_cells: int) -> tuple[np.ndarray, ...]:
    """Repeat orders and days alive in the panel's 30-day windows that close by
    ``until_day``, per cell, order band (tenure at mid-window) and stage at the start."""
    n_bands = len(bands)
    windows = panel[(panel["day"] + 30 <= cohorts.until_day) & (panel["tenure_known"] > 0)]
    index = pd.MultiIndex.from_arrays([cohorts.rep, cohorts.agent])
    where = index.get_indexer(pd.MultiIndex.from_arrays(
        [windows["rep"].to_numpy(np.int64), windows["agent"].to_numpy(np.int64)]))
    found = where >= 0
    windows, where = windows[found], where[found]
    day = windows["day"].to_numpy(np.int64)
    stage = windows["stage"].cat.codes.to_numpy().astype(np.int64)
    deletion_day = cohorts.join_day[where] + cohorts.deletion[where]
    alive_days = np.clip(np.minimum(deletion_day, day + 30) - day, 0, 30).astype(float)
    mid = (day - cohorts.join_day[where]) + 15
    band = np.searchsorted(bands, mid, side="right") - 1
    cell = cohorts.cell[where]
    orders = windows["orders_next_30d"].to_numpy(float)
    gmv = windows["gmv_next_30d_cny"].to_numpy(float)
    shape = (n_cells, n_bands, 4)
    flat = np.ravel_multi_index((cell, band, stage), shape)
    repeat = stage > FAN
    count = np.bincount(flat[repeat], weights=orders[repeat], minlength=np.prod(shape))
    days = np.bincount(flat[repeat], weights=alive_days[repeat], minlength=np.prod(shape))
    value = np.bincount(cell, weights=gmv, minlength=n_cells)
    counted = np.bincount(cell, weights=orders, minlength=n_cells)
    return count.reshape(shape), days.reshape(shape), value, counted


def _usable(bands: np.ndarray, observed_days: int) -> np.ndarray:
    """Bands whose middle lies within the follow-up (the open last band counts as
    reaching day 365); the rates of the others are carried forward from the last
    usable band, so a band seen only on its first days does not set the tail."""
    ends = np.append(bands[1:], max(365, bands[-1] + 1))
    usable = (bands + ends) / 2 < observed_days
    usable[0] = True
    return usable


def _shrunk(events: np.ndarray, exposure: np.ndarray, channel_of: np.ndarray,
            prior_days: float, usable: np.ndarray) -> np.ndarray:
    """Rates per cell (axis 0) and band (axis 1), shrunk to their channel's, shrunk to
    the overall; bands not ``usable``, or that nobody reached, take the previous band's
    rate."""
    events = np.where(usable.reshape(1, -1, *[1] * (events.ndim - 2)), events, 0.0)
    exposure = np.where(usable.reshape(1, -1, *[1] * (exposure.ndim - 2)), exposure, 0.0)
    overall_exposure = exposure.sum(axis=0)
    overall = np.divide(events.sum(axis=0), overall_exposure,
                        out=np.full(overall_exposure.shape, np.nan), where=overall_exposure > 0)
    overall = np.nan_to_num(_carry_forward(overall))
    rates = np.empty_like(events)
    for channel in np.unique(channel_of):
        mine = channel_of == channel
        ch_rate = (events[mine].sum(axis=0) + prior_days * overall) / (
            exposure[mine].sum(axis=0) + prior_days)
        rates[mine] = (events[mine] + prior_days * ch_rate) / (exposure[mine] + prior_days)
    for b in np.flatnonzero(~usable):
        rates[:, b] = rates[:, b - 1]
    return np.clip(rates, 0.0, 1.0)


def _carry_forward(rates: np.ndarray) -> np.ndarray:
    """Along axis 0 (bands), NaN takes the last finite value before it."""
    out = rates.copy()
    for b in range(1, len(out)):
        out[b] = np.where(np.isnan(out[b]), out[b - 1], out[b])
    return out


def _aov(gmv: np.ndarray, orders: np.ndarray, channel_of: np.ndarray) -> np.ndarray:
    overall = gmv.sum() / orders.sum() if orders.sum() > 0 else np.nan
    aov = np.full(len(gmv), overall)
    for channel in np.unique(channel_of):
        mine = channel_of == channel
        if orders[mine].sum() > 0:
            aov[mine] = gmv[mine].sum() / orders[mine].sum()
    has = orders > 0
    aov[has] = gmv[has] / orders[has]
    return aov


def channel_value_table(model: CohortModel) -> pd.DataFrame:
    """The channel value table (see the module docstring for its columns)."""
    long = model.per_add((90, 365))
    h90 = long[long["horizon_days"] == 90].set_index("cell")
    h365 = long[long["horizon_days"] == 365].set_index("cell")
    cells = model.cells_.assign(adds=model.adds_)
    per_add = pd.DataFrame({
        "members_per_add": h365["members"], "members_per_add_90d": h90["members"],
        "customers_per_add": h365["customers"], "retention_90d": h90["retention"],
        "retention_365d": h365["retention"], "orders_per_add_90d": h90["orders"],
        "orders_per_add_365d": h365["orders"], "gmv_per_add_90d_cny": h90["gmv_cny"],
        "gmv_per_add_365d_cny": h365["gmv_cny"],
        "kocs_per_1000_adds": 1000 * h365["kocs"],
    })
    table = pd.concat([cells, per_add.reset_index(drop=True)], axis=1)
    mixed = []
    for channel, group in table.groupby("channel", sort=False):
        weights = group["adds"] / group["adds"].sum() if group["adds"].sum() > 0 else None
        row = {"channel": channel, "segment": ALL_SEGMENTS, "adds": group["adds"].sum()}
        for column in per_add.columns:
            row[column] = float(np.average(group[column], weights=weights))
        mixed.append(row)
    table = pd.concat([table, pd.DataFrame(mixed)], ignore_index=True)
    order = {c: i for i, c in enumerate(dict.fromkeys(model.cells_["channel"]))}
    table["_c"] = table["channel"].map(order)
    table["_s"] = (table["segment"] == ALL_SEGMENTS).astype(int)
    table = table.sort_values(["_c", "_s"], kind="stable").drop(columns=["_c", "_s"])
    table["aov_cny"] = _ratio(table["gmv_per_add_365d_cny"], table["orders_per_add_365d"])
    monthly = 1.0 - table["retention_365d"] ** (MONTH_DAYS / 365.0)
    table["lifetime_years"] = _ratio(pd.Series(1.0, index=table.index), 12 * monthly)
    per_buyer = _ratio(table["orders_per_add_365d"], table["customers_per_add"])
    table["ltv_cny"] = table["lifetime_years"] * table["aov_cny"] * per_buyer
    table["basis_90d"] = "observed" if 90 <= model.observed_days_ else "extrapolated"
    table["basis_365d"] = "observed" if 365 <= model.observed_days_ else "extrapolated"
    return table[VALUE_COLUMNS].reset_index(drop=True)


def _ratio(a: pd.Series, b: pd.Series) -> pd.Series:
    return a / b.where(b > 0)


def realized_outcomes(result: SimulationResult, horizon_days: int,
                      by: Sequence[str] = ("channel",)) -> pd.DataFrame:
    """What the simulation realized per replication for adds followed ``horizon_days``
    in full (added by day ``last - horizon_days + 1``): ``rep``, the ``by`` columns,
    ``adds``, ``members_per_add``, ``customers_per_add``, ``retention``,
    ``kocs_per_1000_adds``."""
    cohorts = Cohorts.of(result)
    complete = cohorts.follow >= horizon_days - 1
    h = horizon_days - 1
    cells = cohorts.cells.iloc[cohorts.cell[complete]].reset_index(drop=True)
    frame = pd.DataFrame({
        "rep": cohorts.rep[complete],
        "channel": cells["channel"], "segment": cells["segment"],
        "member": cohorts.member[complete] <= h,
        "customer": cohorts.first_order[complete] <= h,
        "retained": cohorts.deletion[complete] > h,
        "koc": cohorts.koc[complete] <= h,
    })
    grouped = frame.groupby(["rep", *by], sort=False)
    out = grouped.agg(adds=("member", "size"), members_per_add=("member", "mean"),
                      customers_per_add=("customer", "mean"), retention=("retained", "mean"),
                      kocs_per_1000_adds=("koc", "mean")).reset_index()
    out["kocs_per_1000_adds"] *= 1000
    return out
