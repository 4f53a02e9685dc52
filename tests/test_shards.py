"""A population split by person into shards: the scenario rule, the seeds, the merge, and
agreement with the unsharded run (seeded; tolerances from the replications' variance)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import FIXTURES, build, zero_lifecycle
from planner_cases import small, small_dict
from scipy import stats

from simdomain import shards as sharding
from simdomain import simulation
from simdomain.cli import main
from simdomain.cliutil import BAD_INPUT, INTERRUPTED, OK
from simdomain.kpi import horizon_kpis
from simdomain.planner import PlanOptions, plan, verify
from simdomain.scenario import load_scenario
from simdomain.scenario.io import validate_scenario
from simdomain.shards import part, shard_scenario, shard_twin
from simdomain.simulation import SimulationResult, simulate
from simdomain.workers import DaskCluster, InProcess

FRAMES = ("daily", "channels", "monthly", "targets", "agents", "orders", "snapshots")


def assert_same(a: SimulationResult, b: SimulationResult) -> None:
    for name in FRAMES:
        left, right = getattr(a, name), getattr(b, name)
        assert (left is None) == (right is None), name
        if left is not None:
            pd.testing.assert_frame_equal(left, right, check_exact=True, obj=name)
    assert a.draws == b.draws


def costly() -> dict:
    """Every extensive quantity a shard divides: spend by month, contact capacity,
    saturation, staff with a cost, fixed cost, free adds, a campaign's cost, the initial
    pool, the referral market and the budget."""
    return {
        "horizon_days": 59,
        "initial_pool": {"fan": 1001, "customer": 203, "member": 97, "koc": 11},
        "channels": {
            "sms": {"monthly_spend_cny": [10000, 4000], "cost_per_contact_cny": 0.05,
                    "funnel": {"click": 0.03, "add": 0.2}, "max_contacts_per_month": 250001,
                    "saturation_contacts": 500000, "fixed_cost_cny": 700,
                    "staff": {"accounts": 3, "adds_per_account_per_day": 33.5,
                              "monthly_cost_per_account_cny": 2000},
                    "free_adds_per_month": 90, "carryover": 0.3, "carried_contacts": 1000},
        },
        "referral": {"addressable_market": 50003, "external_rate": 0.0001,
                     "word_of_mouth": {"member": 0.02, "koc": 0.2}},
        "campaigns": [{"name": "sale", "start": "2026-01-10", "days": 3, "cost_cny": 999}],
        "budget": {"monthly_cny": 20000},
        "lifecycle": zero_lifecycle(first_order=0.02, repeat_order=0.01, join=0.01,
                                    deletion={"fan": 0.003, "customer": 0.002,
                                              "member": 0.001, "koc": 0.0005}),
    }


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_the_shards_of_a_scenario_add_up_to_it(shards):
    whole = build(**costly())
    parts = [shard_scenario(whole, s, shards) for s in range(shards)]
    for stage in ("fan", "customer", "member", "koc"):  # whole people, adding up
        assert sum(getattr(p.initial_pool, stage) for p in parts) == getattr(whole.initial_pool,
                                                                               stage)
    sms = whole.channels["sms"]
    pieces = [p.channels["sms"] for p in parts]
    assert sum(p.staff.daily_capacity for p in pieces) == sms.staff.daily_capacity == 100
    assert sum(p.max_contacts_per_month for p in pieces) == sms.max_contacts_per_month
    assert sum(p.referral.addressable_market for p in parts) == whole.referral.addressable_market
    for month in range(2):
        spend = sms.spend_in_month(month)
        assert math.fsum(p.spend_in_month(month) for p in pieces) == pytest.approx(spend, 1e-12)
        # a month's charges besides contacts: fixed cost and the staff accounts
        charged = sms.fixed_cost_cny + sms.staff.accounts * sms.staff.monthly_cost_per_account_cny
        assert math.fsum(p.fixed_cost_cny + p.staff.accounts * p.staff.monthly_cost_per_account_cny
                         for p in pieces) == pytest.approx(charged, rel=1e-12)
        # saturation scales exactly: S/N (1 - exp(-(c/N) / (S/N))) = (1/N) S (1 - exp(-c/S))
        # (contact capacity does not bind here)
        assert math.fsum(shard.expected_monthly_adds("sms", p.spend_in_month(month))
                         for shard, p in zip(parts, pieces)) == pytest.approx(
            whole.expected_monthly_adds("sms", spend), rel=1e-12)
    assert math.fsum(p.free_adds_per_month for p in pieces) == pytest.approx(90, rel=1e-12)
    assert math.fsum(p.carried_contacts for p in pieces) == pytest.approx(1000, rel=1e-12)
    assert math.fsum(p.campaigns[0].cost_cny for p in parts) == pytest.approx(999, rel=1e-12)
    assert math.fsum(p.budget.monthly_cny for p in parts) == pytest.approx(20000, rel=1e-12)
    for p in parts:  # intensive quantities are kept: rates, prices, per-person word of mouth
        assert p.lifecycle == whole.lifecycle and p.segments == whole.segments
        assert p.channels["sms"].cost_per_contact_cny == sms.cost_per_contact_cny
        assert p.channels["sms"].add_rate == sms.add_rate
        assert p.referral.word_of_mouth == whole.referral.word_of_mouth
        assert p.targets == whole.targets and p.touch_policy == whole.touch_policy
        # W / M per person: a shard holds ~1/N of the word of mouth and of the market
        assert p.referral.addressable_market * shards == pytest.approx(
            whole.referral.addressable_market, abs=shards)
    assert shard_scenario(whole, 0, 1) is whole


def test_parts_add_up_and_follow_rows_mod_n():
    for total in (0, 1, 5, 101):
        for shards in (1, 2, 3, 8):
            counts = [part(total, s, shards) for s in range(shards)]
            assert sum(counts) == total
            assert counts == [len(range(s, total, shards)) for s in range(shards)]


@pytest.fixture(scope="module")
def minimal():
    return load_scenario(FIXTURES / "minimal.yaml")


KEEP = {"keep_agents": True, "keep_orders": True, "observe_days": (20, 45)}


def test_one_shard_is_the_unsharded_run(minimal):
    alone = simulate(minimal, seed=5, reps=2, **KEEP)
    sharded = simulate(minimal, seed=5, reps=2, shards=1, cluster=InProcess(), **KEEP)
    assert_same(alone, sharded)


def test_same_seed_and_shards_give_the_same_outputs_on_any_workers(minimal):
    """Two shards in this process, and on a Dask cluster of two workers (each task
    depends only on the seed, the replication, the shard and the shard count)."""
    distributed = pytest.importorskip("distributed")
    here = simulate(minimal, seed=5, reps=2, shards=2, **KEEP)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local:
        cluster = DaskCluster(local.scheduler_address)
        try:
            there = simulate(minimal, seed=5, reps=2, shards=2, cluster=cluster, **KEEP)
        finally:
            cluster.close()
    assert_same(here, there)
    assert here.shards == 2 and here.summary()["shards"] == 2
    other = simulate(minimal, seed=6, reps=2, shards=2, keep_agents=False)
    assert not other.daily.equals(here.daily)


def test_merged_people_are_consistent(minimal):
    result = simulate(minimal, seed=2, reps=2, shards=3, **KEEP)
    daily, agents = result.daily, result.agents
    for rep, people in agents.groupby("rep"):
        last = daily[daily["rep"] == rep].iloc[-1]
        assert (people["agent"].to_numpy() == np.arange(len(people))).all()  # unique ids
        assert len(people) == last[["fan", "customer", "member", "koc", "deleted"]].sum()
        assert (people["stage"] != "deleted").sum() == last["pool"]
        referred = people[people["referrer"] >= 0]
        assert len(referred) > 0 and referred["referrer"].lt(len(people)).all()
        # referrers are people of the same shard who joined before their invitees
        referrers = people.set_index("agent").loc[referred["referrer"]]
        assert (referrers["join_day"].to_numpy() <= referred["join_day"].to_numpy()).all()
        orders = result.orders[result.orders["rep"] == rep]
        counted = orders.groupby("agent").size().reindex(people["agent"], fill_value=0)
        assert (counted.to_numpy() == people["orders"].to_numpy()).all()
        assert orders["day"].is_monotonic_increasing
        snaps = result.snapshots[result.snapshots["rep"] == rep]
        on_day = snaps[snaps["day"] == 45]
        day45 = daily[(daily["rep"] == rep) & (daily["day"] == 45)].iloc[0]
        assert (on_day["stage"] != "deleted").sum() == day45["pool"]
    assert (daily.groupby("rep")["new_adds"].sum().to_numpy()
            == agents[agents["join_day"] >= 0].groupby("rep").size().to_numpy()).all()


HORIZON_KPIS = ("new_adds", "referral_adds", "new_members", "deletions", "orders", "gmv_cny",
                "spend_cny", "pool_size")


def welch_outliers(a: pd.DataFrame, b: pd.DataFrame, kpis: tuple[str, ...],
                   alpha: float) -> list[str]:
    """KPIs whose means over replications differ by more than Welch's two-sided bound at
    ``alpha / len(kpis)`` each (Bonferroni: all hold at once with probability >= 1 - alpha
    when the shard counts agree in distribution)."""
    far = []
    for kpi in kpis:
        x = a.loc[a["kpi"] == kpi, "value"].to_numpy(float)
        y = b.loc[b["kpi"] == kpi, "value"].to_numpy(float)
        vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        se = math.sqrt(vx + vy)
        dof = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1)) if se else 1
        bound = stats.t.ppf(1 - alpha / len(kpis) / 2, dof) * se
        if abs(x.mean() - y.mean()) > bound + 1e-9 * abs(x.mean()):
            far.append(f"{kpi}: {x.mean():.6g} vs {y.mean():.6g} (bound {bound:.3g})")
    return far


def test_shard_counts_agree_within_replication_noise(minimal):
    """One shard against four over 8 replications each: every horizon KPI's mean within
    Welch's bound at 1% overall (the streams differ, so the runs are independent)."""
    one = horizon_kpis(simulate(minimal, seed=11, reps=8, keep_agents=False).monthly)
    four = horizon_kpis(simulate(minimal, seed=11, reps=8, shards=4, keep_agents=False).monthly)
    assert not welch_outliers(one, four, HORIZON_KPIS, alpha=0.01)


@pytest.mark.slow
def test_shard_counts_agree_at_scale():
    """A larger world with every mechanism on: 1, 2 and 8 shards over 40 replications,
    every horizon KPI's mean within Welch's bound at 1% overall. Staff capacity does not
    bind here (its clipping per shard is the rule's known approximation)."""
    scenario = load_scenario(FIXTURES / "minimal.yaml",
                             ["initial_pool.fan=20000", "initial_pool.customer=4000",
                              "referral.addressable_market=400000"])
    base = horizon_kpis(simulate(scenario, seed=1, reps=40, keep_agents=False).monthly)
    for shards in (2, 8):
        other = horizon_kpis(simulate(scenario, seed=1, reps=40, shards=shards,
                                      keep_agents=False).monthly)
        assert not welch_outliers(base, other, HORIZON_KPIS, alpha=0.01), shards


def test_staff_capacity_clipped_per_shard_loses_what_theory_says():
    """The rule's known approximation, measured against its exact value: 400 contacts a
    day, each an add with probability 1/4, staff for 100 adds a day. Whole, a day's adds
    are min(Bin(400, 1/4), 100); in 4 shards, the sum of four min(Bin(100, 1/4), 25),
    which is less on average. Each run's mean daily adds is within 4 standard errors of
    its own exact expectation (sd estimated from the days)."""
    raw = {"horizon_days": 31, "channels": {"qr": {
        "monthly_spend_cny": 31 * 400, "cost_per_contact_cny": 1.0, "funnel": {"add": 0.25},
        "staff": {"accounts": 1, "adds_per_account_per_day": 100}}}}
    scenario = build(**raw)

    def clipped_mean(trials: int, cap: int) -> float:
        k = np.arange(trials + 1)
        return float(np.sum(np.minimum(k, cap) * stats.binom.pmf(k, trials, 0.25)))

    whole, split = clipped_mean(400, 100), 4 * clipped_mean(100, 25)
    assert whole - split > 2.5  # about 3.4 adds a day lost to clipping per shard
    for shards, expected in ((1, whole), (4, split)):
        adds = simulate(scenario, seed=8, reps=6, shards=shards, keep_agents=False).channels
        assert (adds["contacts"] == 400).all()
        daily = adds["adds"].to_numpy(float)
        se = daily.std(ddof=1) / math.sqrt(len(daily))
        assert abs(daily.mean() - expected) < 4 * se, (shards, daily.mean(), expected, se)


# -- a twin's known people --------------------------------------------------------------

def write_twin(folder: Path, n: int = 600) -> Path:
    """A twin scenario whose people and parameter draws are made here, with known ids."""
    rng = np.random.default_rng(4)
    stage = rng.choice(["fan", "customer", "member"], size=n, p=[0.5, 0.3, 0.2])
    buyer = stage != "fan"
    orders = np.where(buyer, rng.integers(1, 6, n), 0)
    join = -rng.integers(30, 400, n).astype(float)
    first = np.where(buyer, join + 5, np.nan)
    people = pd.DataFrame({
        "customer_id": [f"c{i:05d}" for i in range(n)], "stage": stage,
        "segment": rng.choice(["mass", "nowhere"], size=n, p=[0.9, 0.1]),
        "source": "initial", "join_day": join, "orders": orders,
        "gmv_cny": orders * 100.0, "first_order_day": first,
        "last_order_day": np.where(buyer, -1.0 - rng.integers(0, 20, n), np.nan),
        "member_day": np.where(stage == "member", join + 10, np.nan), "koc_day": np.nan,
        "x": np.where(buyer, orders - 1.0, np.nan),
        "t_x": np.where(buyer, np.where(orders > 1, 10.0, 0.0), np.nan),
        "T": -join, "deletion_hazard": rng.gamma(2.0, 0.01, n),
    })
    people.to_parquet(folder / "population.parquet")
    pd.DataFrame({"draw": [0, 1, 2], "pnbd.r": [0.8, 0.7, 0.9], "pnbd.alpha": 80.0,
                  "pnbd.s": 1.5, "pnbd.beta": 375.0, "deletion.shape": 0.7,
                  "lifecycle.repeat_order": [0.01, 0.012, 0.009]}
                 ).to_parquet(folder / "parameters.parquet")
    raw = {"name": "twin", "start_date": "2026-01-01", "horizon_days": 40,
           "segments": {"mass": {"share": 1.0, "order_value_cny": 100.0}},
           "touch_policy": {"one_to_one": {"per_week": 0}},
           "lifecycle": zero_lifecycle(first_order=0.01, repeat_order=0.01, join=0.01,
                                       deletion={"fan": 0.003, "customer": 0.002,
                                                 "member": 0.001, "koc": 0.001}),
           "population": {"people": str(folder / "population.parquet"),
                          "parameters": str(folder / "parameters.parquet"),
                          "reps_per_draw": 1}}
    return validate_scenario(raw)


