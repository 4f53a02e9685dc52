"""Cleaning rules per table: what is normal in real logs is handled and counted.

Orders have their own module (:mod:`simdomain.data.orders`). Each function takes a
table parsed to the contract's types (bad rows already removed,
customer ids sharing one set of categories) and returns the clean table, adding what it
did to a :class:`~simdomain.data.report.CleaningReport`. The rules and their treatment
are listed in ``docs/data.md`` and in :data:`simdomain.data.report.TREATMENTS`.
Everything is vectorised over rows; nothing loops over people.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simdomain.data.report import CleaningReport, examples

CONTACT_COLUMNS = ("customer_id", "added_at", "channel", "staff_id", "deleted_at",
                   "deleted_by", "n_staff")


def count_unsorted(frame: pd.DataFrame, column: str, table: str,
                   report: CleaningReport) -> None:
    """Count rows earlier than the row before them in the file."""
    times = frame[column].to_numpy()
    if len(times) > 1:
        earlier = np.concatenate([[False], times[1:] < times[:-1]])
        report.add(table, "unsorted", int(earlier.sum()),
                   examples(frame, earlier, ["customer_id", column]))


def clean_contacts(frame: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """One row per person: the earliest add, its channel and staff; ``n_staff``;
    deleted only when every staff account's relationship was deleted."""
    frame = frame.copy()
    n = len(frame)
    for name in ("staff_id", "deleted_by"):
        if name not in frame:
            frame[name] = pd.Categorical([None] * n)
    if "deleted_at" not in frame:
        frame["deleted_at"] = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    count_unsorted(frame, "added_at", "contacts", report)
    no_channel = frame["channel"].isna().to_numpy()
    report.add("contacts", "no_channel", int(no_channel.sum()),
               examples(frame, no_channel, ["customer_id", "added_at"]))
    if no_channel.any():
        frame["channel"] = frame["channel"].cat.add_categories(
            [c for c in ["unknown"] if c not in frame["channel"].cat.categories]
        ).fillna("unknown")
    early = (frame["deleted_at"] < frame["added_at"]).to_numpy()
    report.add("contacts", "deleted_before_added", int(early.sum()),
               examples(frame, early, ["customer_id", "added_at", "deleted_at"]))
    frame.loc[early, "deleted_at"] = pd.NaT
    frame["deleted_by"] = frame["deleted_by"].where(frame["deleted_at"].notna())
    frame = frame.sort_values(["customer_id", "added_at", "_row"], kind="stable")
    first = ~frame["customer_id"].duplicated().to_numpy()
    people = frame[first].set_index("customer_id")  # each person's earliest add
    grouped = frame.groupby("customer_id", sort=False, observed=True)
    size = grouped["_row"].transform("size").to_numpy()
    report.add("contacts", "added_by_several_staff", int((first & (size > 1)).sum()),
               examples(frame, size > 1, ["customer_id", "staff_id", "added_at", "channel"]))
    people["n_staff"] = grouped["staff_id"].nunique(dropna=False).reindex(
        people.index).to_numpy(np.int64)
    deleted_all = (grouped["deleted_at"].count() == grouped.size()).reindex(people.index)
    latest = frame.sort_values(["customer_id", "deleted_at"], kind="stable")
    latest = latest[~latest["customer_id"].duplicated(keep="last").to_numpy()].set_index(
        "customer_id").reindex(people.index)  # the row of each person's last deletion
    people["deleted_at"] = latest["deleted_at"].where(deleted_all.to_numpy())
    people["deleted_by"] = latest["deleted_by"].where(deleted_all.to_numpy())
    people = people.reset_index()
    people["customer_id"] = people["customer_id"].astype(frame["customer_id"].dtype)
    people = people.sort_values(["added_at", "_row"], kind="stable", ignore_index=True)
    return people[[*CONTACT_COLUMNS, "_row"]]


