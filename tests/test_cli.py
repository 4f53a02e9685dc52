"""The command line: outputs, exit codes, and errors without tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from simdomain import cli, cliutil

FIXTURES = Path(__file__).parent / "fixtures"
MINIMAL = str(FIXTURES / "minimal.yaml")


def test_run_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["run", MINIMAL, "--reps", "2", "--seed", "3", "--out", str(out),
                     "--set", "touch_policy.one_to_one.per_week=1"])
    assert code == cliutil.OK
    printed = capsys.readouterr().out
    assert "2026-01" in printed and "monthly_new_members" in printed
    files = {p.name for p in out.iterdir() if p.name != ".simdomain.json"}
    assert files == {"daily.csv", "channels.csv", "monthly.csv", "targets.csv", "summary.json",
                     "scenario.resolved.yaml"}
    daily = pd.read_csv(out / "daily.csv")
    assert sorted(daily["rep"].unique()) == [0, 1] and daily["day"].max() == 59
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["reps"] == 2
    resolved = (out / "scenario.resolved.yaml").read_text()
    assert "per_week: 1" in resolved


def test_run_quiet_prints_nothing_and_agents_are_optional(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", MINIMAL, "--reps", "1", "--quiet", "--agents", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    agents = pd.read_parquet(out / "agents.parquet")
    assert len(agents) > 1310  # the initial pool alone is 1,310 people


@pytest.mark.parametrize("argv", [
    ["validate", str(FIXTURES / "wrong_values.yaml")],
    ["run", str(FIXTURES / "wrong_yaml.yaml")],
    ["run", str(FIXTURES / "absent.yaml")],
    ["run", MINIMAL, "--set", "lifecycle.join=2"],
])
def test_bad_input_exits_2_with_a_message_and_no_traceback(argv, capsys):
    assert cli.main(argv) == cliutil.BAD_INPUT
    err = capsys.readouterr().err
    assert err.strip() and "Traceback" not in err


@pytest.mark.parametrize("argv", [["run"], ["run", MINIMAL, "--reps", "0"],
                                  ["run", MINIMAL, "--reps", "zero"], ["plan-nothing"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == cliutil.BAD_INPUT
    assert "Traceback" not in capsys.readouterr().err


def test_validate_reports_every_file(capsys):
    code = cli.main(["validate", MINIMAL, str(FIXTURES / "wrong_shares.yaml"),
                     str(FIXTURES / "wrong_campaign_channel.yaml")])
    captured = capsys.readouterr()
    assert code == cliutil.BAD_INPUT
    assert "minimal.yaml: ok" in captured.out
    assert captured.err.count("\n") == 2


def test_interrupted_run_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "simulate", interrupted)
    out = tmp_path / "run"
    assert cli.main(["run", MINIMAL, "--out", str(out)]) == cliutil.INTERRUPTED
    assert not out.exists() or not any(out.iterdir())


def test_failed_write_keeps_the_previous_results(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert cli.main(["run", MINIMAL, "--reps", "1", "--quiet", "--out", str(out)]) == 0
    before = (out / "daily.csv").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_json", broken, raising=False)
    monkeypatch.setattr("simdomain.outputs.dump_scenario", broken)
    assert cli.main(["run", MINIMAL, "--reps", "1", "--seed", "9", "--quiet",
                     "--out", str(out)]) == cliutil.INTERNAL_ERROR
    assert (out / "daily.csv").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


def test_console_script_entry_point(tmp_path):
    done = subprocess.run([sys.executable, "-m", "simdomain.cli", "validate", MINIMAL],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout
