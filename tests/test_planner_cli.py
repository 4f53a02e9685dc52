"""``simdomain plan``: exports, exit codes and messages."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from planner_cases import small_dict

from simdomain.cli import main
from simdomain.cliutil import BAD_INPUT, INFEASIBLE, OK
from simdomain.planner.planning import PLAN_COLUMNS


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(small_dict(), sort_keys=False))
    return path


def test_plan_writes_the_exports(scenario_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["plan", str(scenario_file), "--out", str(out), "--member-window", "1",
                 "--verify", "3", "--lock", "cards=3000"])
    assert code == OK
    printed = capsys.readouterr().out
    assert "min-cost plan" in printed and "P(met)" in printed
    plan = pd.read_csv(out / "plan.csv")
    assert list(plan.columns) == PLAN_COLUMNS
    assert len(plan) == 3 * 3 and (plan.loc[plan["channel"] == "cards", "spend_cny"] == 3000).all()
    sheets = pd.read_excel(out / "plan.xlsx", sheet_name=None)
    assert list(sheets) == ["plan", "targets vs plan", "diagnostics"]
    assert "probability_met" in sheets["targets vs plan"].columns
    diagnostics = json.loads((out / "diagnostics.json").read_text())
    assert diagnostics["status"] == "optimal"
    assert diagnostics["verification"]["reps"] == 3
    assert all(c["max_error_share"] <= 0.002 + 1e-9 for c in diagnostics["curves"])
    assert json.loads((out / "plan.json").read_text())["plan"][0]["channel"] == "cards"


def test_infeasible_exits_3_with_a_diagnosis(scenario_file, tmp_path, capsys):
    code = main(["plan", str(scenario_file), "--out", str(tmp_path / "out"), "--budget", "20000",
                 "--quiet"])
    assert code == INFEASIBLE
    err = capsys.readouterr().err
    assert "monthly_new_members 2026-01" in err and "short by" in err
    assert "total budget:" in err
    assert json.loads((tmp_path / "out" / "diagnostics.json").read_text())["status"] == "infeasible"
    written = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != ".simdomain.json")
    assert written == ["diagnosis.txt", "diagnostics.json"]  # nothing that looks like a plan
    assert "short by" in (tmp_path / "out" / "diagnosis.txt").read_text()


@pytest.mark.parametrize("args, message", [
    (["--lock", "tv=5"], "--lock: unknown channel 'tv'; known: ['cards', 'sms', 'feeds']"),
    (["--lock", "sms"], "--lock: expected CH=SPEND, got 'sms'"),
    (["--lock", "sms=1,2"], "--lock: sms: expected a spend >= 0, or one per month of the 3"),
])
def test_bad_input_exits_2(scenario_file, tmp_path, capsys, args, message):
    code = main(["plan", str(scenario_file), "--out", str(tmp_path / "out"), *args])
    assert code == BAD_INPUT
    assert message in capsys.readouterr().err


def test_max_members_needs_no_targets_to_be_met_first(scenario_file, tmp_path, capsys):
    code = main(["plan", str(scenario_file), "--objective", "max-members", "--out",
                 str(tmp_path / "out"), "--set", "targets={}", "--quiet"])
    assert code == OK
    diagnostics = json.loads((tmp_path / "out" / "diagnostics.json").read_text())
    assert diagnostics["objective"] == "max-members"
    assert diagnostics["marginal_costs"]["budget_total"] > 0
