"""Synthetic bundles: the column contract, truth.json's counts, dirt, bytes, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, build

from simdomain.cli import main
from simdomain.errors import InputError
from simdomain.outfolder import MARKER
from simdomain.synth import PROCESS_NAMES, synthesize, write_bundle
from simdomain.synth.bundle import COLUMNS

SCENARIO = FIXTURES / "minimal.yaml"
TIME = "%Y-%m-%d %H:%M:%S"


def run(args: list[str]) -> int:
    """The command's exit code, usage errors (argparse exits) included."""
    try:
        return main(args)
    except SystemExit as exc:
        return int(exc.code)


def read(folder: Path, name: str, fmt: str = "csv") -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(folder / f"{name}.parquet")
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def times(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column.replace("", None), format=TIME, errors="coerce")


@pytest.fixture(scope="module", params=PROCESS_NAMES)
def bundle_dir(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / request.param
    assert main(["synth", str(SCENARIO), "--out", str(out), "--process", request.param,
                 "--history-days", "150", "--seed", "3", "--quiet"]) == 0
    return out


def test_files_follow_the_contract(bundle_dir: Path) -> None:
    truth = json.loads((bundle_dir / "truth.json").read_text())
    start = pd.Timestamp(truth["window"]["start"])
    as_of = pd.Timestamp(truth["window"]["as_of"])
    tables = {name: read(bundle_dir, name) for name in COLUMNS if name not in ("touches", "tests")}
    for name, frame in tables.items():
        assert list(frame.columns) == COLUMNS[name], name
    orders, contacts = tables["orders"], tables["contacts"]
    ordered = times(orders["ordered_at"])
    assert ordered.notna().all() and ordered.between(start, as_of, inclusive="left").all()
    assert ordered.is_monotonic_increasing
    assert (pd.to_numeric(orders["amount"]) > 0).all()
    assert orders["order_id"].is_unique
    assert (pd.to_numeric(orders["items"]) >= 1).all()
    assert set(orders["channel"]) <= {"mall", "tmall", "pos", "jd"}
    added, deleted = times(contacts["added_at"]), times(contacts["deleted_at"])
    assert added.notna().all() and (added < as_of).all()
    assert ((deleted > added) | deleted.isna()).all()
    assert (deleted.isna() == (contacts["deleted_by"] == "")).all()
    assert set(contacts["deleted_by"]) <= {"customer", "staff", ""}
    assert set(contacts["channel"]) <= {"sms", "organic", "referral"}
    assert contacts["customer_id"].is_unique
    known = set(contacts["customer_id"])
    assert set(tables["members"]["customer_id"]) <= known
    assert tables["members"]["customer_id"].is_unique
    assert times(tables["members"]["joined_at"]).notna().all()
    referrals = tables["referrals"]
    assert set(referrals["referrer_id"]) | set(referrals["referred_id"]) <= known
    assert (referrals["referred_id"].map(dict(zip(contacts["customer_id"], contacts["channel"])))
            == "referral").all()
    spend = tables["spend"]
    assert pd.to_datetime(spend["month"], format="%Y-%m").notna().all()
    assert (pd.to_numeric(spend["spend_cny"]) >= 0).all()
    # ids join only partly: marketplace-only buyers, and contacts who never order
    buyers = set(orders["customer_id"])
    assert buyers - known and known - buyers
    counts = truth["counts"]
    assert counts["orders"] == len(orders) and counts["contacts"] == len(contacts)
    assert counts["members"] == len(tables["members"])
    assert counts["referrals"] == len(referrals)
    assert counts["deletions"] == int(deleted.notna().sum())
    assert counts["buyers"] == orders["customer_id"].nunique()
    assert counts["marketplace_only_buyers"] == len(buyers - known)
    month = ordered.dt.strftime("%Y-%m")
    assert month.value_counts().sort_index().to_dict() == counts["orders_by_month"]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    for run in ("a", "b"):
        for fmt in ("csv", "parquet"):
            assert main(["synth", str(SCENARIO), "--out", str(tmp_path / run / fmt),
                         "--process", "pareto-seasonal", "--history-days", "90", "--messy",
                         "--format", fmt, "--quiet"]) == 0
    for fmt in ("csv", "parquet"):
        files = sorted(p.relative_to(tmp_path / "a" / fmt)
                       for p in (tmp_path / "a" / fmt).rglob("*")
                       if p.is_file() and p.name != MARKER)  # the writer's record, dated
        assert len(files) == 7
        for file in files:
            assert (tmp_path / "a" / fmt / file).read_bytes() == \
                (tmp_path / "b" / fmt / file).read_bytes(), file
    other = tmp_path / "c"
    main(["synth", str(SCENARIO), "--out", str(other), "--process", "pareto-seasonal",
          "--history-days", "90", "--quiet", "--seed", "1"])
    assert (other / "orders.csv").read_bytes() != (tmp_path / "a/csv/orders.csv").read_bytes()


def test_parquet_has_the_csv_contents(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet"):
        main(["synth", str(SCENARIO), "--out", str(tmp_path / fmt), "--process", "bgnbd",
              "--history-days", "60", "--format", fmt, "--quiet"])
    for name in ("orders", "contacts", "members", "referrals", "spend"):
        csv = pd.read_csv(tmp_path / "csv" / f"{name}.csv", dtype=object)
        parquet = pd.read_parquet(tmp_path / "parquet" / f"{name}.parquet").astype(object)
        numbers = parquet.columns[parquet.map(lambda v: isinstance(v, (int, float))).all()]
        csv[numbers] = csv[numbers].astype(float)
        pd.testing.assert_frame_equal(csv.fillna(np.nan), parquet.fillna(np.nan),
                                      check_dtype=False)  # an empty CSV cell is a Parquet null


@pytest.mark.parametrize("process", ["bgnbd", "engine"])
@pytest.mark.parametrize("seed", [5, 8])
def test_messy_counts_match_the_files(tmp_path: Path, minimal, process: str, seed: int) -> None:
    """Each kind of dirt counted in ``truth.json`` is found in the files, exactly (a
    deletion-before-add once fell on one of two copies of a contact row, so that the
    copies differed: which seed shows it depends on the engine's random streams)."""
    bundle = synthesize(minimal, process=process, seed=seed, history_days=120, messy=True)
    write_bundle(bundle, tmp_path / "b")
    truth = json.loads((tmp_path / "b" / "truth.json").read_text())
    dirt = truth["messy"]
    orders = read(tmp_path / "b", "orders")
    contacts = read(tmp_path / "b", "contacts")
    as_of = pd.Timestamp(truth["window"]["as_of"])
    assert len(orders) == truth["counts"]["order_rows"]
    assert int(orders.duplicated().sum()) == dirt["duplicate_rows"] > 0
    unique = orders.drop_duplicates()
    amount = pd.to_numeric(unique["amount"], errors="coerce")
    at = times(unique["ordered_at"])
    assert int(amount.isna().sum()) == dirt["bad_amounts"] > 0
    assert int(at.isna().sum()) == dirt["bad_dates"] > 0
    assert int((at >= as_of).sum()) == dirt["future_dates"] > 0
    assert int((amount < 0).sum()) == dirt["refund_rows"] > 0
    refunded = unique.loc[(amount < 0) & (unique["order_id"] != ""), "order_id"]
    assert refunded.isin(unique.loc[amount > 0, "order_id"]).all()
    no_id = orders["order_id"] == ""
    assert int(no_id.sum()) == dirt["rows_without_order_id"] > 0
    assert set(orders.loc[no_id, "channel"]) == {"pos"}
    assert int((orders.duplicated() & no_id).sum()) == dirt["duplicate_rows_without_order_id"]
    sales = unique[~(amount < 0) & (unique["order_id"] != "")]
    assert len(sales) - sales["order_id"].nunique() == dirt["multi_item_extra_rows"] > 0
    tb = unique["customer_id"].str.startswith("tb_")
    assert int(tb.sum()) == dirt["unjoined_rows"] > 0
    assert unique.loc[tb, "customer_id"].nunique() == dirt["unjoined_customers"]
    readable = times(orders["ordered_at"])[pd.to_numeric(orders["amount"], errors="coerce")
                                           .notna()].dropna().to_numpy()
    assert int((readable[1:] < readable[:-1]).sum()) == dirt["out_of_order_rows"] > 0
    assert int(contacts.duplicated().sum()) == dirt["duplicate_contact_rows"]
    people = contacts.drop_duplicates()
    assert len(people) - people["customer_id"].nunique() == dirt["second_staff_rows"] > 0
    early = times(people["deleted_at"]) < times(people["added_at"])
    assert int(early.sum()) == dirt["deletions_before_add"] > 0
    first_add = times(contacts["added_at"]).groupby(contacts["customer_id"]).min()
    before = ((times(orders["ordered_at"]) < orders["customer_id"].map(first_add))
              & (pd.to_numeric(orders["amount"], errors="coerce") > 0))
    ids = orders.loc[before, "order_id"]
    assert ids[ids != ""].nunique() + (ids == "").sum() == dirt["orders_before_add"]
    if process == "bgnbd":  # some contacts bought before they added the brand
        assert dirt["orders_before_add"] > 0 and truth["counts"]["first_orders_before_add"] > 0
    # the split rows of an order add up to the clean order's amount
    clean = synthesize(minimal, process=process, seed=seed, history_days=120).orders
    totals = sales.assign(amount=pd.to_numeric(sales["amount"], errors="coerce")).groupby(
        "order_id")["amount"].sum()
    joined = clean.set_index("order_id")["amount"].reindex(totals.index)
    good = totals.index.isin(sales.loc[amount.reindex(sales.index).notna(), "order_id"])
    np.testing.assert_allclose(totals[good], joined[good], atol=0.011)


def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    cases = [
        ["--process", "nope"],
        ["--history-days", "0"],
        ["--start", "2030-01-01"],
        ["--start", "not-a-date"],
        ["--set", "lifecycle.join=2"],
    ]
    for extra in cases:
        code = run(["synth", str(SCENARIO), "--out", str(tmp_path / "x"), "--quiet", *extra])
        err = capsys.readouterr().err
        assert code == 2, extra
        assert "Traceback" not in err and err.strip(), extra
    assert not (tmp_path / "x").exists()
    occupied = tmp_path / "mine"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    assert main(["synth", str(SCENARIO), "--out", str(occupied), "--quiet",
                 "--process", "bgnbd", "--history-days", "60"]) == 2
    assert (occupied / "notes.txt").read_text() == "keep me"
    assert main(["synth", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "y")]) == 2


def test_refuses_a_scenario_without_contacts_or_orders() -> None:
    quiet = build(start_date="2027-01-01", initial_pool={"fan": 100, "customer": 50})
    for process in ("engine", "bgnbd"):  # no rates: no orders; no channels: no contacts
        with pytest.raises(InputError, match="no orders|no contacts"):
            synthesize(quiet, process=process, history_days=60)


def test_rewrites_a_bundle_in_place(tmp_path: Path, minimal) -> None:
    out = tmp_path / "data"
    write_bundle(synthesize(minimal, process="bgnbd", history_days=60, seed=1), out)
    write_bundle(synthesize(minimal, process="bgnbd", history_days=60, seed=2), out)
    assert json.loads((out / "truth.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing left beside


def test_window_options(minimal) -> None:
    with pytest.raises(InputError):
        synthesize(minimal, process="bgnbd", history_days=100, start=minimal.start_date)
    bundle = synthesize(minimal, process="bgnbd", start=pd.Timestamp("2025-10-01").date())
    assert bundle.truth["window"]["days"] == (minimal.start_date
                                              - pd.Timestamp("2025-10-01").date()).days


def test_tests_file_loads_with_its_truth(tmp_path: Path) -> None:
    """``synth --tests``: the tests file passes the loader's checks and truth.json holds
    the designs and the scenario's touch policy."""
    from simdomain.data import load_bundle
    from simdomain.scenario import load_scenario
    from simdomain.synth import synthesize, write_bundle

    scenario = load_scenario(Path(__file__).parent / "fixtures" / "touch_brand.yaml")
    bundle = synthesize(scenario, seed=2, history_days=120, tests=True)
    write_bundle(bundle, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    assert loaded.tests["test_id"].nunique() == 3
    assert loaded.tests.groupby("test_id").size().min() >= 2
    truth = json.loads((tmp_path / "b" / "truth.json").read_text())
    assert truth["tests"]["touch_policy"]["one_to_one"]["uplift"] == 0.05
    again = synthesize(scenario, seed=2, history_days=120, tests=True)
    pd.testing.assert_frame_equal(bundle.tests, again.tests)
