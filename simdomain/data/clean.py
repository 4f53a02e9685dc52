"""Cleaning rules per table: what is normal in real logs is handled and counted.

Each function takes a table parsed to the contract's types (bad rows already removed,
customer ids sharing one set of categories) and returns the clean table, adding what it
did to a :class:`~simdomain.data.report.CleaningReport`. The rules and their treatment
are listed in ``docs/data.md`` and in :data:`simdomain.data.report.TREATMENTS`.
Everything is vectorised over rows; nothing loops over people.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simdomain.data.report import CleaningReport, examples

ORDER_COLUMNS = ("customer_id", "ordered_at", "amount", "order_id", "channel", "items")
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


def clean_orders(frame: pd.DataFrame, report: CleaningReport, *,
                 aggregate_duplicates: bool = False) -> pd.DataFrame:
    """One row per order, refunds treated, sorted by time (see ``docs/data.md``)."""
    frame = _with_optional(frame)
    report.money["rows_cny"] = float(frame["amount"].sum())
    count_unsorted(frame, "ordered_at", "orders", report)
    has_id = frame["order_id"].notna().to_numpy()
    by_id = _merge_order_ids(frame[has_id], report)
    orders_by_id = by_id[by_id["_kind"] == "order"]
    refunds = [by_id[by_id["_kind"] == "refund"]]
    plain = frame[~has_id]
    negative = plain["amount"].to_numpy() < 0
    refunds.append(plain[negative])
    plain = _repeated(plain[~negative], report, aggregate_duplicates)
    orders = pd.concat([orders_by_id.drop(columns="_kind"), plain], ignore_index=True)
    orders = orders.sort_values(["ordered_at", "_row"], kind="stable", ignore_index=True)
    orders = _apply_refunds(orders, pd.concat(refunds, ignore_index=True)
                            .drop(columns="_kind", errors="ignore"), report)
    zero = (orders["amount"].to_numpy() == 0) & ~orders["_refunded"].to_numpy()
    report.add("orders", "zero_amount", int(zero.sum()),
               examples(orders, zero, ["customer_id", "ordered_at", "amount"]))
    report.money["orders_cny"] = float(orders["amount"].sum())
    return orders[[*ORDER_COLUMNS, "_row"]]


def _with_optional(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    if "order_id" not in frame:
        frame["order_id"] = pd.Series(pd.array([None] * len(frame), dtype="str"))
    if "channel" not in frame:
        frame["channel"] = pd.Categorical([None] * len(frame))
    if "items" not in frame:
        frame["items"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return frame


def _merge_order_ids(frame: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """Rows sharing (customer, order id) as one order; refund-only groups as refunds.

    Returns the rows with ``_kind`` = ``order`` or ``refund``; cancelled orders (lines
    netted to 0 or less) are dropped and counted.
    """
    codes = frame["customer_id"].cat.codes.to_numpy(np.int64)
    order_codes, uniques = pd.factorize(frame["order_id"])
    key = codes * max(len(uniques), 1) + order_codes
    multi = pd.Series(key).duplicated(keep=False).to_numpy()
    single = frame[~multi].assign(_kind=np.where(frame["amount"].to_numpy()[~multi] < 0,
                                                 "refund", "order"))
    lines = frame[multi].assign(_key=key[multi])
    if lines.empty:
        return single
    lines = lines.sort_values(["_key", "ordered_at", "_row"], kind="stable")
    amount = lines["amount"].to_numpy()
    lines["_pos"] = amount > 0
    lines["_neg"] = amount < 0
    lines["_pos_time"] = lines["ordered_at"].where(lines["_pos"])
    grouped = lines.groupby("_key", sort=False)
    merged = grouped.first()  # earliest line: customer, order id, channel, time, row
    merged["amount"] = grouped["amount"].sum()
    merged["items"] = grouped["items"].sum(min_count=1)
    merged["_n"] = grouped.size()
    has_pos = grouped["_pos"].any()
    has_neg = grouped["_neg"].any()
    merged["ordered_at"] = grouped["_pos_time"].min().fillna(merged["ordered_at"])
    report.add("orders", "order_lines_merged", int((merged["_n"] - 1).sum()),
               examples(lines, None, ["customer_id", "order_id", "ordered_at", "amount"]))
    netted = lines["_neg"] & lines["_key"].map(has_pos).to_numpy(bool)
    report.add("orders", "refunds_netted", int(netted.sum()),
               examples(lines, netted.to_numpy(bool), ["customer_id", "order_id", "amount"]))
    net = merged["amount"]
    cancelled = (has_pos & (net <= 0)).to_numpy()
    report.add("orders", "cancelled_orders", int(cancelled.sum()),
               examples(merged, cancelled, ["customer_id", "order_id", "amount"]))
    report.money["cancelled_cny"] = report.money.get("cancelled_cny", 0.0) + float(
        net[cancelled].sum())
    merged = merged[~cancelled]
    merged["_kind"] = np.where(merged["amount"].to_numpy() < 0, "refund", "order")
    merged = merged.reset_index(drop=True)[[*frame.columns, "_kind"]]
    return pd.concat([single, merged], ignore_index=True)


def _repeated(plain: pd.DataFrame, report: CleaningReport, aggregate: bool) -> pd.DataFrame:
    """Rows without an order id repeating customer, time and amount: counted or merged."""
    keys = ["customer_id", "ordered_at", "amount"]
    repeat = plain.duplicated(keys, keep="first").to_numpy()
    kind = "repeated_rows_merged" if aggregate else "repeated_rows"
    report.add("orders", kind, int(repeat.sum()), examples(plain, repeat, keys))
    if not aggregate or not repeat.any():
        return plain
    involved = plain.duplicated(keys, keep=False).to_numpy()
    grouped = plain[involved].groupby(keys, sort=False, observed=True)
    merged = grouped.first().reset_index()
    merged["amount"] = merged["amount"] * grouped.size().to_numpy()
    merged["items"] = grouped["items"].sum(min_count=1).to_numpy()
    return pd.concat([plain[~involved], merged[plain.columns]], ignore_index=True)


def _apply_refunds(orders: pd.DataFrame, refunds: pd.DataFrame,
                   report: CleaningReport) -> pd.DataFrame:
    """Each refund reduces the customer's latest order at or before it (or is dropped);
    orders netted to 0 or less are dropped as cancelled. ``orders`` is sorted by time."""
    orders = orders.assign(_refunded=False)
    report.money.setdefault("cancelled_cny", 0.0)
    report.money["refunds_dropped_cny"] = 0.0
    if refunds.empty:
        return orders
    refunds = refunds.sort_values(["ordered_at", "_row"], kind="stable", ignore_index=True)
    left = pd.DataFrame({"t": refunds["ordered_at"].to_numpy(),
                         "c": refunds["customer_id"].cat.codes.to_numpy(np.int64)})
    right = pd.DataFrame({"t": orders["ordered_at"].to_numpy(),
                          "c": orders["customer_id"].cat.codes.to_numpy(np.int64),
                          "i": np.arange(len(orders), dtype=np.float64)})
    target = pd.merge_asof(left, right, on="t", by="c", direction="backward")["i"].to_numpy()
    found = ~np.isnan(target)
    report.add("orders", "refunds_applied", int(found.sum()),
               examples(refunds, found, ["customer_id", "ordered_at", "amount"]))
    report.add("orders", "refunds_dropped", int((~found).sum()),
               examples(refunds, ~found, ["customer_id", "ordered_at", "amount"]))
    amounts = refunds["amount"].to_numpy()
    report.money["refunds_dropped_cny"] = float(amounts[~found].sum())
    index = target[found].astype(np.int64)
    applied = np.bincount(index, weights=amounts[found], minlength=len(orders))
    touched = np.bincount(index, minlength=len(orders)) > 0
    amount = orders["amount"].to_numpy() + applied
    orders["amount"] = amount
    orders["_refunded"] = touched
    cancelled = touched & (amount <= 0)
    report.add("orders", "cancelled_orders", int(cancelled.sum()),
               examples(orders, cancelled, ["customer_id", "ordered_at", "amount"]))
    report.money["cancelled_cny"] += float(amount[cancelled].sum())
    return orders[~cancelled].reset_index(drop=True)


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
    grouped = frame.groupby("customer_id", sort=False, observed=True)
    size = grouped["_row"].transform("size").to_numpy()
    people = grouped.first()
    people["n_staff"] = grouped["staff_id"].nunique(dropna=False).astype(np.int64)
    several = size > 1
    first_of_several = several & ~frame["customer_id"].duplicated().to_numpy()
    report.add("contacts", "added_by_several_staff", int(first_of_several.sum()),
               examples(frame, several, ["customer_id", "staff_id", "added_at", "channel"]))
    deleted_all = grouped["deleted_at"].count() == grouped.size()
    last = frame.sort_values("deleted_at", kind="stable").groupby(
        "customer_id", sort=False, observed=True).last()
    people["deleted_at"] = grouped["deleted_at"].max().where(deleted_all)
    people["deleted_by"] = last["deleted_by"].reindex(people.index).where(deleted_all)
    people = people.reset_index()
    people["customer_id"] = people["customer_id"].astype(frame["customer_id"].dtype)
    people = people.sort_values(["added_at", "_row"], kind="stable", ignore_index=True)
    return people[[*CONTACT_COLUMNS, "_row"]]


def clean_members(frame: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """One row per member: the earliest join, the tier of the latest row."""
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
