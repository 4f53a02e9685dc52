"""Running experiments: the same table on any engine, failures recorded, outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simdomain
from simdomain.cli import main
from simdomain.errors import InputError
from simdomain.experiments import ExperimentResults, load_experiment, run_experiment
from simdomain.experiments.outcomes import Measure, measure
from simdomain.experiments.spec import scenario_at
from simdomain.simulation import simulate

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "experiment_tiny.yaml"
FAILING_RUNS = [2, 5]  # sms_budget = -1


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> ExperimentResults:
    """The tiny experiment run in this process (one worker)."""
    out = tmp_path_factory.mktemp("serial")
    report = run_experiment(load_experiment(TINY), out, workers=1)
    assert report.ran == 6 and report.resumed == 0
    return simdomain.load_results(out)


def test_one_row_per_run_and_replication(serial: ExperimentResults) -> None:
    runs = serial.runs
    assert list(runs.columns) == [
        "run", "replication", "seed", "touch_policy.one_to_one.per_week", "sms_budget",
        "members", "pool", "cost_per_member", "sms_adds", "adds_target_met",
        "gmv_2026_01", "gmv_2026_02", "error"]
    assert runs[["run", "replication"]].values.tolist() == [[r, i] for r in range(6) for i in (0, 1)]
    assert runs.groupby("run")["seed"].nunique().eq(1).all() and runs["seed"].nunique() == 6
    assert serial.manifest["status"] == "complete" and serial.manifest["failed"] == 2


def test_a_failing_run_is_recorded_and_the_others_finish(serial: ExperimentResults) -> None:
    runs = serial.runs
    failed = runs[runs["error"].notna()]
    assert sorted(set(failed["run"])) == FAILING_RUNS
    assert failed["error"].str.contains("channels -> sms -> monthly_spend_cny").all()
    assert failed[["members", "pool"]].isna().all().all()
    ok = runs[runs["error"].isna()]
    assert len(ok) == 8 and ok[["members", "pool", "sms_adds"]].notna().all().all()
    summary = serial.summary
    assert summary is not None and len(summary) == 6 * 7
    assert (summary[summary["run"].isin(FAILING_RUNS)]["n"] == 0).all()
    assert (summary[~summary["run"].isin(FAILING_RUNS)]["n"] == 2).all()


def test_same_results_on_two_processes_and_on_dask(serial: ExperimentResults,
                                                   tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    experiment = load_experiment(TINY)
    run_experiment(experiment, tmp_path / "pool", workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        run_experiment(experiment, tmp_path / "dask", scheduler=cluster.scheduler_address)
    for name in ("pool", "dask"):
        other = simdomain.load_results(tmp_path / name)
        pd.testing.assert_frame_equal(other.runs, serial.runs)
        pd.testing.assert_frame_equal(other.summary, serial.summary)


def test_rerun_skips_finished_runs_and_refuses_a_changed_experiment(
        serial: ExperimentResults, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["experiment", str(TINY), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    parts = sorted(out.glob("part-*.parquet"))
    report = run_experiment(load_experiment(TINY), out, workers=1)
    assert (report.resumed, report.ran) == (6, 0)
    assert sorted(out.glob("part-*.parquet")) == parts
    changed = tmp_path / "changed.yaml"
    changed.write_text(TINY.read_text().replace("seed: 11", "seed: 12"))
    shutil.copy(FIXTURES / "minimal.yaml", tmp_path / "minimal.yaml")
    with pytest.raises(InputError, match="holds results of a different experiment"):
        run_experiment(load_experiment(changed), out, workers=1)
    assert main(["experiment", str(changed), "--out", str(out), "--quiet"]) == 2
    assert main(["experiment", str(changed), "--out", str(out), "--workers", "1",
                 "--fresh", "--quiet"]) == 0
    fresh = simdomain.load_results(out).runs
    assert (fresh["seed"] != serial.runs["seed"]).all()


def test_cli_reports_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["experiment", str(TINY), "--out", str(tmp_path), "--workers", "1"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "tiny: 6 runs x 2 replications (0 already done, 6 run in" in out
    assert "2 of 6 runs failed" in err and "2 x invalid scenario" in err and "(runs 2, 5)" in err


def test_outcomes_aggregate_the_months_as_documented() -> None:
    experiment = load_experiment(TINY)
    scenario = scenario_at(experiment.base, {"referral.fraud_share": 0.3})
    result = simulate(scenario, seed=4, reps=2, keep_agents=True)
    months = ("2026-01", "2026-02")
    values = pd.DataFrame(measure(result, [
        Measure("members", months, kpi="new_members"),
        Measure("pool", months, kpi="pool_size"),
        Measure("deletion_rate", months, kpi="deletion_rate"),
        Measure("cost", months, kpi="cost_per_member_cny"),
        Measure("sms_spend_jan", months[:1], kpi="spend_cny", channel="sms"),
        Measure("max_adds", months, kpi="new_adds", aggregate="max"),
        Measure("fraud", months, kpi="fraud_adds"),
        Measure("adds_met", months, target="monthly_new_adds"),
    ]))
    monthly = result.monthly.set_index(["rep", "month", "kpi", "channel"])["value"]
    every = monthly.xs("all", level="channel")
    for rep in (0, 1):
        row = values.iloc[rep]
        kpis = every.xs(rep, level="rep").unstack("kpi")
        assert row["members"] == kpis["new_members"].sum()
        assert row["pool"] == kpis["pool_size"].iloc[-1]
        assert row["deletion_rate"] == pytest.approx(kpis["deletion_rate"].mean())
        assert row["cost"] == pytest.approx(kpis["spend_cny"].sum() / kpis["new_members"].sum())
        assert row["sms_spend_jan"] == monthly[(rep, "2026-01", "spend_cny", "sms")]
        assert row["max_adds"] == kpis["new_adds"].max()
        agents = result.agents[result.agents["rep"] == rep]
        assert row["fraud"] == (agents["segment"] == "fraud").sum() > 0
        targets = result.targets[(result.targets["rep"] == rep)
                                 & (result.targets["target"] == "monthly_new_adds")]
        assert row["adds_met"] == targets["met"].mean()
    assert np.isfinite(values.to_numpy()).all()


def test_a_sensitivity_design_writes_its_indices(tmp_path: Path) -> None:
    path = tmp_path / "sensitivity.yaml"
    path.write_text(f"""
name: sens
scenario: {FIXTURES / "minimal.yaml"}
set: {{horizon_days: 40, targets: {{}}}}
factors:
  - {{path: lifecycle.join, low: 0.005, high: 0.03}}
  - {{path: touch_policy.one_to_one.per_week, low: 0, high: 3, integer: true}}
design: {{kind: sobol_sensitivity, samples: 4}}
outcomes:
  - {{name: members, kpi: new_members}}
""")
    report = run_experiment(load_experiment(path), tmp_path / "out", workers=1)
    assert report.files == ["summary.csv", "sensitivity.csv"] and report.ran == 4 * (2 + 2)
    indices = simdomain.load_results(tmp_path / "out").sensitivity
    assert indices is not None
    assert set(indices["index"]) == {"S1", "ST"} and len(indices) == 4
    assert set(indices["factor"]) == {"lifecycle.join", "touch_policy.one_to_one.per_week"}