def test_a_twins_people_are_split_by_row(tmp_path, monkeypatch):
    scenario = write_twin(tmp_path)
    monkeypatch.setattr(sharding, "BATCH_ROWS", 37)  # rows i mod N across batch borders
    whole = pd.read_parquet(tmp_path / "population.parquet")
    for shards in (2, 3):
        for s in range(shards):
            people = shard_twin(scenario, s, shards).people
            assert people["customer_id"].tolist() == whole["customer_id"].iloc[s::shards].tolist()
            pd.testing.assert_frame_equal(people, whole.iloc[s::shards].reset_index(drop=True))
    alone = simulate(scenario, seed=3, reps=3, **KEEP)
    assert_same(alone, simulate(scenario, seed=3, reps=3, shards=1, cluster=InProcess(), **KEEP))
    split = simulate(scenario, seed=3, reps=3, shards=3, **KEEP)
    assert split.draws == alone.draws  # a replication's shards share its parameter draw
    known = split.agents[split.agents["join_day"] < 0]
    assert known.groupby("rep").size().tolist() == [len(whole)] * 3
    assert sorted(known.loc[known["rep"] == 0, "join_day"]) == sorted(whole["join_day"])


# -- the command line -------------------------------------------------------------------

MINIMAL = str(FIXTURES / "minimal.yaml")


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_sharded_run_writes_the_files_and_columns_of_a_run(tmp_path):
    """Unsharded, two shards in this process and two shards on two local processes: the
    same files with the same columns, and the two sharded runs byte for byte the same."""
    common = ["run", MINIMAL, "--reps", "2", "--seed", "4", "--quiet", "--agents"]
    assert main([*common, "--out", str(tmp_path / "one")]) == OK
    assert main([*common, "--shards", "2", "--workers", "1", "--out", str(tmp_path / "here")]) == OK
    assert main([*common, "--shards", "2", "--workers", "2",
                 "--out", str(tmp_path / "pool")]) == OK
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "here").iterdir())
    for name in names:
        here, pool = tmp_path / "here" / name, tmp_path / "pool" / name
        if name.endswith(".csv"):
            one = pd.read_csv(tmp_path / "one" / name)
            assert list(one.columns) == list(pd.read_csv(here).columns), name
        if name.endswith(".parquet"):
            assert list(pd.read_parquet(tmp_path / "one" / name).columns) == list(
                pd.read_parquet(here).columns)
            pd.testing.assert_frame_equal(pd.read_parquet(here), pd.read_parquet(pool))
        elif name != ".simdomain.json":
            assert here.read_bytes() == pool.read_bytes(), name
    summary = json.loads((tmp_path / "here" / "summary.json").read_text())
    assert summary["shards"] == 2 and "shards" not in json.loads(
        (tmp_path / "one" / "summary.json").read_text())