def clean_members(frame: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """One row per member: the earliest join, the latest tier given."""
    frame = frame.copy()
    if "tier" not in frame:
        frame["tier"] = pd.Categorical([None] * len(frame))
    count_unsorted(frame, "joined_at", "members", report)
    frame = frame.sort_values(["joined_at", "_row"], kind="stable")
    repeat = frame["customer_id"].duplicated().to_numpy()
    report.add("members", "member_rows_merged", int(repeat.sum()),
               examples(frame, repeat, ["customer_id", "joined_at", "tier"]))
    tier = frame.groupby("customer_id", observed=True)["tier"].last()
    out = frame[~repeat].copy()
    out["tier"] = out["customer_id"].map(tier).astype(frame["tier"].dtype)
    return out[["customer_id", "joined_at", "tier", "_row"]].reset_index(drop=True)


def clean_referrals(frame: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """Self-referrals dropped; a person referred twice keeps the earliest referral."""
    count_unsorted(frame.rename(columns={"referred_id": "customer_id"}), "at", "referrals",
                   report)
    self_ref = (frame["referrer_id"] == frame["referred_id"]).to_numpy()
    report.add("referrals", "self_referrals", int(self_ref.sum()),
               examples(frame, self_ref, ["referrer_id", "referred_id", "at"]))
    frame = frame[~self_ref].sort_values(["at", "_row"], kind="stable")
    twice = frame["referred_id"].duplicated().to_numpy()
    report.add("referrals", "referred_twice", int(twice.sum()),
               examples(frame, twice, ["referrer_id", "referred_id", "at"]))
    return frame[~twice][["referrer_id", "referred_id", "at", "_row"]].reset_index(drop=True)


def clean_touches(frame: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """Touch events (count 1 each) or counts, sorted by time."""
    frame = frame.copy()
    if "customer_id" not in frame:
        frame["customer_id"] = pd.Categorical([None] * len(frame))
    if "count" not in frame:
        frame["count"] = pd.array(np.ones(len(frame), dtype=np.int64), dtype="Int64")
    count_unsorted(frame, "at", "touches", report)
    frame = frame.sort_values(["at", "_row"], kind="stable", ignore_index=True)
    return frame[["customer_id", "at", "kind", "count", "_row"]]


def clean_spend(frame: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """One row per (month, channel), spend and contacts summed."""
    frame = frame.copy()
    if "contacts" not in frame:
        frame["contacts"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    frame["channel"] = frame["channel"].astype("str").fillna("unknown")
    repeat = frame.duplicated(["month", "channel"]).to_numpy()
    report.add("spend", "spend_rows_merged", int(repeat.sum()),
               examples(frame, repeat, ["month", "channel", "spend_cny"]))
    grouped = frame.groupby(["month", "channel"], sort=True)
    out = grouped.agg(spend_cny=("spend_cny", "sum"), _row=("_row", "min")).reset_index()
    out["contacts"] = grouped["contacts"].sum(min_count=1).to_numpy()
    out["channel"] = pd.Categorical(out["channel"])
    return out[["month", "channel", "spend_cny", "contacts", "_row"]]


def cross_check(orders: pd.DataFrame, contacts: pd.DataFrame | None,
                report: CleaningReport) -> None:
    """Orders before the add; ids that join only partly between orders and contacts."""
    if contacts is None:
        return
    n_ids = len(orders["customer_id"].cat.categories)
    added = np.full(n_ids, np.datetime64("NaT"), dtype="datetime64[ns]")
    added[contacts["customer_id"].cat.codes.to_numpy()] = contacts["added_at"].to_numpy()
    codes = orders["customer_id"].cat.codes.to_numpy()
    before = orders["ordered_at"].to_numpy() < added[codes]
    report.add("orders", "orders_before_add", int(before.sum()),
               examples(orders, before, ["customer_id", "ordered_at"]))
    buyer = np.zeros(n_ids, dtype=bool)
    buyer[codes] = True
    contact = np.zeros(n_ids, dtype=bool)
    contact[contacts["customer_id"].cat.codes.to_numpy()] = True
    categories = orders["customer_id"].cat.categories
    for kind, table, mask in (("buyers_not_contacts", "orders", buyer & ~contact),
                              ("contacts_not_buyers", "contacts", contact & ~buyer)):
        ids = np.flatnonzero(mask)
        report.add(table, kind, len(ids), [f"customer_id={categories[i]}" for i in ids[:3]])
