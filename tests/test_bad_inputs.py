"""The bad-input corpus: every command refuses each class of bad input the same way.

Each case writes its files into ``tmp_path`` and runs a command: it must exit 2, print
one line per problem naming the file or flag, print no traceback, and leave nothing in
``--out``. Most cases run in-process. Inputs whose failure would be a hang or a memory
blow-up (alias bombs, huge designs and expressions, dates centuries apart) run in one
child process with a timeout, which reports each case's time and peak memory: a
refusal must take under 10 s and 1 GB (the bounds of the hardening issue; a refusal
takes milliseconds, the bounds only catch a hang or a blow-up).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from simdomain import cli
from simdomain.cliutil import BAD_INPUT, OK
from simdomain.errors import InputError
from simdomain.planner.milp import available_solvers

FIXTURES = Path(__file__).parent / "fixtures"
MINIMAL = FIXTURES / "minimal.yaml"
BASE_TEXT = MINIMAL.read_text(encoding="utf-8")


# -- inputs ---------------------------------------------------------------------------------
def scenario(changes: dict[str, Any] | None = None) -> str:
    """The minimal scenario with each dotted path of ``changes`` set, as YAML text."""
    raw = yaml.safe_load(BASE_TEXT)
    for path, value in (changes or {}).items():
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[last] = value
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def experiment(base: str, **changes: Any) -> str:
    spec = {"name": "bad", "scenario": base,
            "factors": [{"path": "touch_policy.one_to_one.per_week", "values": [1, 2]}],
            "replications": 1, "outcomes": [{"name": "members", "kpi": "new_members"}]}
    spec.update(changes)
    return yaml.safe_dump(spec, sort_keys=False)


def alias_bomb() -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return BASE_TEXT.replace("name: minimal", "name: minimal\n" + "\n".join(lines)) \
        .replace("description", "x") + "description: *l9\n"


def duplicate_key() -> tuple[str, int, int]:
    """The scenario with ``monthly_spend_cny`` given twice, and the two line numbers."""
    lines = BASE_TEXT.splitlines()
    first = next(i for i, line in enumerate(lines) if "monthly_spend_cny" in line)
    lines.insert(first + 2, "    monthly_spend_cny: 20000")
    return "\n".join(lines) + "\n", first + 1, first + 3


def many_channels(count: int, days: int) -> str:
    raw = yaml.safe_load(BASE_TEXT)
    sms = {**raw["channels"]["sms"], "monthly_spend_cny": 100}
    raw["channels"] = {f"ch{i}": sms for i in range(count)}
    raw["horizon_days"] = days
    return yaml.safe_dump(raw, sort_keys=False)


def orders(rows: list[tuple[str, str, float]]) -> str:
    return "customer_id,date,amount\n" + "".join(f"{c},{d},{a}\n" for c, d, a in rows)


def days_apart(first: str, count: int = 60) -> str:
    """``count`` customers ordering in March 2027, and one who ordered on ``first``."""
    rows = [(f"c{i}", f"2027-03-{i % 28 + 1:02d}", 10.0 + i) for i in range(count)]
    return orders([("old", first, 5.0), *rows])


DUPLICATE, DUP_FIRST, DUP_SECOND = duplicate_key()
LATIN1 = BASE_TEXT.replace("name: minimal",
                          'name: minimal\ndescription: "café crème, déjà vu"').encode("latin-1")
CHINESE = BASE_TEXT.replace("name: minimal", 'name: minimal\ndescription: "私域 企微活码"') \
    .replace("  sms:", "  短信:")
RANDOM_BYTES = bytes(range(256)) * 8
DEEP = "name: x\nlists: " + "[" * 2000 + "]" * 2000 + "\n"
DEEP_BLOCK = "name: x\n" + "".join("  " * i + f"k{i}:\n" for i in range(80)) + "  " * 80 + "v: 1\n"

# Bad scenario files: (id, bytes, expected text in every message).
BAD_SCENARIOS: list[tuple[str, bytes, str]] = [
    ("latin-1", LATIN1, "cannot read the file as text"),
    ("random-bytes", RANDOM_BYTES, "cannot read the file as text"),
    ("empty", b"", "expected a mapping of fields"),
    ("not-a-mapping", b"- a\n- b\n", "expected a mapping of fields"),
    ("deep-flow-nesting", DEEP.encode(), "nest"),
    ("deep-block-nesting", DEEP_BLOCK.encode(), "deeper than the limit of 50 levels"),
    ("duplicate-key", DUPLICATE.encode(),
     f"key 'monthly_spend_cny' appears twice (lines {DUP_FIRST} and {DUP_SECOND})"),
    ("self-alias", (BASE_TEXT + "x: &a [*a]\n").encode(), "refers to the value that contains it"),
    ("huge-integer-literal", (BASE_TEXT + "x: " + "9" * 5000 + "\n").encode(), "too many digits"),
    ("inf-spend", scenario({"channels.sms.monthly_spend_cny": math.inf}).encode(), "finite"),
    ("nan-rate", scenario({"lifecycle.join": math.nan}).encode(), "finite"),
    ("nan-in-a-list", scenario({"channels.sms.monthly_spend_cny": [1.0, math.nan]}).encode(),
     "finite"),
    ("1e308-order-value", scenario({"segments.mass.order_value_cny": 1e308}).encode(),
     "less than or equal"),
    ("1e308-budget", scenario({"budget.monthly_cny": 1e308}).encode(), "less than or equal"),
    ("pool-10**30", scenario({"initial_pool.fan": 10**30}).encode(), "less than or equal"),
    ("pool-10**9", scenario({"initial_pool.fan": 10**9}).encode(), "of memory"),
    ("tiny-cost-per-contact", scenario({"channels.sms.cost_per_contact_cny": 1e-300}).encode(),
     "greater than or equal to 0.001"),
    ("year-9999", scenario({"start_date": dt.date(9999, 1, 1)}).encode(), "supported window"),
    ("year-1500", scenario({"start_date": dt.date(1500, 1, 1)}).encode(), "supported window"),
    ("horizon-past-2100", scenario({"start_date": dt.date(2100, 12, 1), "campaigns": [],
                                    "targets": {}}).encode(), "supported window"),
    ("multiplier-1e300", scenario({"lifecycle.new_user_multiplier": 1e300}).encode(),
     "less than or equal"),
    ("300-segments", scenario({"segments": {f"s{i}": {"share": 1 / 300, "order_value_cny": 5}
                                            for i in range(300)}}).encode(), "at most 200"),
]


def scenario_commands(bad: Path, tmp: Path, out: Path) -> dict[str, list[str]]:
    """Every command reading ``bad`` as a scenario (the experiment through its base)."""
    (tmp / "exp.yaml").write_text(experiment(str(bad)), encoding="utf-8")
    return {
        "validate": ["validate", str(bad)],
        "run": ["run", str(bad), "--reps", "2", "--out", str(out)],
        "compare": ["compare", str(MINIMAL), str(bad), "--reps", "2", "--out", str(out)],
        "plan": ["plan", str(bad), "--out", str(out)],
        "fit": ["fit", str(bad), "--reps", "2", "--out", str(out)],
        "experiment": ["experiment", str(tmp / "exp.yaml"), "--workers", "1", "--out", str(out)],
    }


# -- running a command ----------------------------------------------------------------------
def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(code: int, err: str, expected: str, names: str, out: Path | None) -> None:
    """Exit 2, each problem on one line naming ``names``, no traceback, nothing written."""
    assert code == BAD_INPUT, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if lines and lines[-1].startswith("simdomain") and ": error: argument" in lines[-1]:
        lines = lines[-1:]  # argparse: a usage line, then the error
    assert lines, "no message"
    assert all(names in line for line in lines), err
    assert expected in err, err
    assert len(err) < 2000, err  # a message, not a dump of the input
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


# -- bad scenario files in every command ----------------------------------------------------
@pytest.mark.parametrize("command", ["validate", "run", "compare", "plan", "fit", "experiment"])
@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in BAD_SCENARIOS],
                         ids=[case[0] for case in BAD_SCENARIOS])
def test_bad_scenario_files_are_refused_by_every_command(tmp_path, capsys, command, data,
                                                         expected):
    bad, out = tmp_path / "bad.yaml", tmp_path / "out"
    bad.write_bytes(data)
    argv = scenario_commands(bad, tmp_path, out)[command]
    code, _, err = call(argv, capsys)
    assert_refused(code, err, expected, str(bad), out)


@pytest.mark.parametrize(("data", "channel"), [
    (CHINESE.encode("utf-16"), "短信"),
    (CHINESE.encode("gbk"), "短信"),
    (CHINESE.encode("utf-8-sig"), "短信"),
], ids=["utf-16-bom", "gbk", "utf-8-bom"])
def test_files_saved_by_chinese_spreadsheet_tools_are_read(tmp_path, capsys, data, channel):
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    code, out, err = call(["validate", str(path)], capsys)
    assert code == OK and f"{path}: ok" in out, err
    from simdomain.scenario import load_scenario
    assert channel in load_scenario(path).channels


# -- the same rules through --set -----------------------------------------------------------
SET_CASES = [
    ("channels.sms.monthly_spend_cny=.inf", "finite"),
    ("channels.sms.monthly_spend_cny=.nan", "finite"),
    ("lifecycle.join=nan", "finite"),
    ("segments.mass.order_value_cny=1e308", "less than or equal"),
    ("channels.sms.monthly_spend_cny=1.0e+308", "less than or equal"),
    ("initial_pool.fan=" + "1" + "0" * 30, "less than or equal"),
    ("initial_pool.fan=1000000000", "of memory"),
    ("channels.sms.cost_per_contact_cny=1e-300", "greater than or equal"),
    ("start_date=9999-01-01", "supported window"),
    ("initial_pool.fan=" + "9" * 5000, "too many digits"),
    ("name=[" + "[" * 100 + "]" * 100 + "]", "nested deeper"),
]


@pytest.mark.parametrize("command", ["run", "compare", "plan", "fit"])
@pytest.mark.parametrize(("setting", "expected"), SET_CASES, ids=[c[0][:40] for c in SET_CASES])
def test_bad_set_values_are_refused(tmp_path, capsys, command, setting, expected):
    out = tmp_path / "out"
    reps = [] if command == "plan" else ["--reps", "2"]
    argv = [command, str(MINIMAL), "--set", setting, *reps, "--out", str(out)]
    code, _, err = call(argv, capsys)
    assert_refused(code, err, expected, "--set", out)


@pytest.mark.parametrize(("setting", "expected"), SET_CASES[:4] + SET_CASES[-2:],
                         ids=[c[0][:40] for c in SET_CASES[:4] + SET_CASES[-2:]])
def test_bad_compare_variants_are_refused(tmp_path, capsys, setting, expected):
    out = tmp_path / "out"
    argv = ["compare", str(MINIMAL), "--variant", "v", setting, "--reps", "2", "--out", str(out)]
    code, _, err = call(argv, capsys)
    assert_refused(code, err, expected, "--set " + setting.partition("=")[0], out)


def test_validate_says_ok_only_for_what_run_can_run(tmp_path, capsys):
    """The memory estimate refuses in validate what run could not hold."""
    path = tmp_path / "big.yaml"
    path.write_text(scenario({"initial_pool.fan": 10**9}), encoding="utf-8")
    code, out, err = call(["validate", str(path)], capsys)
    assert code == BAD_INPUT and "ok" not in out
    assert "would hold about 1e+09 people" in err and "bytes each" in err


def test_run_with_shards_counts_only_the_shards_this_machine_holds(tmp_path, capsys):
    """A population too big for this machine is refused by ``run --shards`` only for the
    shards its local workers hold at once; with a scheduler, the workers check their own
    shard (the client holds no one), so nothing is refused before the cluster is asked."""
    import argparse

    from simdomain.cliutil import memory_share
    from simdomain.scenario import load_scenario

    path = tmp_path / "big.yaml"
    path.write_text(scenario({"initial_pool.fan": 10**9}), encoding="utf-8")
    code, _, err = call(["run", str(path), "--shards", "4", "--workers", "2",
                         "--out", str(tmp_path / "out")], capsys)
    assert code == BAD_INPUT and "in the shards run at once (0.5 of the population)" in err
    assert not (tmp_path / "out").exists()
    one = argparse.Namespace(shards=4096, scheduler=None, workers=1)
    assert memory_share(one) == 1 / 4096
    remote = argparse.Namespace(shards=4, scheduler="tcp://127.0.0.1:8786", workers=None)
    assert memory_share(remote) == 0.0
    assert load_scenario(path, memory_share=0.0).initial_pool.fan == 10**9


# -- bad flag values ------------------------------------------------------------------------
FLAG_CASES: list[tuple[list[str], str]] = [
    (["run", "{s}", "--seed", "-1"], "--seed"),
    (["run", "{s}", "--seed", "1.5"], "--seed"),
    (["run", "{s}", "--seed", "1" + "0" * 30], "--seed"),
    (["run", "{s}", "--reps", "1000000000"], "--reps"),
    (["run", "{s}", "--reps", "0"], "--reps"),
    (["compare", "{s}", "{s}", "--reps", "nan"], "--reps"),
    (["fit", "{s}", "--seed", "-1"], "--seed"),
    (["experiment", "{e}", "--checkpoint", "0"], "--checkpoint"),
    (["experiment", "{e}", "--checkpoint", "nan"], "--checkpoint"),
    (["experiment", "{e}", "--checkpoint", "-1"], "--checkpoint"),
    (["experiment", "{e}", "--checkpoint", "inf"], "--checkpoint"),
    (["experiment", "{e}", "--workers", "0"], "--workers"),
    (["experiment", "{e}", "--workers", "100000"], "--workers"),
    (["plan", "{s}", "--budget", "inf"], "--budget"),
    (["plan", "{s}", "--budget", "nan"], "--budget"),
    (["plan", "{s}", "--budget", "-1"], "--budget"),
    (["plan", "{s}", "--monthly-budget", "1e308"], "--monthly-budget"),
    (["plan", "{s}", "--member-window", "1000000"], "--member-window"),
    (["plan", "{s}", "--member-window", "-1"], "--member-window"),
    (["plan", "{s}", "--verify", "0"], "--verify"),
    (["plan", "{s}", "--seed", "-1"], "--seed"),
    (["plan", "{s}", "--lock", "sms=inf"], "--lock"),
    (["plan", "{s}", "--lock", "sms=nan"], "--lock"),
]


@pytest.mark.parametrize(("argv", "flag"), FLAG_CASES,
                         ids=[" ".join([a[0], *a[2:]]) for a, _ in FLAG_CASES])
def test_bad_flag_values_exit_2_with_one_line(tmp_path, capsys, argv, flag):
    (tmp_path / "exp.yaml").write_text(experiment(str(MINIMAL)), encoding="utf-8")
    out = tmp_path / "out"
    argv = [a.format(s=MINIMAL, e=tmp_path / "exp.yaml") for a in argv] + ["--out", str(out)]
    code, _, err = call(argv, capsys)
    assert_refused(code, err, flag, flag, out)


@pytest.mark.skipif("highs" in available_solvers(), reason="highspy is installed here")
def test_a_missing_solver_says_how_to_install_it(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = call(["plan", str(MINIMAL), "--solver", "highs", "--out", str(out)], capsys)
    assert_refused(code, err, "pip install highspy", "--solver", out)


# -- experiment files -----------------------------------------------------------------------
RANGE = {"name": "a", "low": 0, "high": 1}
EXPERIMENT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("replications-10**9", {"replications": 10**9}, "simulations; the limit is 100,000"),
    ("seed-negative", {"seed": -1}, "greater than or equal to 0"),
    ("seed-10**30", {"seed": 10**30}, "less than or equal"),
    ("inf-range", {"factors": [{**RANGE, "high": math.inf}],
                   "design": {"kind": "latin_hypercube", "samples": 4}}, "finite"),
    ("derived-too-long", {"factors": [{**RANGE, "levels": 2}],
                          "derived": {"channels.sms.monthly_spend_cny": "1+" * 600 + "a"}},
     "the limit is 1,000"),
    ("derived-nested", {"factors": [{**RANGE, "levels": 2}],
                        "derived": {"channels.sms.monthly_spend_cny": "-" * 100 + "a"}},
     "nested 102 levels deep; the limit is 30"),
    ("derived-divides-by-zero", {"factors": [{**RANGE, "levels": 2}],
                                 "derived": {"channels.sms.monthly_spend_cny": "1 / a"}},
     "divides by zero"),
    ("set-inf", {"set": {"channels.sms.monthly_spend_cny": math.inf}}, "finite"),
    ("morris-levels-10**9", {"factors": [RANGE], "design": {"kind": "morris", "samples": 4,
                                                            "levels": 10**9}},
     "less than or equal to 100"),
]


@pytest.mark.parametrize(("changes", "expected"), [c[1:] for c in EXPERIMENT_CASES],
                         ids=[c[0] for c in EXPERIMENT_CASES])
def test_bad_experiment_files_are_refused_before_any_run(tmp_path, capsys, changes, expected):
    path, out = tmp_path / "exp.yaml", tmp_path / "out"
    path.write_text(experiment(str(MINIMAL), **changes), encoding="utf-8")
    code, _, err = call(["experiment", str(path), "--workers", "1", "--out", str(out)], capsys)
    assert_refused(code, err, expected, str(path), out)


# -- order logs -----------------------------------------------------------------------------
TRANSACTION_CASES: list[tuple[str, bytes, str]] = [
    ("one-row", orders([("a", "2027-01-01", 10)]).encode(), "too little data to fit"),
    ("two-rows", orders([("a", "2027-01-01", 10), ("b", "2027-02-01", 20)]).encode(),
     "too little data to fit: 2 customers with 2 orders over 31 days"),
    ("all-on-one-day", orders([(f"c{i}", "2027-03-01", 10) for i in range(200)]).encode(),
     "over 0 days"),
    ("random-bytes", RANDOM_BYTES, "cannot read"),
    ("latin-1", "customer_id,date,amount\ncafé,2027-01-01,5\nçà,2027-01-02,5\n"
     .encode("latin-1"), "cannot read"),
    ("header-only", b"customer_id,date,amount\n", "has a header but no orders"),
    ("inf-amount", orders([("a", "2027-01-01", math.inf)]).encode(), "must be 0 or more"),
]


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in TRANSACTION_CASES],
                         ids=[c[0] for c in TRANSACTION_CASES])
def test_bad_order_logs_are_refused(tmp_path, capsys, data, expected):
    path, out = tmp_path / "orders.csv", tmp_path / "out"
    path.write_bytes(data)
    code, _, err = call(["fit", "--transactions", str(path), "--out", str(out)], capsys)
    assert_refused(code, err, expected, str(path), out)


# -- resource bombs, in a child process with a timeout --------------------------------------
CHILD = r"""
import contextlib, io, json, resource, sys, time
from simdomain.cli import main
for line in sys.stdin:
    case = json.loads(line)
    err = io.StringIO()
    print(json.dumps({"id": case["id"], "started": True}), flush=True)
    start = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(case["argv"])
        except SystemExit as exc:
            code = exc.code
    print(json.dumps({"id": case["id"], "code": code, "err": err.getvalue(),
                      "seconds": time.perf_counter() - start,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
          flush=True)
"""

SET_BOMB = "name=[&a [1,1,1,1,1,1,1,1,1,1], " + ", ".join(
    f"&{b} [{','.join([f'*{a}'] * 10)}]" for a, b in zip("abcd", "bcde", strict=True)
) + ", [*e" + ",*e" * 9 + "]]"  # 10**6 values from 60
# (id, files to write, argv, expected text, file every message names)
Bomb = tuple[str, dict[str, str], list[str], str, str]
BOMBS: list[Bomb] = [
    ("alias-bomb-validate", {"bomb.yaml": alias_bomb()}, ["validate", "{d}/bomb.yaml"],
     "more than the limit of 100,000 values", "bomb.yaml"),
    ("alias-bomb-run", {"bomb.yaml": alias_bomb()}, ["run", "{d}/bomb.yaml", "--out", "{o}"],
     "alias bomb", "bomb.yaml"),
    ("alias-bomb-experiment", {"bomb.yaml": alias_bomb(), "e.yaml": experiment("bomb.yaml")},
     ["experiment", "{d}/e.yaml", "--out", "{o}"], "alias bomb", "bomb.yaml"),
    ("alias-bomb-set", {}, ["run", str(MINIMAL), "--set", SET_BOMB, "--out", "{o}"],
     "alias bomb", "--set"),
    ("derived-9**9**9", {"e.yaml": experiment(str(MINIMAL), factors=[{**RANGE, "levels": 2}],
                                              derived={"channels.sms.monthly_spend_cny":
                                                       "9**9**9 + a"})},
     ["experiment", "{d}/e.yaml", "--out", "{o}"], "exponent 387,420,489", "e.yaml"),
    ("grid-10**4-x-10**4", {"e.yaml": experiment(str(MINIMAL), factors=[
        {**RANGE, "levels": 10**4}, {**RANGE, "name": "b", "levels": 10**4}])},
     ["experiment", "{d}/e.yaml", "--force", "--out", "{o}"],
     "100,000,000 runs; the limit is 1,000,000", "e.yaml"),
    ("lhs-10**9", {"e.yaml": experiment(str(MINIMAL), factors=[RANGE], design={
        "kind": "latin_hypercube", "samples": 10**9})},
     ["experiment", "{d}/e.yaml", "--out", "{o}"], "1,000,000,000 runs", "e.yaml"),
    ("sobol-2**30", {"e.yaml": experiment(str(MINIMAL), factors=[RANGE, {**RANGE, "name": "b"}],
                                          design={"kind": "sobol_sensitivity",
                                                  "samples": 2**30})},
     ["experiment", "{d}/e.yaml", "--out", "{o}"], "4,294,967,296 runs", "e.yaml"),
    ("lhs-200k-without-force", {"e.yaml": experiment(str(MINIMAL), factors=[RANGE], design={
        "kind": "latin_hypercube", "samples": 200_000})},
     ["experiment", "{d}/e.yaml", "--out", "{o}"], "(pass --force if you mean it)", "e.yaml"),
    ("plan-40-channels-10-years", {"p.yaml": many_channels(40, 3650)},
     ["plan", "{d}/p.yaml", "--out", "{o}"],
     "40 channels x 120 months x 24 breakpoints = 115,200 spend pieces", "p.yaml"),
    ("orders-year-1500", {"o.csv": days_apart("1500-01-01")},
     ["fit", "--transactions", "{d}/o.csv", "--out", "{o}"], "outside the supported window",
     "o.csv"),
    ("orders-year-2600", {"o.csv": days_apart("2600-01-01")},
     ["fit", "--transactions", "{d}/o.csv", "--out", "{o}"], "outside the supported window",
     "o.csv"),
    ("orders-over-eleven-years", {"o.csv": days_apart("2016-01-01")},
     ["fit", "--transactions", "{d}/o.csv", "--out", "{o}"], "the limit is 3,660", "o.csv"),
]


@pytest.fixture(scope="module")
def bomb_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run every bomb in one child process (one start-up), with an overall timeout."""
    root = tmp_path_factory.mktemp("bombs")
    lines = []
    for name, files, argv, *_ in BOMBS:
        folder = root / name
        folder.mkdir()
        for file, text in files.items():
            (folder / file).write_text(text, encoding="utf-8")
        argv = [a.format(d=folder, o=folder / "out") for a in argv]
        lines.append(json.dumps({"id": name, "argv": argv}))
    env = {**os.environ, "SIMDOMAIN_DEBUG": "1"}  # a traceback, if any, is then visible
    try:
        done = subprocess.run([sys.executable, "-c", CHILD], check=False,
                              input="\n".join(lines) + "\n", capture_output=True, text=True,
                              timeout=60 + 10 * len(BOMBS), env=env, cwd=root)
        stdout = done.stdout
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
    results: dict[str, dict[str, Any]] = {}
    for line in stdout.splitlines():
        record = json.loads(line)
        results.setdefault(record["id"], {}).update(record)
    return {"root": {"path": root}, **results}


@pytest.mark.parametrize(("name", "expected", "names"), [(b[0], b[3], b[4]) for b in BOMBS],
                         ids=[b[0] for b in BOMBS])
def test_resource_bombs_are_refused_fast_and_small(bomb_results, name, expected, names):
    result = bomb_results.get(name)
    assert result is not None and "code" in result, f"{name} hung or crashed: {result}"
    out = bomb_results["root"]["path"] / name / "out"
    assert_refused(result["code"], result["err"], expected, names, out)
    assert result["seconds"] < 10, result  # a refusal takes milliseconds; this catches a hang
    assert result["peak_mb"] < 1024, result  # the whole process, imports included


def test_force_lets_a_large_design_through_the_size_check(tmp_path):
    from simdomain.experiments.spec import load_experiment

    path = tmp_path / "e.yaml"
    path.write_text(experiment(str(MINIMAL), factors=[RANGE], replications=2, design={
        "kind": "latin_hypercube", "samples": 60_000}), encoding="utf-8")
    with pytest.raises(InputError, match="pass --force"):
        load_experiment(path)
    assert load_experiment(path, force=True).spec.runs == 60_000


@pytest.mark.parametrize(("data", "expected"), [
    (RANDOM_BYTES, "cannot read the file as text"),
    (b"channel,members_per_add\nsms,inf\n", "must be between 0 and 1"),
    (b"channel,value\nsms,0.3\n", "missing columns ['members_per_add']"),
], ids=["random-bytes", "inf", "wrong-columns"])
def test_bad_channel_value_tables_are_refused(tmp_path, capsys, data, expected):
    path, out = tmp_path / "values.csv", tmp_path / "out"
    path.write_bytes(data)
    argv = ["plan", str(MINIMAL), "--channel-values", str(path), "--out", str(out)]
    code, _, err = call(argv, capsys)
    assert_refused(code, err, expected, str(path), out)
