"""The corpus of broken bundles (tests/fixtures/bundles/): each refused with its message,
naming file, row and column; with skip_bad_rows the bad rows become rejects instead."""

from __future__ import annotations

import pytest
from data_support import FIXTURES

from simdomain.data import load_bundle
from simdomain.data.parse import latest_plausible
from simdomain.errors import InputError

NOT_A_TIME = "is not a date or time (expected YYYY-MM-DD [HH:MM:SS], YYYY/MM/DD or unix seconds)"

CORPUS = {
    "missing_column": "orders.csv: columns: missing required column 'amount' (or payment, "
                      "pay_amount, paid_amount, amount_cny); found 'customer_id', "
                      "'ordered_at', 'price'; map yours in columns.yaml, e.g. "
                      "'orders: {your_name: amount}'",
    "missing_contacts_column": "contacts.csv: columns: missing required column 'channel' (or "
                               "state, channel_code, 渠道, 来源); found 'external_userid', "
                               "'createtime'; map yours in columns.yaml, e.g. "
                               "'contacts: {your_name: channel}'",
    "bad_date": f"orders.csv: row 3 -> ordered_at: '2024-13-45' {NOT_A_TIME}",
    "empty_date": "orders.csv: row 2 -> ordered_at: is empty",
    "implausible_date": "orders.csv: row 2 -> ordered_at: '1999-12-31' is outside the "
                        "plausible dates 2000-01-01 to {latest}",
    "bad_amount": "orders.csv: row 4 -> amount: 'abc' is not a number of yuan",
    "bad_items": "orders.csv: row 3 -> items: '1.5' is not a whole number 0 or more",
    "empty_customer": "orders.csv: row 3 -> customer_id: is empty",
    "bad_deleted_by": "contacts.csv: row 2 -> deleted_by: 'robot' is not customer or staff",
    "bad_touch_kind": "touches.csv: row 3 -> kind: 'sms' is not one_to_one, group or moments",
    "negative_spend": "spend.csv: row 3 -> spend_cny: '-50' is negative (spend is 0 or more)",
    "wrong_cells": "orders.csv: row 3: has 4 cells where the header has 3: "
                   "'c2,2024-01-06,20,extra'",
    "header_only": "orders.csv: has no orders (the file is empty or only a header); the "
                   "orders table is required",
    "empty_file": "orders.csv: has no orders (the file is empty or only a header); the "
                  "orders table is required",
    "binary": "orders.csv: cannot read the file as text (it looks like binary data); save it "
              "as UTF-8 text",
    "bad_yaml": "columns.yaml: not valid YAML (line 2)",
    "unknown_target": "columns.yaml: orders -> buyer: unknown column 'custmer_id'; did you "
                      "mean 'customer_id'?",
    "tests_unknown_lever": "tests.csv: row 3 -> lever: 'frequency' is not touch_frequency, "
                           "content_mix, channel_spend or reward",
    "tests_unknown_kind": "tests.csv: row 3 -> kind: 'sms' is not one_to_one, group or moments "
                          "(the touch whose frequency the test varied)",
    "tests_unknown_channel": "tests.csv: row 2 -> kind: unknown channel 'douyin' (not in the "
                             "contacts or the spend; known: live, sms)\n"
                             "tests.csv: row 3 -> kind: unknown channel 'douyin' (not in the "
                             "contacts or the spend; known: live, sms)",
    "tests_no_people": "tests.csv: row 3 -> people: arm 'b' of test 't1' has no people "
                       "(touch_frequency tests count outcomes per person)",
    "tests_end_before_start": "tests.csv: row 3 -> end: 2024-01-10 is before the start "
                              "2024-02-10",
    "tests_outside_dates": "tests.csv: row 3 -> end: the test (2024-01-10..2024-04-10) is "
                           "outside the data's dates 2024-01-01..2024-03-05",
    "tests_single_arm": "tests.csv: row 2 -> test_id: test 't1' has a single arm; a test "
                        "compares two arms or more",
    "tests_above_people": "tests.csv: row 3 -> deletions: 1,200 is above the arm's 1,000 "
                          "people",
    "tests_no_outcome": "tests.csv: row 3: arm 'b' of test 't1' has no outcome: give at least "
                        "one of adds, orders, deletions, joins",
    "no_orders": "{folder}: no orders file (orders.csv, orders.csv.gz or orders.parquet); the "
                 "folder holds contacts.csv",
}
ROW_LEVEL = {"bad_date", "empty_date", "implausible_date", "bad_amount", "bad_items",
             "empty_customer", "bad_deleted_by", "bad_touch_kind", "negative_spend",
             "wrong_cells"}


