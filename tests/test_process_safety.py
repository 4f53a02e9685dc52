"""Processes under kill -9, Ctrl-C and concurrent writers (Linux: reads /proc).

- Workers of ``experiment --workers 2`` and ``run --shards 4 --workers 2`` end promptly
  when the command is killed.
- ``kill -9`` while a run or comparison writes leaves the folder's old outputs or the
  new ones, complete, never a mix; the next writer cleans up.
- Two writers into one folder: the second is refused (naming the holder's pid) or runs
  after the first; the folder is never mixed and an experiment never doubles its rows.
- Ctrl-C while the command loads prints no traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import simdomain
from simdomain import cli, cliutil
from simdomain.outfolder import MARKER

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
MINIMAL = str(FIXTURES / "minimal.yaml")
SLOW_RUN = ["--reps", "2", "--set", "horizon_days=180", "--set", "targets={}", "--quiet"]
"""A run long enough (about a second) for two writers to meet."""


def simdomain_process(*argv: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "simdomain", *argv], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def parents() -> dict[int, int]:
    """Every live process's parent pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                found[int(entry.name)] = int(fields[1])
    return found


def descendants(pid: int) -> set[int]:
    links = parents()
    family, grew = set(), True
    while grew:
        new = {child for child, parent in links.items()
               if (parent == pid or parent in family) and child not in family}
        family |= new
        grew = bool(new)
    return family


def alive(pids: set[int]) -> set[int]:
    return pids & set(parents())


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["experiment", str(FIXTURES / "experiment_workers.yaml")],
    ["run", MINIMAL, "--shards", "4", *SLOW_RUN],
])
def test_workers_end_when_the_command_is_killed(tmp_path, argv):
    command = simdomain_process(*argv, "--workers", "2", "--quiet", "--out", str(tmp_path / "out"),
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while len(descendants(command.pid)) < 3:  # two workers and the resource tracker
            assert command.poll() is None, command.communicate()
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        time.sleep(1.0)  # the workers are running their first runs
        family = descendants(command.pid)
        os.kill(command.pid, signal.SIGKILL)  # the parent only: nothing gets to clean up
        command.communicate(timeout=30)
        deadline = time.monotonic() + 5
        while alive(family) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(family), f"still running after 5 s: {sorted(alive(family))}"
    finally:
        try:
            os.killpg(command.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def folder_state(out: Path) -> dict[str, bytes]:
    """The folder's files, checked against its marker: complete or not at all."""
    marker = json.loads((out / MARKER).read_text())
    entries = sorted(p.name for p in out.iterdir() if p.name != MARKER)
    assert entries == sorted(marker["files"]), "the folder holds a mix"
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != MARKER}


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["run", MINIMAL, "--agents"],
    ["compare", MINIMAL, "--variant", "three", "touch_policy.one_to_one.per_week=3"],
])
def test_kill_9_while_writing_leaves_the_old_or_the_new_folder(tmp_path, command):
    out = tmp_path / "out"
    assert cli.main([*command, "--reps", "2", "--quiet", "--out", str(out)]) == cliutil.OK
    old = folder_state(out)
    process = simdomain_process(*command, *SLOW_RUN, "--out", str(out))
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.staging-*")) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    process.kill()  # SIGKILL, while the new folder is staged (or just after)
    process.communicate(timeout=30)
    state = folder_state(out)  # complete: the old outputs, or (killed after the swap) the new
    assert state == old or process.returncode in (0, -signal.SIGKILL)
    assert cli.main([*command, "--reps", "2", "--seed", "1", "--quiet", "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # leftovers cleaned


@pytest.mark.slow
def test_two_runs_into_one_folder_never_mix(tmp_path):
    out = tmp_path / "out"
    first = simdomain_process("run", MINIMAL, *SLOW_RUN, "--agents", "--out", str(out))
    second = simdomain_process("run", MINIMAL, *SLOW_RUN, "--seed", "5", "--out", str(out))
    results = [(p.pid, p.wait(timeout=120), p.communicate()[1]) for p in (first, second)]
    codes = sorted(code for _, code, _ in results)
    assert codes in ([0, 0], [0, cliutil.BAD_INPUT]), results
    for pid, code, err in results:
        if code == cliutil.BAD_INPUT:
            other = first.pid if pid == second.pid else second.pid
            assert f"pid {other}" in err and "being written" in err, err
    folder_state(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.slow
def test_a_second_experiment_into_a_folder_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "exp"
    first = simdomain_process("experiment", str(FIXTURES / "experiment_resume.yaml"),
                              "--workers", "1", "--checkpoint", "0.2", "--quiet",
                              "--out", str(out))
    deadline = time.monotonic() + 60
    while not (out / "manifest.json").exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    code = cli.main(["experiment", str(FIXTURES / "experiment_resume.yaml"), "--workers", "1",
                     "--quiet", "--out", str(out)])
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    if code != cliutil.OK:  # refused while the first ran (else it found every run done)
        assert code == cliutil.BAD_INPUT
        assert f"pid {first.pid}" in capsys.readouterr().err
    runs = simdomain.load_results(out).runs
    assert len(runs) == 24 and runs["run"].is_unique
    pd.testing.assert_frame_equal(runs, runs.sort_values("run").reset_index(drop=True))


@pytest.mark.parametrize("delay", [0.4, 0.8])
def test_ctrl_c_while_loading_prints_no_traceback(delay):
    """Ctrl-C while the libraries load (Python's own start, the first ~0.1 s, is not ours)."""
    process = simdomain_process("validate", MINIMAL)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert process.returncode in (0, cliutil.INTERRUPTED, -signal.SIGINT), err


def test_an_import_error_from_ctrl_c_counts_as_ctrl_c():
    """Ctrl-C inside an extension module's start surfaces as ``ImportError:
    initialization failed`` with the KeyboardInterrupt in its chain: that is an
    interruption (exit 130, no traceback); other import errors are not."""
    from simdomain.__main__ import _interrupted

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ImportError("initialization failed")  # chained, as CPython does
    except ImportError as error:
        assert _interrupted(error)
    assert not _interrupted(ImportError("no module named x"))
