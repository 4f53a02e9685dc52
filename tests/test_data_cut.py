"""Cutting a bundle at a date: as_of when loading, until() for backtests."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from data_support import bundle

from simdomain.data import load_bundle

TABLES = {
    "orders": """customer_id,ordered_at,amount,order_id
        c1,2024-01-05 10:00,100,o1
        c1,2024-02-03,-40,o1
        c2,2024-01-20,50,
        c2,2024-02-10,-20,
        c3,2024-02-01 00:00,30,""",
    "contacts": """customer_id,added_at,channel,deleted_at,deleted_by
        c1,2024-01-01,qr,2024-01-25,customer
        c2,2024-01-10,sms,2024-02-20,staff
        c4,2024-02-05,qr,,""",
    "members": """customer_id,joined_at
        c1,2024-01-06
        c2,2024-02-02""",
    "spend": """month,channel,spend_cny
        2024-01,qr,100
        2024-02,qr,200"""}


def test_until_equals_loading_as_of(tmp_path):
    folder = bundle(tmp_path, **TABLES)
    full = load_bundle(folder)
    cut = full.until(dt.date(2024, 1, 31))
    again = load_bundle(folder, as_of="2024-01-31")
    for name in ("orders", "contacts", "members", "spend"):
        pd.testing.assert_frame_equal(getattr(cut, name), getattr(again, name))
    assert cut.report.warnings.equals(again.report.warnings)
    assert cut.as_of == pd.Timestamp("2024-01-31")


def test_until_removes_later_events_and_undoes_later_deletions(tmp_path):
    b = load_bundle(bundle(tmp_path, **TABLES)).until("2024-01-31")
    assert b.orders[["customer_id", "amount"]].astype({"customer_id": str}).values.tolist() == [
        ["c1", 100.0], ["c2", 50.0]]  # the February refunds do not reach back
    contacts = b.contacts.set_index("customer_id")
    assert list(contacts.index) == ["c1", "c2"]
    assert contacts.loc["c1", "deleted_at"] == pd.Timestamp("2024-01-25")
    assert pd.isna(contacts.loc["c2", "deleted_at"]) and pd.isna(contacts.loc["c2", "deleted_by"])
    assert b.members["customer_id"].astype(str).tolist() == ["c1"]
    assert b.spend["month"].tolist() == ["2024-01"]
    r = b.report
    assert (r.count("after_as_of", "orders"), r.count("after_as_of", "contacts"),
            r.count("deletions_after_as_of"), r.count("after_as_of", "members"),
            r.count("after_as_of", "spend")) == (3, 1, 1, 1, 1)
    assert b.span == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-25"))
    assert r.money["after_as_of_cny"] == -30.0


def test_until_a_time_of_day_and_never_beyond_as_of(tmp_path):
    folder = bundle(tmp_path, **TABLES)
    b = load_bundle(folder)
    assert len(b.until(dt.datetime(2024, 1, 5, 9, 59)).orders) == 0
    assert len(b.until(dt.datetime(2024, 1, 5, 10, 0)).orders) == 1
    early = load_bundle(folder, as_of="2024-01-10")
    assert early.until("2024-12-31").as_of == pd.Timestamp("2024-01-10")
    assert len(early.until("2024-12-31").orders) == 1


def test_span_and_customers(tmp_path):
    b = load_bundle(bundle(tmp_path, **TABLES))
    assert b.span == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-20"))
    assert b.customers.tolist() == ["c1", "c2", "c3", "c4"]
    assert b.as_of is None and b.rejects is None


def test_cut_before_everything_gives_empty_frames(tmp_path):
    b = load_bundle(bundle(tmp_path, **TABLES)).until("2023-06-30")
    assert b.orders.empty and b.contacts.empty and b.members.empty and b.spend.empty
    assert list(b.orders.columns) == ["customer_id", "ordered_at", "amount", "order_id",
                                      "channel", "items"]
    assert b.span[0] is pd.NaT or pd.isna(b.span[0])


def test_until_keeps_the_options(tmp_path):
    folder = bundle(tmp_path, orders="""customer_id,ordered_at,amount
        c1,2024-01-05,30
        c1,2024-01-05,30
        c2,2024-01-0x,5
        c3,2024-03-01,1""")
    b = load_bundle(folder, skip_bad_rows=True, aggregate_duplicates=True).until("2024-01-31")
    assert b.orders["amount"].tolist() == [60.0]
    assert b.rejects["row"].tolist() == [4]
    assert b.report.count("repeated_rows_merged") == 1
