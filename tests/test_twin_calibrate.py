"""A twin calibrated on data the engine made with known parameters recovers them, and
every command starts from it.

The bundle comes from ``tests/fixtures/twin_brand.yaml``, whose lifecycle is the twin's
own model (see the fixture), so the truth is in the twin's terms.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simdomain
from simdomain.cli import main
from simdomain.data import load_bundle
from simdomain.synth import synthesize, write_bundle
from simdomain.twin.calibrate import calibrate
from simdomain.twin.history import build_history

FIXTURE = Path(__file__).parent / "fixtures" / "twin_brand.yaml"
SMALL = ["channels.package_card.monthly_spend_cny=10000",
         "channels.store_qr.free_adds_per_month=250"]


def _bundle(folder: Path, seed: int = 3, overrides: list[str] = SMALL, days: int = 540,
            process: str = "engine") -> Path:
    scenario = simdomain.load_scenario(FIXTURE, overrides)
    write_bundle(synthesize(scenario, process=process, seed=seed, history_days=days), folder)
    return folder


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return _bundle(tmp_path_factory.mktemp("bundle") / "data")


def _twin(folder: Path, draws: int = 100, horizon_days: int = 365):
    bundle = load_bundle(folder)
    history = build_history(bundle.orders, bundle.span[1].date(), contacts=bundle.contacts,
                            members=bundle.members, referrals=bundle.referrals)
    return calibrate(history, spend=bundle.spend, referrals=bundle.referrals, draws=draws,
                     horizon_days=horizon_days), history


def test_the_twin_recovers_the_engine_parameters_within_its_intervals(bundle_dir):
    twin, _ = _twin(bundle_dir)
    est = twin.estimates.set_index("parameter")
    truth = {  # the fixture's numbers in the twin's terms
        "pnbd.r": 0.8, "pnbd.alpha": 0.8 / 0.01, "pnbd.s": 1.5, "pnbd.beta": 1.5 / 0.004,
        "lifecycle.repeat_order": 0.01, "lifecycle.dormancy": 0.004,
        "lifecycle.new_user_multiplier": 2.0, "lifecycle.heterogeneity.deletion_shape": 0.7,
    }
    # 90% intervals: each misses with probability 0.1, so 8 at once would all hold only
    # 43% of the time; widen each to 99.9% by the normal ratio 3.29 / 1.645 = 2 on the
    # log scale (one miss in ~125 runs of this test by the union bound).
    for name, value in truth.items():
        low, high, point = est.loc[name, ["low", "high", "estimate"]]
        half = np.log(high / low) / 2
        assert abs(np.log(value / point)) < 2 * half + 1e-9, (name, point, low, high)
    # channel rates: first orders 0.02 x 1.5 and x 0.7 in the fixture
    first = est.loc["lifecycle.first_order", "estimate"]
    for channel, factor in (("package_card", 1.5), ("store_qr", 0.7)):
        row = est.loc[f"channels.{channel}.propensity.first_order"]
        assert row["low"] / 1.2 < 0.02 * factor / first < row["high"] * 1.2, channel


def test_the_twin_scenario_validates_and_marks_where_numbers_come_from(bundle_dir, tmp_path):
    twin, _ = _twin(bundle_dir, draws=20)
    from simdomain.twin.write import write_twin

    write_twin(twin, tmp_path / "twin")
    text = (tmp_path / "twin" / "scenario.yaml").read_text(encoding="utf-8")
    assert "# fitted: " in text and "90%" in text
    assert "none assumed" in text  # without a base: no touches, said so
    scenario = simdomain.load_scenario(tmp_path / "twin" / "scenario.yaml")
    assert scenario.population is not None
    people = pd.read_parquet(tmp_path / "twin" / "population.parquet")
    assert people["customer_id"].is_unique and (people["join_day"] <= -1).all()
    params = pd.read_parquet(tmp_path / "twin" / "parameters.parquet")
    assert list(params["draw"]) == list(range(21))


def test_replications_draw_parameters_in_pairs_and_split_the_spread(bundle_dir, tmp_path):
    twin, _ = _twin(bundle_dir, draws=20, horizon_days=60)
    from simdomain.twin.write import write_twin

    write_twin(twin, tmp_path / "twin")
    scenario = simdomain.load_scenario(tmp_path / "twin" / "scenario.yaml")
    result = simdomain.simulate(scenario, seed=5, reps=4, keep_agents=False)
    assert result.draws[0] == result.draws[1] and result.draws[2] == result.draws[3]
    assert result.draws[0] != result.draws[2] and 0 not in result.draws
    spread = result.spread().set_index("kpi")
    assert 0 <= spread.loc["new_members", "parameter_share"] <= 1
    again = simdomain.simulate(scenario, seed=5, reps=4, keep_agents=False)
    pd.testing.assert_frame_equal(result.daily, again.daily)  # same seed, same numbers
    point = simdomain.simulate(scenario, seed=5, reps=2, keep_agents=False,
                               parameters="point")
    assert point.draws == [0, 0]


def test_calibrate_and_run_from_the_command_line(bundle_dir, tmp_path, capsys):
    out = tmp_path / "twin"
    assert main(["calibrate", str(bundle_dir), "--out", str(out), "--draws", "10",
                 "--horizon-days", "31", "--quiet"]) == 0
    for name in ("scenario.yaml", "population.parquet", "parameters.parquet",
                 "estimates.csv", "calibration.html"):
        assert (out / name).exists(), name
    assert main(["run", str(out / "scenario.yaml"), "--reps", "2", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "spread" in summary and summary["parameter_draws"][0] == summary["parameter_draws"][1]


def test_backtest_writes_its_tables_and_compares_with_the_baseline(bundle_dir, tmp_path):
    out = tmp_path / "bt"
    last = load_bundle(bundle_dir).span[1].date()
    cutoff = last - dt.timedelta(days=90)
    assert main(["backtest", str(bundle_dir), "--cutoff", str(cutoff), "--reps", "4",
                 "--draws", "10", "--out", str(out), "--quiet"]) == 0
    customers = pd.read_csv(out / "customers.csv")
    assert {"customer_id", "actual_orders", "forecast_orders", "baseline_orders",
            "p_alive"} <= set(customers.columns)
    metrics = json.loads((out / "backtest.json").read_text())
    assert metrics["twin"]["total_actual"] == customers["actual_orders"].sum()
    assert metrics["baseline_method"]
    monthly = pd.read_csv(out / "monthly.csv")
    assert {"orders", "orders_known_customers", "deletions", "new_members", "adds"} <= set(
        monthly["measure"])
    assert (out / "report.html").exists()


@pytest.mark.slow
def test_on_its_own_process_the_twin_forecasts_the_holdout_at_least_as_well_as_bg_nbd(tmp_path):
    # The engine's data are the twin's model: the known customers' total within the
    # issue's 10% (about 17,000 orders: Poisson noise is 1%, the rest parameter error;
    # seen -5.6% here, +0.2% at the README's size), and no worse per customer than the
    # BG/NBD, which misses the deletions and the channel differences.
    from simdomain.backtest import run_backtest

    folder = _bundle(tmp_path / "data", seed=11, overrides=[
        "channels.package_card.monthly_spend_cny=20000",
        "channels.store_qr.free_adds_per_month=500"], days=730)
    bundle = load_bundle(folder)
    last = bundle.span[1].date()
    (tmp_path / "bt").mkdir()
    test = run_backtest(bundle, last - dt.timedelta(days=182), last, tmp_path / "bt",
                        reps=10, draws=50, seed=1)
    twin, base = test.metrics["twin"], test.metrics["baseline"]
    assert abs(twin["total_error_pct"]) < 10, twin
    assert twin["mae"] <= base["mae"] * 1.01, (twin, base)
    assert twin["customer_coverage"] > 0.85


def test_messy_data_is_refused_by_row_or_calibrated_with_the_rejects_aside(tmp_path, capsys):
    scenario = simdomain.load_scenario(FIXTURE, SMALL)
    write_bundle(synthesize(scenario, seed=4, history_days=400, messy=True), tmp_path / "data")
    assert main(["calibrate", str(tmp_path / "data"), "--out", str(tmp_path / "a"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "orders.csv: row " in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()
    assert main(["calibrate", str(tmp_path / "data"), "--out", str(tmp_path / "b"), "--draws",
                 "10", "--horizon-days", "60", "--skip-bad-rows", "--quiet"]) == 0
    rejects = pd.read_csv(tmp_path / "b" / "rejects.csv")
    assert set(rejects["file"]) == {"orders.csv"} and len(rejects) > 0
    assert "refunds_netted" in (tmp_path / "b" / "cleaning.txt").read_text()


def test_with_orders_only_nothing_beyond_the_data_is_assumed(bundle_dir, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_bytes((bundle_dir / "orders.csv").read_bytes())
    assert main(["calibrate", str(tmp_path / "data"), "--out", str(tmp_path / "twin"),
                 "--draws", "10", "--horizon-days", "60", "--quiet"]) == 0
    scenario = simdomain.load_scenario(tmp_path / "twin" / "scenario.yaml")
    assert scenario.lifecycle.join == 0 and scenario.lifecycle.deletion["fan"] == 0
    assert set(scenario.channels) == {"not_a_contact"}  # buyers only; none are contacts
    result = simdomain.simulate(scenario, seed=1, reps=2, keep_agents=False)
    assert result.daily["orders"].sum() > 0 and result.daily["deletions"].sum() == 0