def test_every_fixture_has_its_message():
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == sorted(
        [*CORPUS, "many_bad"])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_broken_bundle_message(name):
    folder = FIXTURES / name
    with pytest.raises(InputError) as error:
        load_bundle(folder)
    expected = CORPUS[name].replace("{latest}", f"{latest_plausible():%Y-%m-%d}").replace(
        "{folder}", str(folder))
    assert str(error.value) == expected


@pytest.mark.parametrize("name", sorted(ROW_LEVEL))
def test_skip_bad_rows_returns_rejects(name):
    b = load_bundle(FIXTURES / name, skip_bad_rows=True)
    assert list(b.rejects.columns) == ["file", "row", "column", "value", "reason"]
    assert len(b.rejects) == 1
    table = b.rejects.loc[0, "file"].split(".")[0]
    assert b.report.count("bad_rows_skipped", table) == 1
    assert b.report.rows[table]["rejected"] == 1
    assert f"row {b.rejects.loc[0, 'row']}" in CORPUS[name]


def test_many_bad_cells_first_ten_then_a_count():
    folder = FIXTURES / "many_bad"
    with pytest.raises(InputError) as error:
        load_bundle(folder)
    lines = str(error.value).splitlines()
    assert len(lines) == 11
    assert lines[0] == f"orders.csv: row 2 -> ordered_at: '2024-01-0x' {NOT_A_TIME}"
    assert lines[9].startswith("orders.csv: row 11 -> ordered_at:")
    assert lines[10] == (f"{folder}: ... and 5 more bad cells (15 in 15 rows); "
                         "skip_bad_rows=True (--skip-bad-rows) drops those rows and lists "
                         "them as rejects")
    b = load_bundle(folder, skip_bad_rows=True)
    assert len(b.rejects) == 15 and len(b.orders) == 1
    assert b.rejects["row"].tolist() == list(range(2, 17))


def test_spreadsheet_files_and_bad_as_of(tmp_path):
    (tmp_path / "orders.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match="orders.xlsx: save it as CSV"):
        load_bundle(tmp_path)
    with pytest.raises(InputError, match="as_of: cannot read '2024-02-30' as a date"):
        load_bundle(FIXTURES / "bad_amount", as_of="2024-02-30")


def test_tests_table_normal_mess_is_counted(tmp_path):
    """Lever names in another case, a repeated arm row and a bad flag: counted, not refused;
    the cut drops tests not over by then, whole."""
    from data_support import bundle

    folder = bundle(
        tmp_path / "b",
        orders="customer_id,ordered_at,amount\nc1,2024-01-05,10\nc2,2024-03-05,12",
        contacts="customer_id,added_at,channel\nc1,2024-01-01,sms\nc2,2024-01-02,live",
        tests="""test id,variant,lever,kind,level,start,end,people,orders,joins,control
                 t1,a, Touch Frequency ,One_To_One,0,2024-01-10,2024-02-10,1000,50,,yes
                 t1,b,touch_frequency,one_to_one,2,2024-01-10,2024-02-11,1000,60,,no
                 t1,b,touch_frequency,one_to_one,2,2024-01-10,2024-02-11,1000,60,,no
                 s1,low,channel_spend,sms,1000,2024-01-10,2024-01-20,,,3,
                 s1,high,channel_spend,sms,5000,2024-01-10,2024-01-20,,,9,""")
    (folder / "columns.yaml").write_text("tests: {test id: test_id}\n")
    b = load_bundle(folder)
    assert b.report.count("lever_names_normalised", "tests") == 1
    assert b.report.count("kind_names_normalised", "tests") == 1
    assert b.report.count("repeated_arm_rows", "tests") == 1
    assert b.tests["lever"].tolist() == ["channel_spend"] * 2 + ["touch_frequency"] * 2
    assert b.tests["control"].tolist()[2:] == [True, False]
    assert b.tests["people"].isna().sum() == 2
    assert b.tests.loc[b.tests["test_id"] == "s1", "joins"].tolist() == [3, 9]
    cut = b.until("2024-02-10")  # t1's arm b ends on the 11th: the whole test is unknown
    assert cut.tests["test_id"].tolist() == ["s1", "s1"]
    assert cut.report.count("after_as_of", "tests") == 3  # rows, the repeat included
    assert len(b.until("2024-02-11").tests) == 4
