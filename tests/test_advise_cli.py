"""``simdomain advise`` on a small twin whose draws are written by hand: one channel's
saturation and the 1:1 uplift are uncertain, another channel's cost is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simdomain.cli import main
from simdomain.twin.people import PEOPLE_COLUMNS

SCENARIO = {
    "name": "tiny_twin", "start_date": "2027-01-01", "horizon_days": 59,
    "segments": {"all": {"share": 1.0, "order_value_cny": 100}},
    "channels": {
        "feed": {"monthly_spend_cny": 20000, "cost_per_contact_cny": 1.0,
                 "funnel": {"add": 0.2}, "saturation_contacts": 30000},
        "card": {"monthly_spend_cny": 10000, "cost_per_contact_cny": 2.0,
                 "funnel": {"add": 0.1}},
    },
    "touch_policy": {"one_to_one": {"per_week": 2, "uplift": 0.05, "fatigue": 0.02},
                     "fatigue_sensitivity": 1.0},
    "lifecycle": {"first_order": 0.02, "repeat_order": 0.01, "join": 0.01, "koc": 0.001,
                  "deletion": {"fan": 0.002, "customer": 0.001, "member": 0.0005,
                               "koc": 0.0005}},
    "targets": {"monthly_new_adds": 4000, "monthly_new_members": 3300},
    "population": {"people": "population.parquet", "parameters": "parameters.parquet"},
}


def _twin(folder: Path, draws: int = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    n = 5000
    people = pd.DataFrame({c: [np.nan] * n for c in PEOPLE_COLUMNS})
    people["customer_id"] = [f"p{i}" for i in range(n)]
    people["stage"] = np.array(["fan", "customer", "member", "koc"])[np.arange(n) % 4]
    people["segment"], people["source"] = "all", "initial"
    people["orders"] = np.arange(n) % 4
    people.to_parquet(folder / "population.parquet", index=False)
    rng = np.random.default_rng(0)
    params = pd.DataFrame({
        "draw": np.arange(draws + 1),
        "channels.feed.saturation_contacts": np.r_[60000, 60000 * rng.lognormal(0, 0.5, draws)],
        "channels.card.cost_per_contact_cny": np.r_[2.0, 2.0 * rng.lognormal(0, 1e-5, draws)],
        "touch_policy.one_to_one.uplift": np.r_[0.05, 0.05 * rng.lognormal(0, 0.8, draws)],
    })
    params.to_parquet(folder / "parameters.parquet", index=False)
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


@pytest.fixture(scope="module")
def advised(tmp_path_factory):
    root = tmp_path_factory.mktemp("advise")
    scenario = _twin(root / "twin")
    out = root / "out"
    code = main(["advise", str(scenario), "--draws", "24", "--outcomes", "8", "--quiet",
                 "--out", str(out)])
    return code, out


def test_advise_ranks_tests_of_the_uncertain_levers(advised):
    code, out = advised
    assert code == 0
    table = pd.read_csv(out / "advice.csv")
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert table["net_value_cny"].is_monotonic_decreasing
    levers = set(table["lever"])
    assert "channel:feed" in levers and "touch:one_to_one" in levers
    assert "channel:card" not in levers  # its curve is known to 0.1%: nothing to learn
    feed = table[table["lever"] == "channel:feed"]
    # the plan leans on feed, whose saturation is uncertain: learning it is worth money
    assert (feed["evsi_cny"] > 2 * feed["evsi_se_cny"]).any()
    assert (table["people_per_arm"] >= 1000).all()  # the seeds' floor
    assert np.allclose(table["net_value_cny"], table["evsi_cny"] - table["cost_cny"])
    summary = json.loads((out / "advice.json").read_text())
    assert summary["plan_cost_cny"] > 0 and summary["draws"] == 24


def test_a_scenario_without_draws_is_refused_before_anything_is_written(tmp_path, capsys):
    plain = dict(SCENARIO)
    plain.pop("population")
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(plain))
    out = tmp_path / "out"
    assert main(["advise", str(path), "--out", str(out)]) == 2
    assert "advise needs a twin" in capsys.readouterr().err
    assert not out.exists()


def test_the_report_shows_the_ranked_tests(advised):
    _, out = advised
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Ranked tests" in page and "channel:feed" in page


def test_same_seed_same_advice(tmp_path):
    from simdomain.advise.ranking import AdviseOptions, advise
    from simdomain.scenario import load_scenario

    scenario = load_scenario(_twin(tmp_path / "twin"))
    options = AdviseOptions(draws=8, outer=3, seed=5)
    first, second = advise(scenario, options), advise(scenario, options)
    pd.testing.assert_frame_equal(first.table, second.table)


def test_targets_out_of_reach_exit_3_and_write_nothing(tmp_path, capsys):
    path = _twin(tmp_path / "twin")
    out = tmp_path / "out"
    code = main(["advise", str(path), "--draws", "8", "--outcomes", "2", "--quiet",
                 "--set", "budget.monthly_cny=1000", "--out", str(out)])
    assert code == 3
    assert "no plan meets every target" in capsys.readouterr().err
    assert not (out / "advice.csv").exists()
