"""What every synthetic bundle shares: its time window, the scenario's channels and spend
over that window, and turning arrays of people and events into the bundle's frames.

Times are float days since the window's first day (``0.5`` = noon of the first day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simdomain.errors import InputError, Problem
from simdomain.scenario.model import Scenario
from simdomain.synth.bundle import month_labels, timestamps

DEFAULT_HISTORY_DAYS = 730
GENERIC_STAFF = 3
"""Service accounts that take adds not tied to a channel's staff (organic, referral)."""


@dataclass(frozen=True)
class Window:
    """The days a bundle covers: ``days`` days from ``start``; data ends before ``as_of``."""

    start: dt.date
    days: int

    @property
    def as_of(self) -> dt.date:
        """The day after the last day of data (the scenario's start date)."""
        return self.start + dt.timedelta(days=self.days)

    def months(self) -> list[tuple[str, float, float]]:
        """Each calendar month touched: (``YYYY-MM``, first day, day after its last), clipped."""
        out = []
        first = dt.date(self.start.year, self.start.month, 1)
        while first < self.as_of:
            following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            lo = max((first - self.start).days, 0)
            hi = min((following - self.start).days, self.days)
            out.append((f"{first:%Y-%m}", float(lo), float(hi)))
            first = following
        return out


def history_window(scenario: Scenario, *, history_days: int | None = None,
                   start: dt.date | None = None) -> Window:
    """The history before the scenario's start date: ``history_days`` days, or from ``start``.

    The data ends the day before ``scenario.start_date``, so a twin calibrated on it
    (``--as-of`` the scenario's start) plans the scenario's own horizon.

    Raises
    ------
    InputError
        If both or a bad one are given.
    """
    if history_days is not None and start is not None:
        raise InputError([Problem("synth", (), "give --history-days or --start, not both")])
    if start is not None:
        history_days = (scenario.start_date - start).days
        if history_days < 28:
            raise InputError([Problem("--start", (), f"{start} must be at least 28 days before "
                                      f"the scenario's start date {scenario.start_date}")])
    days = DEFAULT_HISTORY_DAYS if history_days is None else history_days
    if not 28 <= days <= 3660:
        raise InputError([Problem("--history-days", (), f"expected 28 to 3660 days, got {days}")])
    return Window(scenario.start_date - dt.timedelta(days=days), days)


def plan_month(scenario: Scenario, label: str) -> int:
    """Index into the scenario's monthly lists for a calendar month of the history.

    The history repeats the plan by calendar month: a month ``k`` months before the
    scenario's start reads the plan's month ``-k`` modulo the plan's length.
    """
    year, month = int(label[:4]), int(label[5:])
    offset = (year - scenario.start_date.year) * 12 + month - scenario.start_date.month
    return offset % scenario.months


def channel_months(scenario: Scenario, window: Window) -> pd.DataFrame:
    """Per channel and month of the window: spend, contacts and the expected adds.

    A month the window covers only in part gets that part of the month's variable spend
    (and, as in the engine, its fixed and staff costs in full); adds (bought and free)
    are capped at the channel's staff capacity. Campaign multipliers are left out. Contacts
    carry over from month to month as in the engine (``Channel.working_contacts``), from
    the channel's ``carried_contacts`` before the window's first month.
    """
    rows = []
    previous = {name: channel.carried_contacts for name, channel in scenario.channels.items()}
    for label, lo, hi in window.months():
        year, month = int(label[:4]), int(label[5:])
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        length = (following - dt.date(year, month, 1)).days
        share = (hi - lo) / length
        for name, channel in scenario.channels.items():
            planned = channel.spend_in_month(plan_month(scenario, label))
            contacts = channel.contacts(planned)
            spend = contacts * channel.cost_per_contact_cny
            adds = (scenario.expected_monthly_adds(name, spend, previous[name])
                    + channel.free_adds_per_month) * share
            previous[name] = contacts + channel.carryover * previous[name]
            if channel.staff is not None:
                adds = min(adds, channel.staff.daily_capacity * (hi - lo))
            if planned > 0:  # as the engine: the month's fixed and staff costs in full
                staff = channel.staff
                spend_month = spend * share + channel.fixed_cost_cny + (
                    staff.accounts * staff.monthly_cost_per_account_cny if staff else 0.0)
            else:
                spend_month = 0.0
            rows.append((label, name, spend_month, contacts * share, adds, lo, hi))
    frame = pd.DataFrame(rows, columns=["month", "channel", "spend_cny", "contacts",
                                        "expected_adds", "lo", "hi"])
    numbers = ["spend_cny", "contacts", "expected_adds", "lo", "hi"]
    return frame.astype(dict.fromkeys(numbers, np.float64))


