"""Kill an experiment midway (Ctrl-C, then SIGKILL), rerun it, get the same table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

import simdomain
from simdomain.experiments import load_experiment, run_experiment
from simdomain.experiments.store import finished_runs

ROOT = Path(__file__).parent.parent
EXPERIMENT = Path(__file__).parent / "fixtures" / "experiment_resume.yaml"
RUNS = 24


def start(out: Path) -> subprocess.Popen[str]:
    """``simdomain experiment`` in a new session (so the whole group can be killed)."""
    return subprocess.Popen(
        [sys.executable, "-m", "simdomain.cli", "experiment", str(EXPERIMENT), "--out", str(out),
         "--workers", "1", "--checkpoint", "0.2", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def wait_for_parts(out: Path, more_than: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) <= more_than:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no part file was written"
        time.sleep(0.02)


def test_killed_run_resumes_to_the_uninterrupted_table(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    first = start(out)
    wait_for_parts(out, 0, first)
    first.send_signal(signal.SIGINT)  # Ctrl-C: finished runs are written, exit 130
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "runs are saved in" in err and "rerun the same command" in err
    after_interrupt = finished_runs(out)
    assert 0 < len(after_interrupt) < RUNS

    second = start(out)
    wait_for_parts(out, len(list(out.glob("part-*.parquet"))), second)
    os.killpg(second.pid, signal.SIGKILL)  # a crash: nothing gets to clean up
    second.communicate(timeout=60)
    after_kill = finished_runs(out)
    assert after_interrupt < after_kill and len(after_kill) < RUNS, "the kill came too late"

    third = start(out)
    _, err = third.communicate(timeout=120)
    assert third.returncode == 0, err

    whole = tmp_path / "whole"
    run_experiment(load_experiment(EXPERIMENT), whole, workers=1)
    resumed, expected = simdomain.load_results(out), simdomain.load_results(whole)
    assert len(expected.runs) == RUNS and expected.runs["run"].is_unique
    pd.testing.assert_frame_equal(resumed.runs, expected.runs)
    pd.testing.assert_frame_equal(resumed.summary, expected.summary)
    parts = {"parts"}  # the checksums of the part files, which split the runs differently
    assert {k: v for k, v in resumed.manifest.items() if k not in parts} == \
        {k: v for k, v in expected.manifest.items() if k not in parts}
