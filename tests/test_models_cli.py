"""``simdomain fit``: the files it writes, and bad input refused without leftovers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from simdomain import cli, cliutil
from simdomain.models.value import VALUE_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures"
MINIMAL = str(FIXTURES / "minimal.yaml")
ORDERS = """customer_id,date,amount,channel,member_join_date
a,2026-01-01,100,cards,
a,2026-01-15,80,cards,
b,2026-01-02,60,calls,2026-01-20
b,2026-02-10,70,calls,2026-01-20
b,2026-03-01,65,calls,2026-01-20
c,2026-01-05,120,cards,
c,2026-04-02,90,cards,
d,2026-02-01,50,calls,
e,2026-03-03,40,calls,2026-03-10
e,2026-05-30,45,calls,2026-03-10
f,2026-06-01,30,cards,
"""


def test_fit_on_a_scenario_writes_every_output(tmp_path, capsys):
    out = tmp_path / "fit"
    code = cli.main(["fit", MINIMAL, "--reps", "2", "--seed", "4", "--days", "20", "29",
                     "--out", str(out), "--set", "touch_policy.one_to_one.per_week=1"])
    assert code == cliutil.OK
    printed = capsys.readouterr().out
    assert "churn_30d" in printed and "members per add" in printed
    assert {p.name for p in out.iterdir() if p.name != ".simdomain.json"} == {
        "report.md", "metrics.csv", "calibration.csv", "channel_calibration.csv",
        "channel_value.csv", "value_check.csv", "models.joblib", "manifest.json",
        "scenario.resolved.yaml"}
    value = pd.read_csv(out / "channel_value.csv")
    assert list(value.columns) == VALUE_COLUMNS
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"roc_auc", "pr_auc", "brier", "top_decile_lift"} <= set(metrics["metric"])
    assert set(metrics["estimator"]) == {"gbm", "logistic"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["info"]["seed"] == 4 and manifest["info"]["days"] == [20, 29]
    assert "per_week: 1" in (out / "scenario.resolved.yaml").read_text()
    assert "## Held-out metrics" in (out / "report.md").read_text()


def test_fit_can_compare_targeting(tmp_path, capsys):
    out = tmp_path / "fit"
    code = cli.main(["fit", MINIMAL, "--reps", "2", "--days", "29", "--out", str(out), "--quiet",
                     "--estimator", "logistic", "--compare-targeting", "--top-share", "0.4",
                     "--max-churn-risk", "0.3"])
    assert code == cliutil.OK and capsys.readouterr().out == ""
    table = pd.read_csv(out / "targeting.csv")
    assert set(table["policy"]) == {"uniform", "uniform_same_volume", "targeted"}
    per_rep = pd.read_csv(out / "targeting_per_rep.csv")
    messages = per_rep.groupby("policy")["messages"].mean()
    assert messages["uniform_same_volume"] == pytest.approx(messages["targeted"], rel=0.1)


def test_fit_on_transactions(tmp_path, capsys):
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS)
    out = tmp_path / "fit"
    assert cli.main(["fit", "--transactions", str(orders), "--out", str(out)]) == cliutil.OK
    assert "lifecycle:" in capsys.readouterr().out
    fragment = yaml.safe_load((out / "rates.yaml").read_text())
    assert {"repeat_order", "dormancy", "wake", "join", "deletion"} <= set(fragment["lifecycle"])
    assert fragment["segments"]["customers"]["order_value_cny"] == pytest.approx(750 / 11, rel=1e-3)
    assert (out / "rates.csv").exists() and (out / "report.md").exists()


@pytest.mark.parametrize("argv, message", [
    (["fit", "--out", "{out}"], "give either a SCENARIO file or --transactions"),
    (["fit", MINIMAL, "--transactions", "{orders}", "--out", "{out}"], "exactly one"),
    (["fit", "--transactions", "{orders}", "--out", "{out}"], "row 3 -> date: cannot read"),
    (["fit", MINIMAL, "--days", "70", "--out", "{out}"], "--days: days must lie in 0..59"),
    (["fit", str(FIXTURES / "wrong_values.yaml"), "--out", "{out}"], "wrong_values.yaml"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    orders = tmp_path / "orders.csv"
    orders.write_text("customer_id,date,amount\na,2026-01-01,5\nb,2026-31-01,5\n")
    out = tmp_path / "fit"
    argv = [a.format(out=out, orders=orders) for a in argv]
    assert cli.main(argv) == cliutil.BAD_INPUT
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_a_failure_while_writing_leaves_the_folder_as_it_was(tmp_path, monkeypatch, capsys):
    out = tmp_path / "fit"
    out.mkdir()
    (out / "report.md").write_text("an earlier fit's")

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("simdomain.models.outputs.save_models", broken)
    code = cli.main(["fit", MINIMAL, "--reps", "1", "--days", "29", "--out", str(out), "--quiet",
                     "--estimator", "logistic"])
    assert code == cliutil.INTERRUPTED
    assert [p.name for p in out.iterdir()] == ["report.md"]
