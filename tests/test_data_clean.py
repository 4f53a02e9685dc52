"""Cleaning rules of contacts, members, referrals, touches and spend, with exact counts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from data_support import bundle

from simdomain.data import load_bundle

ORDERS = """customer_id,ordered_at,amount
    c1,2024-01-05,10
    c2,2024-01-01,20
    c9,2024-01-02,5"""


def test_contacts_one_row_per_person(tmp_path):
    b = load_bundle(bundle(tmp_path, orders=ORDERS, contacts="""
        customer_id,added_at,channel,staff_id,deleted_at,deleted_by
        c1,2024-01-03,parcel,s2,,
        c1,2024-01-02,qr_store,s1,2024-02-01,customer
        c2,2024-01-04,sms,s1,2024-03-01,staff
        c2,2024-01-06,,s3,2024-02-15,customer
        c3,2024-01-05,,s1,2023-12-01,staff
        c4,2024-01-05,qr,,2024-01-09,
        c4,2024-01-07,qr,s4,2024-01-08,staff"""))
    c = b.contacts.set_index("customer_id")
    assert list(b.contacts.columns) == ["customer_id", "added_at", "channel", "staff_id",
                                        "deleted_at", "deleted_by", "n_staff"]
    assert c.loc["c1", "added_at"] == pd.Timestamp("2024-01-02")
    assert (c.loc["c1", "channel"], c.loc["c1", "staff_id"], c.loc["c1", "n_staff"]) == (
        "qr_store", "s1", 2)
    assert pd.isna(c.loc["c1", "deleted_at"])  # still a contact of s2
    assert c.loc["c2", "deleted_at"] == pd.Timestamp("2024-03-01")  # both deleted: the last
    assert c.loc["c2", "deleted_by"] == "staff"
    assert c.loc["c3", "channel"] == "unknown" and pd.isna(c.loc["c3", "deleted_at"])
    # the earliest row's staff even when empty; the latest deletion's author even when empty
    assert pd.isna(c.loc["c4", "staff_id"]) and c.loc["c4", "n_staff"] == 2
    assert c.loc["c4", "deleted_at"] == pd.Timestamp("2024-01-09")
    assert pd.isna(c.loc["c4", "deleted_by"])
    r = b.report
    assert r.count("added_by_several_staff") == 3
    assert r.count("no_channel") == 2
    assert r.count("deleted_before_added") == 1
    assert r.count("orders_before_add") == 1  # c1 on 01-05 is after its add; c2 01-01 before
    assert r.count("buyers_not_contacts") == 1  # c9
    assert r.count("contacts_not_buyers") == 2  # c3, c4


def test_orders_before_add_counted_exactly(tmp_path):
    b = load_bundle(bundle(tmp_path, orders="""customer_id,ordered_at,amount
        c1,2024-01-01,10
        c1,2024-01-10,10
        c2,2024-01-01,20""", contacts="""customer_id,added_at,channel
        c1,2024-01-05,qr
        c2,2023-12-01,qr"""))
    assert b.report.count("orders_before_add") == 1
    assert b.report.count("buyers_not_contacts") == 0
    assert b.report.count("contacts_not_buyers") == 0


def test_members_referrals_touches_spend(tmp_path):
    b = load_bundle(bundle(tmp_path, orders=ORDERS, members="""
        customer_id,joined_at,tier
        c1,2024-01-05,silver
        c1,2024-01-02,bronze
        c2,2024-01-03,""", referrals="""
        referrer_id,referred_id,at
        c1,c2,2024-01-04
        c1,c1,2024-01-04
        c9,c2,2024-01-02
        c1,c3,2024-01-05""", touches="""
        customer_id,at,kind
        c1,2024-01-04,1v1
        c2,2024-01-05,朋友圈
        c1,2024-01-03,group""", spend="""
        month,channel,spend_cny,contacts
        2024-01,qr,100,10
        2024/01,qr,50,
        2024-02,sms,0,3"""))
    assert b.members.set_index("customer_id").loc["c1"].tolist() == [
        pd.Timestamp("2024-01-02"), "silver"]
    assert b.report.count("member_rows_merged") == 1
    assert b.report.count("self_referrals") == 1
    assert b.report.count("referred_twice") == 1
    assert b.referrals[["referrer_id", "referred_id"]].astype(str).values.tolist() == [
        ["c9", "c2"], ["c1", "c3"]]
    assert b.touches["kind"].astype(str).tolist() == ["group", "one_to_one", "moments"]
    assert b.touches["count"].tolist() == [1, 1, 1]
    assert b.report.count("unsorted", "touches") == 1
    assert b.spend.astype({"channel": str}).values.tolist() == [
        ["2024-01", "qr", 150.0, 10], ["2024-02", "sms", 0.0, 3]]
    assert b.report.count("spend_rows_merged") == 1
    # every customer-id column shares one set of categories
    assert b.referrals["referrer_id"].dtype == b.orders["customer_id"].dtype
    assert b.members["customer_id"].cat.codes.tolist() == [
        b.customers.get_loc("c1"), b.customers.get_loc("c2")]


def test_touch_counts_without_customers(tmp_path):
    b = load_bundle(bundle(tmp_path, orders=ORDERS, touches="""
        week,kind,count
        2024-01-01,moments,3
        2024-01-08,group,2"""))
    assert b.touches["count"].tolist() == [3, 2]
    assert b.touches["customer_id"].isna().all()


def test_future_dates_counted_and_kept_without_as_of(tmp_path):
    later = dt.date.today() + dt.timedelta(days=40)
    b = load_bundle(bundle(tmp_path, orders=f"""customer_id,ordered_at,amount
        c1,2024-01-05,10
        c1,{later},10"""))
    assert b.report.count("future_dates") == 1
    assert len(b.orders) == 2


def test_optional_tables_may_be_empty(tmp_path):
    b = load_bundle(bundle(tmp_path, orders=ORDERS, contacts="customer_id,added_at,channel",
                           members=""))
    assert b.contacts is not None and b.contacts.empty
    assert b.members is not None and b.members.empty
    assert b.referrals is None
    assert b.report.count("buyers_not_contacts") == 3


def test_report_frame_and_text(tmp_path):
    b = load_bundle(bundle(tmp_path, orders="""customer_id,ordered_at,amount
        c1,2024-01-05,30
        c1,2024-01-05,30"""))
    w = b.report.warnings
    assert w[["table", "kind", "count"]].values.tolist() == [["orders", "repeated_rows", 1]]
    assert w["example"][0] == "row 3: customer_id=c1, ordered_at=2024-01-05, amount=30"
    assert str(b.report).startswith("orders: 1 repeated_rows: rows without an order id")
    assert b.report.rows["orders"] == {"read": 2, "rejected": 0, "kept": 2}
