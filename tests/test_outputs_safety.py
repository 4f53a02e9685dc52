"""Output folders under bad input: exit 2, one clear line, no traceback, nothing written.

Every command that writes a folder (run, compare, plan, fit, experiment, report) is
driven through the CLI entry with ``--out`` values that cannot be output folders, user
names that would escape ``out/``, damaged folders and held locks.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.figure import Figure
from matplotlib.image import imread
from planner_cases import small_dict

from simdomain import cli, cliutil
from simdomain.outfolder import MARKER, OutputFolder, check_name, open_folder, slug
from simdomain.report import plots

FIXTURES = Path(__file__).parent / "fixtures"
MINIMAL = str(FIXTURES / "minimal.yaml")
TINY = str(FIXTURES / "experiment_tiny.yaml")
UNWRITABLE = "/sys/simdomain-test-out"  # refused even to root


def commands(tmp: Path) -> dict[str, list[str]]:
    """Each writing command, quick, without ``--out``."""
    plan = tmp / "small.yaml"
    if not plan.exists():
        plan.write_text(yaml.safe_dump(small_dict(), sort_keys=False))
    return {
        "run": ["run", MINIMAL, "--reps", "2", "--quiet"],
        "compare": ["compare", MINIMAL, "--variant", "three",
                    "touch_policy.one_to_one.per_week=3", "--reps", "2", "--quiet"],
        "plan": ["plan", str(plan), "--quiet"],
        "fit": ["fit", MINIMAL, "--reps", "1", "--days", "29", "--estimator", "logistic",
                "--quiet"],
        "experiment": ["experiment", TINY, "--workers", "1", "--quiet"],
    }


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def one_clear_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def a_file(tmp: Path, *below: str) -> str:
    (tmp / "afile").write_text("x")
    return str(tmp.joinpath("afile", *below))


BAD_OUTS = {
    "a file": (a_file, "is a file"),
    "below a file": (lambda t: a_file(t, "a", "b"), "is below"),
    "unwritable": (lambda t: UNWRITABLE, "cannot write here"),
    "NUL": (lambda t: str(t / "a\x00b"), "NUL"),
    "the working folder": (lambda t: ".", "working folder"),
    "empty": (lambda t: "", "is empty"),
}


@pytest.mark.parametrize("case", BAD_OUTS)
@pytest.mark.parametrize("command", ["run", "compare", "plan", "fit", "experiment"])
def test_bad_out_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch,
                                                          command, case):
    argv = commands(tmp_path)[command]
    make, message = BAD_OUTS[case]
    out = make(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert cli.main([*argv, "--out", out]) == cliutil.BAD_INPUT
    assert message in one_clear_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", ["run", "experiment"])
def test_a_read_only_folder_is_refused(tmp_path, capsys, command):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        out = locked / "out" if command == "run" else locked
        assert cli.main([*commands(tmp_path)[command], "--out", str(out)]) == cliutil.BAD_INPUT
        assert "cannot write here" in one_clear_line(capsys.readouterr().err)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("case", ["a file", "below a file", "unwritable", "empty"])
def test_report_on_a_path_that_is_no_folder(tmp_path, capsys, case):
    folder = BAD_OUTS[case][0](tmp_path)
    before = snapshot(tmp_path)
    assert cli.main(["report", folder]) == cliutil.BAD_INPUT
    one_clear_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["run", "compare", "plan", "fit"])
def test_a_folder_with_the_users_files_is_not_replaced(tmp_path, capsys, command):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main([*commands(tmp_path)[command], "--out", str(out)]) == cliutil.BAD_INPUT
    assert "notes.txt" in one_clear_line(capsys.readouterr().err)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_experiment_refuses_a_folder_of_other_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main([*commands(tmp_path)["run"], "--out", str(out)]) == cliutil.OK
    before = snapshot(tmp_path)
    assert cli.main([*commands(tmp_path)["experiment"], "--out", str(out)]) == cliutil.BAD_INPUT
    assert "not an experiment's results" in one_clear_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


# -- user names that become paths -------------------------------------------------------

def scenario_named(tmp: Path, name: str) -> str:
    raw = yaml.safe_load(Path(MINIMAL).read_text())
    raw["name"] = name
    path = tmp / "named.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return str(path)


BAD_NAMES = ["..", ".", "../../escaped", "a/b", "a\\b", "x\x00y", "line\nbreak", "n" * 300, " "]


@pytest.mark.parametrize("command, name", [
    *[("run", name) for name in BAD_NAMES],
    *[(command, name) for command in ("compare", "plan", "fit") for name in ("..", "a/b")],
])
def test_a_scenario_name_never_escapes_out(tmp_path, capsys, monkeypatch, name, command):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = commands(tmp_path)[command]
    argv[1] = scenario_named(tmp_path, name)
    before = snapshot(tmp_path)
    assert cli.main(argv) == cliutil.BAD_INPUT
    one_clear_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


def test_an_experiment_name_never_escapes_out(tmp_path, capsys, monkeypatch):
    raw = yaml.safe_load(Path(TINY).read_text())
    raw.update(name="../../escaped", scenario=MINIMAL)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)
    assert cli.main(["experiment", str(path), "--workers", "1", "--quiet"]) == cliutil.BAD_INPUT
    one_clear_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


def test_a_chinese_name_with_spaces_makes_its_folder_under_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = commands(tmp_path)["run"]
    argv[1] = scenario_named(tmp_path, "春季 拉新")
    assert cli.main(argv) == cliutil.OK
    assert (tmp_path / "out" / "春季 拉新" / "summary.json").is_file()


def test_variant_names_stay_inside_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "what-if"
    outside = snapshot(tmp_path)
    code = cli.main(["compare", MINIMAL, "--variant", "../../evil",
                     "touch_policy.one_to_one.per_week=3", "--variant", "企微 x/..",
                     "touch_policy.one_to_one.per_week=1", "--reps", "2", "--quiet",
                     "--out", str(out)])
    assert code == cliutil.OK
    added = snapshot(tmp_path) - outside
    assert all(p.startswith("what-if") for p in added), added
    variants = sorted(p.name for p in (out / "variants").iterdir())
    assert len(variants) == 3 and all("/" not in v and ".." not in v for v in variants)
    assert any("企微" in v for v in variants)


def test_slug_and_check_name():
    assert slug("new_members") == "new_members"
    assert slug("包裹卡") == "包裹卡"
    for text in ["..", ".", "a/b", "a\x00b", "", "x" * 300, "touch_policy.per_week"]:
        made = slug(text)
        assert made and made not in {".", ".."} and "/" not in made and "\x00" not in made
        assert "." not in made and len(made) <= 60
    assert slug("a/b") != slug("a_b")  # distinct names stay distinct
    assert check_name("春季 拉新") == "春季 拉新"
    with pytest.raises(cli.InputError):
        check_name("..")


# -- one run's outputs per folder -------------------------------------------------------

def test_a_later_run_leaves_no_stale_agents_file(tmp_path):
    out = tmp_path / "run"
    argv = [*commands(tmp_path)["run"], "--out", str(out)]
    assert cli.main([*argv, "--agents"]) == cliutil.OK
    assert (out / "agents.parquet").exists()
    assert cli.main(argv) == cliutil.OK
    assert not (out / "agents.parquet").exists()
    marker = json.loads((out / MARKER).read_text())
    assert sorted(marker["files"]) == sorted(p.name for p in out.iterdir() if p.name != MARKER)


def test_a_compare_replaces_a_run_whole(tmp_path):
    out = tmp_path / "x"
    assert cli.main([*commands(tmp_path)["run"], "--out", str(out)]) == cliutil.OK
    assert cli.main([*commands(tmp_path)["compare"], "--out", str(out)]) == cliutil.OK
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "comparison.csv", "variants"])


def test_a_held_folder_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    holder = OutputFolder(out.resolve(), "test")
    holder._acquire()  # another open file: flock conflicts as with another process
    try:
        assert cli.main([*commands(tmp_path)["run"], "--out", str(out)]) == cliutil.BAD_INPUT
        line = one_clear_line(capsys.readouterr().err)
        assert str(out) in line and f"pid {os.getpid()}" in line
        assert not out.exists()
    finally:
        holder._release()
    assert cli.main([*commands(tmp_path)["run"], "--out", str(out)]) == cliutil.OK
    assert not list(tmp_path.glob(".run.lock"))


def test_a_lock_file_of_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "run"
    (tmp_path / ".run.lock").write_text("999999999\n")  # no flock held: its process is gone
    assert cli.main([*commands(tmp_path)["run"], "--out", str(out)]) == cliutil.OK
    assert (out / "summary.json").exists() and not (tmp_path / ".run.lock").exists()


def test_a_swap_cut_short_is_undone_by_the_next_writer(tmp_path):
    out = tmp_path / "run"
    assert cli.main([*commands(tmp_path)["run"], "--out", str(out)]) == cliutil.OK
    before = (out / "daily.csv").read_bytes()
    os.rename(out, tmp_path / ".run.old-123")  # killed between the two renames
    (tmp_path / ".run.staging-abc").mkdir()  # and a scratch folder left behind
    with open_folder(out, "test"):
        assert (out / "daily.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "small.yaml"]


def test_a_failed_command_leaves_the_old_folder(tmp_path, monkeypatch, capsys):
    out = tmp_path / "plan"
    argv = [*commands(tmp_path)["plan"], "--out", str(out)]
    cli.main(argv)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("pandas.DataFrame.to_excel", broken)
    assert cli.main(argv) == cliutil.INTERNAL_ERROR
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan", "small.yaml"]


# -- reports on damaged folders ---------------------------------------------------------

@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("made") / "run"
    assert cli.main(["run", MINIMAL, "--reps", "2", "--quiet", "--out", str(out)]) == 0
    return out


def damage(name: str, folder: Path) -> str:
    """Break ``folder`` as named; return the file the message must name."""
    if name == "empty summary.json":
        (folder / "summary.json").write_text("")
        return "summary.json"
    if name == "invalid summary.json":
        (folder / "summary.json").write_text("{not json")
        return "summary.json"
    if name == "summary.json a list":
        (folder / "summary.json").write_text("[1, 2]")
        return "summary.json"
    if name == "wrong columns":
        (folder / "daily.csv").write_text("a,b\n1,2\n")
        return "daily.csv"
    if name == "missing monthly.csv":
        (folder / "monthly.csv").unlink()
        return "monthly.csv"
    if name == "report.html a folder":
        (folder / "report.html").mkdir()
        return "report.html"
    if name == "missing plan.json":
        for file in folder.iterdir():
            file.unlink() if file.is_file() else None
        (folder / "plan.csv").write_text("channel,month,spend_cny,adds,staff_accounts\n")
        return "plan.json"
    if name == "empty manifest.json":
        (folder / "manifest.json").write_text("")
        return "manifest.json"
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["empty summary.json", "invalid summary.json",
                                  "summary.json a list", "wrong columns", "missing monthly.csv",
                                  "report.html a folder", "missing plan.json",
                                  "empty manifest.json"])
def test_report_on_a_damaged_folder_names_the_file(run_folder, tmp_path, capsys, name):
    folder = tmp_path / "copy"
    folder.mkdir()
    for file in run_folder.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    bad = damage(name, folder)
    before = snapshot(tmp_path)
    assert cli.main(["report", str(folder)]) == cliutil.BAD_INPUT
    assert bad in one_clear_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


def test_report_adds_to_the_folder_in_one_step(run_folder, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for file in run_folder.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "notes.txt").write_text("kept")
    assert cli.main(["report", str(folder)]) == cliutil.OK
    names = {p.name for p in folder.iterdir()}
    assert {"report.html", "figures", "notes.txt", "daily.csv"} <= names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]


# -- experiments: resume checks, exit codes ---------------------------------------------

def test_resume_refuses_a_damaged_part_or_manifest(tmp_path, capsys):
    out = tmp_path / "exp"
    argv = [*commands(tmp_path)["experiment"], "--out", str(out)]
    assert cli.main(argv) == cliutil.OK
    capsys.readouterr()
    part = min(out.glob("part-*.parquet"))
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    assert cli.main(argv) == cliutil.BAD_INPUT
    line = one_clear_line(capsys.readouterr().err)
    assert part.name in line and "--fresh" in line
    part.write_bytes(data)
    (out / "manifest.json").write_text('{"parts": ')
    assert cli.main(argv) == cliutil.BAD_INPUT
    line = one_clear_line(capsys.readouterr().err)
    assert "manifest.json" in line and "--fresh" in line
    assert cli.main([*argv, "--fresh"]) == cliutil.OK
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["parts"]) == {p.name for p in out.glob("part-*.parquet")}
    del manifest["parts"]  # a folder of a version without checksums: readable parts pass
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert cli.main(argv) == cliutil.OK
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["parts"]) == {p.name for p in out.glob("part-*.parquet")}


def test_an_experiment_whose_every_run_fails_exits_4(tmp_path, capsys, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr("simdomain.experiments.runner.simulate", failing)
    out = tmp_path / "exp"
    assert cli.main([*commands(tmp_path)["experiment"], "--out", str(out)]) == cliutil.ALL_FAILED
    err = capsys.readouterr().err
    assert "6 of 6 runs failed" in err and "every run failed" in err and "Traceback" not in err


def test_an_unreachable_scheduler_leaves_nothing(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("simdomain.workers.CONNECT_SECONDS", 1)
    out = tmp_path / "exp"
    before = snapshot(tmp_path)
    code = cli.main(["experiment", TINY, "--quiet", "--out", str(out),
                     "--scheduler", "tcp://127.0.0.1:9"])
    assert code == cliutil.BAD_INPUT
    assert "cannot connect" in one_clear_line(capsys.readouterr().err)
    assert snapshot(tmp_path) - {"small.yaml"} == before - {"small.yaml"}


def test_a_scheduler_that_is_no_address_is_refused_at_once(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["experiment", TINY, "--scheduler", "not an address"])
    assert exit_.value.code == cliutil.BAD_INPUT
    assert "not a scheduler address" in capsys.readouterr().err


# -- Chinese text in figures ------------------------------------------------------------

def render(text: str, family: str | None = None) -> np.ndarray:
    fig = Figure(figsize=(3, 1), dpi=100)
    fig.text(0.05, 0.3, text, fontsize=20, **({"family": family} if family else {}))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    buffer.seek(0)
    return imread(buffer)


def test_chinese_labels_are_drawn_not_boxes():
    if plots.cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: apt install fonts-noto-cjk)")
    with pytest.warns(UserWarning):  # a font lacking CJK draws the same box for every glyph
        boxes_a, boxes_b = render("企微活码", "DejaVu Sans"), render("包裹短信", "DejaVu Sans")
    assert np.array_equal(boxes_a, boxes_b)
    with plots.cjk_text():
        drawn_a, drawn_b = render("企微活码"), render("包裹短信")
    assert not np.array_equal(drawn_a, boxes_a)
    assert not np.array_equal(drawn_a, drawn_b)  # real glyphs differ from one another


def test_without_a_cjk_font_one_clear_warning(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    with pytest.warns(cli.SimdomainWarning, match="fonts-noto-cjk") as caught, plots.cjk_text():
        render("企微活码包裹卡")
    assert len([w for w in caught if "Glyph" in str(w.message)]) == 0
    assert len(caught) == 1
