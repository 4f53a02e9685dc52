"""Reading bundles: encodings, compressed and Parquet files, column mapping, time formats."""

from __future__ import annotations

import datetime as dt
import gzip

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_support import bundle

from simdomain.data import load_bundle
from simdomain.errors import InputError

CHINESE = """客户id,付款时间,实付金额,渠道
    王小明,2024-01-05 10:00:00,100.5,天猫
    李雷,2024/01/06,20,小程序商城"""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_encodings_spreadsheet_tools_save(tmp_path, encoding):
    b = load_bundle(bundle(tmp_path, encoding=encoding, orders=CHINESE))
    assert b.orders["customer_id"].astype(str).tolist() == ["王小明", "李雷"]
    assert b.orders["channel"].astype(str).tolist() == ["天猫", "小程序商城"]
    assert b.orders["amount"].tolist() == [100.5, 20.0]


def test_wecom_and_mall_names_by_synonym(tmp_path):
    b = load_bundle(bundle(tmp_path, orders="""buyer_id,pay_time,payment,tid
        u1,2024-01-05 10:00:00,10,t1""", contacts="""external_userid,createtime,state,userid
        u1,1704420000,qr_store,zhang""", members="""member_id,register_time,level
        u1,2024-01-06,gold"""))
    assert b.orders.loc[0, "order_id"] == "t1"
    # unix seconds are UTC; local time is China Standard Time (UTC+8)
    assert b.contacts.loc[0, "added_at"] == pd.Timestamp("2024-01-05 10:00:00")
    assert b.contacts.loc[0, "staff_id"] == "zhang"
    assert b.members.loc[0, "tier"] == "gold"


def test_columns_yaml_and_argument(tmp_path):
    folder = bundle(tmp_path, orders="""who,when,paid,shop
        u1,2024-01-05,10,x""")
    (folder / "columns.yaml").write_text(
        "orders:\n  who: customer_id\n  when: ordered_at\n  shop: channel\npaid: amount\n")
    b = load_bundle(folder)
    assert b.orders[["amount"]].values.tolist() == [[10.0]]
    assert b.orders.loc[0, "channel"] == "x"
    b = load_bundle(folder, columns={"orders": {"shop": "order_id"}})
    assert b.orders.loc[0, "order_id"] == "x"


def test_missing_column_lists_what_was_found(tmp_path):
    folder = bundle(tmp_path, orders="""who,ordered_at,amount
        u1,2024-01-05,10""")
    with pytest.raises(InputError) as error:
        load_bundle(folder)
    assert str(error.value) == (
        "orders.csv: columns: missing required column 'customer_id' (or external_userid, "
        "buyer_id, buyer, user_id); found 'who', 'ordered_at', 'amount'; map yours in "
        "columns.yaml, e.g. 'orders: {your_name: customer_id}'")


@pytest.mark.parametrize("text, expected", [
    ("2024-01-05", "2024-01-05 00:00:00"),
    ("2024-01-05 10:11:12", "2024-01-05 10:11:12"),
    ("2024-01-05T10:11:12", "2024-01-05 10:11:12"),
    ("2024/1/5 10:11", "2024-01-05 10:11:00"),
    ("2024/01/05", "2024-01-05 00:00:00"),
    ("20240105", "2024-01-05 00:00:00"),
    ("2024年1月5日", "2024-01-05 00:00:00"),
    ("2024-01-05 10:11:12.250", "2024-01-05 10:11:12.250"),
    ("2024-01-05T10:11:12+08:00", "2024-01-05 10:11:12"),
    ("1704420672", "2024-01-05 10:11:12"),
    ("1704420672000", "2024-01-05 10:11:12"),
])
def test_time_formats(tmp_path, text, expected):
    b = load_bundle(bundle(tmp_path, orders=f"""customer_id,ordered_at,amount
        c1,{text},10"""))
    assert b.orders.loc[0, "ordered_at"] == pd.Timestamp(expected)


def test_amount_formats(tmp_path):
    b = load_bundle(bundle(tmp_path, orders="""customer_id,ordered_at,amount
        c1,2024-01-05,"1,234.50"
        c2,2024-01-05,¥20"""))
    assert b.orders["amount"].tolist() == [1234.5, 20.0]


def test_parquet_and_gzip(tmp_path):
    frame = pd.DataFrame({"customer_id": [101, 102], "amount": [1.5, 2.0],
                          "ordered_at": pd.to_datetime(["2024-01-05 02:00", "2024-01-06 00:00"])
                          .tz_localize("UTC")})
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "orders.parquet")
    with gzip.open(tmp_path / "contacts.csv.gz", "wt", encoding="utf-8") as out:
        out.write("customer_id,added_at,channel\n101,2024-01-01,qr\n")
    b = load_bundle(tmp_path)
    assert b.orders["customer_id"].astype(str).tolist() == ["101", "102"]
    assert b.orders.loc[0, "ordered_at"] == pd.Timestamp("2024-01-05 02:00")  # its own zone
    assert b.contacts.loc[0, "customer_id"] == "101"
    assert b.report.rows["orders"] == {"read": 2, "rejected": 0, "kept": 2}


def test_two_files_for_one_table(tmp_path):
    bundle(tmp_path, orders="customer_id,ordered_at,amount\nc1,2024-01-05,1")
    pq.write_table(pa.table({"customer_id": ["c1"]}), tmp_path / "orders.parquet")
    with pytest.raises(InputError, match="two files for the orders table: orders.csv, "
                                         "orders.parquet; keep one"):
        load_bundle(tmp_path)


def test_ids_are_trimmed_and_shared(tmp_path):
    b = load_bundle(bundle(tmp_path, orders="""customer_id,ordered_at,amount
        " c1 ",2024-01-05,10
        c1,2024-01-06,10
        " ",2024-01-06,10""", contacts="""customer_id,added_at,channel
        c2,2024-01-01,qr
        c1,2024-01-01,qr"""), skip_bad_rows=True)
    assert b.orders["customer_id"].cat.codes.tolist() == [0, 0]
    assert b.rejects["row"].tolist() == [4]
    assert b.customers.tolist() == ["c1", "c2"]


def test_parquet_types(tmp_path):
    pq.write_table(pa.table({
        "customer_id": pa.array(["a", "b"]).dictionary_encode(),
        "ordered_at": pa.array([dt.date(2024, 1, 5), dt.date(2024, 1, 6)]),
        "amount": pa.array([1, 2], pa.decimal128(10, 2)),
        "items": pa.array([1, None], pa.int32())}), tmp_path / "orders.parquet")
    b = load_bundle(tmp_path)
    assert b.orders["ordered_at"].tolist() == [pd.Timestamp("2024-01-05"),
                                               pd.Timestamp("2024-01-06")]
    assert b.orders["amount"].tolist() == [1.0, 2.0]
    assert b.orders["items"].tolist() == [1, pd.NA]
    assert b.orders["order_id"].isna().all() and b.orders["order_id"].dtype == "string"


def test_flat_mapping_applies_to_every_table_and_progress(tmp_path):
    folder = bundle(tmp_path, orders="""uid,ordered_at,amount
        u1,2024-01-05,10""", contacts="""uid,added_at,channel
        u1,2024-01-01,qr""")
    b = load_bundle(folder, columns={"uid": "customer_id"}, progress=True)
    assert b.report.count("buyers_not_contacts") == 0
    assert b.contacts.loc[0, "customer_id"] == "u1"
    with pytest.raises(InputError, match="unknown column 'amout'; did you mean 'amount'"):
        load_bundle(folder, columns={"orders": {"paid": "amout"}})
