"""Every known person's history at the as-of date, one row each, from a brand's clean data.

A person is anyone in the contacts, orders or members; their timeline runs
add -> first order -> member -> KOC, and ends at a deletion or at the as-of date.
Days are counted from the as-of date (negative: before it), in whole days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

NEVER = np.nan
"""Day of an event that has not happened."""

NOT_A_CONTACT = "not_a_contact"
"""Source of buyers who are not in the contacts (marketplace buyers, orders-only data).

The twin keeps them as a channel of their own, so their rates are their own (they
cannot delete the brand, and rarely join) and bring no new people in the forecast."""


@dataclass(frozen=True)
class History:
    """One row per person known at ``as_of``; the orders behind it.

    Attributes
    ----------
    people
        Indexed by ``customer_id``: ``source``, ``add_day``, ``first_order_day``,
        ``last_order_day``, ``member_day``, ``koc_day``, ``deletion_day`` (days relative to
        ``as_of``, NaN if never), ``deleted_by``, ``orders``, ``order_days`` (distinct
        days with an order), ``gmv_cny``, ``x``, ``t_x``, ``T`` (repeat order days, first
        to last order and first order to as-of, in days), ``mean_order_cny``,
        ``contact`` (in the contacts), ``referrals`` (people they referred).
    orders
        The orders up to ``as_of``: ``person`` (row of ``people``), ``day`` (relative to
        as_of, may be fractional), ``amount``.
    days
        One row per person and day with an order (the customer-days the order models
        count): ``person``, ``day`` (whole), ``amount`` (the day's sum).
    as_of
        The last day of the data used (its end is day 0).
    tables
        Which of ``contacts``, ``members``, ``referrals`` the data had.
    """

    people: pd.DataFrame
    orders: pd.DataFrame
    days: pd.DataFrame
    as_of: dt.date
    tables: frozenset[str] = frozenset()

    @property
    def customers(self) -> pd.DataFrame:
        """People with at least one order."""
        return self.people[self.people["orders"] > 0]

    def repeat_days(self) -> pd.Series:
        """The day of each repeat order (customer-days after each customer's first)."""
        first = self.people["first_order_day"].to_numpy()[self.days["person"].to_numpy()]
        return self.days.loc[self.days["day"].to_numpy() > first, "day"]


def _days(times: pd.Series, end: pd.Timestamp) -> pd.Series:
    """Days from ``end`` (the as-of date's end) to each time: negative before it."""
    return (pd.to_datetime(times) - end) / pd.Timedelta(days=1)


def build_history(
    orders: pd.DataFrame,
    as_of: dt.date,
    *,
    contacts: pd.DataFrame | None = None,
    members: pd.DataFrame | None = None,
    referrals: pd.DataFrame | None = None,
) -> History:
    """Assemble each person's timeline from clean frames (see :mod:`simdomain.data`).

    Parameters
    ----------
    orders
        ``customer_id, ordered_at, amount``; orders after ``as_of`` are ignored.
    as_of
        The last day of data to use.
    contacts, members, referrals
        Optional: ``customer_id, added_at, channel, deleted_at, deleted_by``;
        ``customer_id, joined_at``; ``referrer_id, referred_id, at``.
    """
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    o = orders.loc[pd.to_datetime(orders["ordered_at"]) < end,
                   ["customer_id", "ordered_at", "amount"]]
    ids = o["customer_id"]
    if isinstance(ids.dtype, pd.CategoricalDtype):  # the bundle's shared id categories
        codes, names = ids.cat.codes.to_numpy(np.int64), ids.cat.categories.astype(str)
    else:
        codes, names = pd.factorize(ids.astype(str))
        names = pd.Index(names)
    day = _days(o["ordered_at"], end).to_numpy()
    amount = o["amount"].to_numpy(dtype=float)
    whole = np.floor(day)
    # one key per customer-day, sorted by customer then day: the work is sorting the orders
    low = whole.min() if len(whole) else 0.0
    width = int(-low) + 2
    keys, inverse = np.unique(codes * width + (whole - low).astype(np.int64), return_inverse=True)
    day_code, day_whole = keys // width, keys % width + low
    day_amount = np.bincount(inverse, weights=amount, minlength=len(keys))
    present, first_row, order_days = np.unique(day_code, return_index=True, return_counts=True)
    last_row = first_row + order_days - 1
    orders_count = np.bincount(codes, minlength=len(names))[present]
    people = pd.DataFrame({
        "first_order_day": day_whole[first_row],
        "last_order_day": day_whole[last_row],
        "orders": orders_count,
        "order_days": order_days,
        "gmv_cny": np.bincount(codes, weights=amount, minlength=len(names))[present],
    }, index=pd.Index(names[present], name="customer_id"))
    people["x"] = people["order_days"] - 1
    people["t_x"] = people["last_order_day"] - people["first_order_day"]
    people["mean_order_cny"] = people["gmv_cny"] / people["orders"]

    frames = [people]
    if contacts is not None and len(contacts):
        c = contacts.loc[pd.to_datetime(contacts["added_at"]) < end].copy()
        c["customer_id"] = c["customer_id"].astype(str)
        c = c.sort_values("added_at", kind="stable").drop_duplicates("customer_id")
        deleted = pd.to_datetime(c.get("deleted_at"))
        deleted = deleted.where(deleted < end) if deleted is not None else None
        cf = pd.DataFrame({
            "source": c["channel"].astype(str).to_numpy(),
            "add_day": np.floor(_days(c["added_at"], end)).to_numpy(),
            "deletion_day": (np.floor(_days(deleted, end)).to_numpy()
                             if deleted is not None else np.full(len(c), NEVER)),
            "deleted_by": (c["deleted_by"].where(deleted.notna()).to_numpy()
                           if deleted is not None and "deleted_by" in c else None),
            "contact": True,
        }, index=pd.Index(c["customer_id"].to_numpy(), name="customer_id"))
        frames.append(cf)
    if members is not None and len(members):
        m = members.loc[pd.to_datetime(members["joined_at"]) < end]
        joined = np.floor(_days(m["joined_at"], end))
        mf = pd.DataFrame({"member_day": joined.to_numpy()},
                          index=pd.Index(m["customer_id"].astype(str).to_numpy()))
        frames.append(mf.groupby(level=0).min())
    people = pd.concat(frames, axis=1, join="outer")
    people.index.name = "customer_id"

    people["referrals"] = 0
    people["koc_day"] = NEVER
    if referrals is not None and len(referrals):
        r = referrals.loc[pd.to_datetime(referrals["at"]) < end]
        made = r.groupby(r["referrer_id"].astype(str))
        first = np.floor(_days(made["at"].min(), end))
        known = first.index.intersection(people.index)
        people.loc[known, "referrals"] = made.size().loc[known].to_numpy()
        people.loc[known, "koc_day"] = first.loc[known].to_numpy()

    people["orders"] = people["orders"].fillna(0).astype(np.int64)
    people["order_days"] = people["order_days"].fillna(0).astype(np.int64)
    people["gmv_cny"] = people["gmv_cny"].fillna(0.0)
    people["contact"] = people.get("contact", pd.Series(False, index=people.index)).fillna(
        False).astype(bool)
    for column in ("add_day", "member_day", "deletion_day"):
        if column not in people:
            people[column] = NEVER
    if "source" not in people:
        people["source"] = NOT_A_CONTACT
    if "deleted_by" not in people:
        people["deleted_by"] = None
    people["source"] = people["source"].fillna(NOT_A_CONTACT)
    # A contact who deleted the brand is observed as a buyer only until then: the orders
    # they no longer make are the deletion's, not a dropout's (the engine has both).
    ended = np.minimum((people["deletion_day"] + 1).fillna(0.0), 0.0)
    people["T"] = np.maximum(ended - people["first_order_day"], people["t_x"])
    # People known only from orders or membership joined the base with their first event.
    first_seen = people[["first_order_day", "member_day"]].min(axis=1)
    people["add_day"] = people["add_day"].fillna(first_seen)
    given = {"contacts": contacts, "members": members, "referrals": referrals}
    row = people.index.get_indexer(names)  # each id's row among everyone known
    return History(
        people=people,
        orders=pd.DataFrame({"person": row[codes], "day": day, "amount": amount}),
        days=pd.DataFrame({"person": row[day_code], "day": day_whole, "amount": day_amount}),
        as_of=as_of, tables=frozenset(k for k, v in given.items() if v is not None))