def channel_curves(scenario: Scenario) -> dict[str, dict[str, float | None]]:
    """Each channel's true response curve in the twin's terms (for truth.json): a full
    month's mean adds are ``free + A (1 - exp(-b e / A))`` with ``e_m = x_m + lambda
    e_(m-1)`` the spend at work (yuan); ``A`` is None for a channel without saturation."""
    out = {}
    for name, channel in scenario.channels.items():
        per_contact = channel.add_rate * channel.propensity.add * sum(
            share * scenario.segments[k].propensity.add
            for k, share in scenario.audience(name).items())
        scale = channel.saturation_contacts
        out[name] = {"peak_adds": None if scale is None else per_contact * scale,
                     "adds_per_cny": per_contact / channel.cost_per_contact_cny,
                     "carryover": channel.carryover,
                     "free_adds_per_month": channel.free_adds_per_month,
                     "fixed_cost_cny": channel.fixed_cost_cny}
    return out


def spend_frame(months: pd.DataFrame) -> pd.DataFrame:
    """The ``spend`` file: month, channel, spend_cny (2 decimals), contacts (whole)."""
    return pd.DataFrame({
        "month": months["month"].to_numpy(),
        "channel": months["channel"].to_numpy(),
        "spend_cny": months["spend_cny"].round(2).to_numpy(),
        "contacts": np.rint(months["contacts"]).astype(np.int64).to_numpy(),
    })


def staff_ids(scenario: Scenario, channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A staff account for each add: one of its channel's accounts, else a service account."""
    out = np.empty(len(channel), dtype=object)
    names = [*scenario.channels]
    for name in np.unique(channel):
        rows = np.flatnonzero(channel == name)
        staff = scenario.channels[name].staff if name in names else None
        if staff is not None and staff.accounts > 0:
            prefix, count = str(name), staff.accounts
        else:
            prefix, count = "service", GENERIC_STAFF
        picks = rng.integers(1, count + 1, size=len(rows))
        out[rows] = labels(f"{prefix}-", picks, 2)
    return out


def labels(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` then each number zero-padded to ``width`` digits, as Python strings."""
    if len(numbers) == 0:
        return np.empty(0, dtype=object)
    return np.char.add(prefix, np.char.zfill(np.asarray(numbers).astype(str), width)).astype(object)


def customer_ids(count: int) -> np.ndarray:
    """``C0000001`` ... in the order given (the caller sorts people by first appearance)."""
    return labels("C", np.arange(1, count + 1), 7)


def order_ids(count: int) -> np.ndarray:
    """``O000000001`` ... in the order given (the caller sorts orders by time)."""
    return labels("O", np.arange(1, count + 1), 9)


def contacts_frame(start: dt.date, ids: np.ndarray, added: np.ndarray, channel: np.ndarray,
                   staff: np.ndarray, deleted: np.ndarray, by_customer: np.ndarray
                   ) -> pd.DataFrame:
    """The ``contacts`` file, sorted by add time; ``deleted`` is NaN if never."""
    gone = np.isfinite(deleted)
    frame = pd.DataFrame({
        "customer_id": ids, "added_at": timestamps(start, added), "channel": channel,
        "staff_id": staff, "deleted_at": timestamps(start, deleted),
        "deleted_by": np.where(gone, np.where(by_customer, "customer", "staff"), ""),
    })
    return frame.iloc[np.argsort(added, kind="stable")].reset_index(drop=True)


def orders_frame(start: dt.date, ids: np.ndarray, at: np.ndarray, amount: np.ndarray,
                 channel: np.ndarray, items: np.ndarray) -> pd.DataFrame:
    """The ``orders`` file: one row per order, sorted by time, ids in time order."""
    order = np.argsort(at, kind="stable")
    return pd.DataFrame({
        "customer_id": ids[order], "ordered_at": timestamps(start, at[order]),
        "amount": np.round(amount[order], 2), "order_id": order_ids(len(order)),
        "channel": channel[order], "items": items[order].astype(np.int64),
    })


def members_frame(start: dt.date, ids: np.ndarray, joined: np.ndarray,
                  tier: np.ndarray) -> pd.DataFrame:
    """The ``members`` file, sorted by join time."""
    order = np.argsort(joined, kind="stable")
    return pd.DataFrame({"customer_id": ids[order], "joined_at": timestamps(start, joined[order]),
                         "tier": tier[order]})


def referrals_frame(start: dt.date, referrer: np.ndarray, referred: np.ndarray,
                    at: np.ndarray) -> pd.DataFrame:
    """The ``referrals`` file, sorted by time."""
    order = np.argsort(at, kind="stable")
    return pd.DataFrame({"referrer_id": referrer[order], "referred_id": referred[order],
                         "at": timestamps(start, at[order])})


def monthly_counts(start: dt.date, days: np.ndarray) -> dict[str, int]:
    """Events per ``YYYY-MM`` (for truth.json)."""
    labels, counts = np.unique(month_labels(start, days), return_counts=True)
    return {str(k): int(v) for k, v in zip(labels, counts)}


def pick(rng: np.random.Generator, choices: list[str], shares: list[float],
         size: int) -> np.ndarray:
    """``size`` draws from ``choices`` with the given shares (by inversion)."""
    cdf = np.cumsum(shares) / np.sum(shares)
    index = np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(choices) - 1)
    return np.asarray(choices, dtype=object)[index]