def test_compare_and_plan_verify_take_shards(tmp_path):
    assert main(["compare", MINIMAL, "--variant", "more", "channels.sms.monthly_spend_cny=20000",
                 "--reps", "2", "--shards", "2", "--workers", "1", "--quiet",
                 "--out", str(tmp_path / "c")]) == OK
    table = pd.read_csv(tmp_path / "c" / "comparison.csv")
    adds = table[(table["month"] == "total") & (table["kpi"] == "new_adds")]
    assert adds["diff_mean"].iloc[1] > 0  # twice the spend on sms brings more adds
    scenario = tmp_path / "small.yaml"
    scenario.write_text(yaml.safe_dump(small_dict(), sort_keys=False))
    out = tmp_path / "p"
    assert main(["plan", str(scenario), "--member-window", "1", "--verify", "2", "--shards", "2",
                 "--workers", "1", "--quiet", "--out", str(out)]) == OK
    diagnostics = json.loads((out / "diagnostics.json").read_text())
    assert diagnostics["verification"]["reps"] == 2


def test_verify_with_one_shard_is_unsharded():
    found = plan(small(), PlanOptions(member_window_months=1))
    alone = verify(found, reps=2, seed=3, progress=False)
    sharded = verify(found, reps=2, seed=3, progress=False, shards=1, cluster=InProcess())
    pd.testing.assert_frame_equal(alone.outcomes, sharded.outcomes)


@pytest.mark.parametrize(("argv", "words"), [
    (["run", MINIMAL, "--scheduler", "tcp://127.0.0.1:9"], "--scheduler: needs --shards"),
    (["run", MINIMAL, "--workers", "2"], "--workers: needs --shards"),
    (["run", MINIMAL, "--shards", "2", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"],
     "--workers: applies to local runs"),
    (["compare", MINIMAL, "--set", "touch_policy.one_to_one.per_week=3", "--scheduler",
      "tcp://127.0.0.1:9"],
     "needs --shards"),
])
def test_bad_cluster_flags_are_refused_before_anything_is_written(tmp_path, capsys, argv, words):
    before = files(tmp_path)
    assert main([*argv, "--out", str(tmp_path / "out")]) == BAD_INPUT
    assert words in capsys.readouterr().err
    assert files(tmp_path) == before


def test_a_plan_refuses_shards_without_simulations(tmp_path, capsys):
    scenario = tmp_path / "small.yaml"
    scenario.write_text(yaml.safe_dump(small_dict(), sort_keys=False))
    assert main(["plan", str(scenario), "--shards", "2", "--out", str(tmp_path / "p")]) == BAD_INPUT
    assert "--verify or --confidence" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("address", ["not an address", "tcp://host:99999", "host"])
def test_a_scheduler_that_is_no_address_is_refused_at_once(capsys, address):
    with pytest.raises(SystemExit) as exit_:
        main(["run", MINIMAL, "--shards", "2", "--scheduler", address])
    assert exit_.value.code == BAD_INPUT
    assert "not a scheduler address" in capsys.readouterr().err


def test_an_unreachable_scheduler_leaves_nothing(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("simdomain.workers.CONNECT_SECONDS", 1)
    before = files(tmp_path)
    code = main(["run", MINIMAL, "--quiet", "--shards", "2", "--scheduler", "tcp://127.0.0.1:9",
                 "--out", str(tmp_path / "out")])
    assert code == BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("--scheduler: cannot connect to tcp://127.0.0.1:9")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert files(tmp_path) == before


def test_an_interrupted_sharded_run_leaves_the_previous_outputs(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main(["run", MINIMAL, "--reps", "2", "--quiet", "--out", str(out)]) == OK
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    done = []
    real = simulation.run_shard

    def interrupted(task):
        if done:
            raise KeyboardInterrupt
        done.append(task)
        return real(task)

    monkeypatch.setattr(simulation, "run_shard", interrupted)
    code = main(["run", MINIMAL, "--reps", "2", "--shards", "3", "--workers", "1", "--quiet",
                 "--out", str(out)])
    assert code == INTERRUPTED and len(done) == 1
    assert "interrupted" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
