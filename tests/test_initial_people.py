"""People known at the start (``InitialPeople``): placed as given, history carried, no
new-user push, reproducible; and the order log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import STAGES, build, zero_lifecycle

from simdomain.errors import InputError
from simdomain.sim.engine import run_replication
from simdomain.sim.population import NEVER, InitialPeople
from simdomain.simulation import simulate

Z = 4.5
CHANNELS = {"sms": {"monthly_spend_cny": 500.0, "cost_per_contact_cny": 1.0,
                    "funnel": {"add": 0.3}}}
SEGMENTS = {"mass": {"share": 0.7, "order_value_cny": 80.0},
            "premium": {"share": 0.3, "order_value_cny": 300.0}}


def brand(n: int, seed: int = 0) -> InitialPeople:
    """``n`` people with a plausible history: customers and up have orders, members a
    member day, KOCs a KOC day; some dormant; days before the start."""
    rng = np.random.default_rng(seed)
    stage = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    join = -rng.integers(1, 700, size=n)
    buyer = stage >= 1
    orders = np.where(buyer, rng.integers(1, 9, size=n), 0)
    first = np.where(buyer, join + rng.integers(0, 30, size=n), NEVER)
    first = np.where(buyer, np.minimum(first, -1), NEVER)
    last = np.where(buyer, np.minimum(first + rng.integers(0, 300, size=n), -1), NEVER)
    member = np.where(stage >= 2, np.minimum(first + 5, -1), NEVER)
    koc = np.where(stage == 3, np.minimum(member + 5, -1).astype(float), np.nan)  # NaN = never
    return InitialPeople(
        stage=stage, segment=rng.choice(np.array(["mass", "premium"]), size=n),
        source=rng.choice(np.array(["sms", "initial", "organic", "referral"]), size=n),
        join_day=join, orders=orders, gmv_cny=orders * 90.0, first_order_day=first,
        last_order_day=last, member_day=member, koc_day=koc,
        dormant=buyer & (rng.random(n) < 0.3), in_group=rng.random(n) < 0.5)


def scenario(**lifecycle):
    life = zero_lifecycle(**lifecycle)
    return build(segments=SEGMENTS, channels=CHANNELS, lifecycle=life, horizon_days=40,
                 initial_pool={"fan": 1000})  # replaced by the known people


def test_known_people_are_placed_as_given():
    """With every rate zero, day 0 and the end hold exactly the given people: stage,
    source and dormancy counts, and each person's history."""
    people = brand(5000)
    run = run_replication(scenario(), np.random.SeedSequence(1), initial=people)
    day0 = run.daily.iloc[0]
    counts = np.bincount(people.stage, minlength=4)
    counts[0] += day0["new_adds"]  # the channel's adds of day 0 are fans
    for s, stage in enumerate(STAGES):
        assert day0[stage] == counts[s]
    assert day0["dormant"] == people.dormant.sum()
    assert run.daily["new_adds"].sum() == run.agents["join_day"].ge(0).sum() > 0
    assert (run.agents["join_day"].iloc[5000:] >= 0).all()
    known = run.agents.iloc[:5000]
    assert (known["stage"].cat.codes.to_numpy() == people.stage).all()
    np.testing.assert_array_equal(known["source"].astype(str), people.source)
    np.testing.assert_array_equal(known["segment"].astype(str), people.segment)
    np.testing.assert_array_equal(known["in_group"], people.in_group)
    np.testing.assert_array_equal(known["dormant"], people.dormant)
    for name in ("join_day", "orders", "gmv_cny", "first_order_day", "last_order_day",
                 "member_day"):
        np.testing.assert_array_equal(known[name], getattr(people, name), err_msg=name)
    np.testing.assert_array_equal(known["koc_day"],
                                  np.nan_to_num(people.koc_day, nan=NEVER).astype(int))
    assert (known["deletion_day"] == -1).all()
    assert "order_multiplier" not in run.agents  # no multiplier in use: the usual columns


def test_history_is_carried_and_continued():
    """Orders in the simulation add to the known ones; the first order day of earlier
    buyers stays; the last order day moves to the latest order; the order log holds
    every simulated order (first orders too) and nothing else."""
    people = brand(20000, seed=2)
    run = run_replication(
        scenario(first_order=0.02, repeat_order=0.03, join=0.01, koc=0.01, dormancy=0.01,
                 wake=0.01, deletion=dict.fromkeys(STAGES, 0.002)),
        np.random.SeedSequence(2), initial=people, keep_orders=True)
    agents, log = run.agents, run.orders
    assert list(log.columns) == ["agent", "day", "amount_cny"]
    assert len(log) == run.daily["orders"].sum() > 5000
    assert log["day"].is_monotonic_increasing and log["day"].between(0, 39).all()
    booked = np.bincount(log["agent"], minlength=len(agents))
    np.testing.assert_array_equal(agents["orders"], booked + np.append(
        people.orders, np.zeros(len(agents) - 20000, int)))
    spent = np.bincount(log["agent"], weights=log["amount_cny"], minlength=len(agents))
    np.testing.assert_allclose(agents["gmv_cny"].iloc[:20000], spent[:20000] + people.gmv_cny)
    known = agents.iloc[:20000]
    earlier = people.orders > 0
    np.testing.assert_array_equal(known["first_order_day"][earlier],
                                  people.first_order_day[earlier])
    latest = log.groupby("agent")["day"].max().reindex(range(20000)).to_numpy()
    want = np.where(np.isnan(latest), people.last_order_day, latest)
    np.testing.assert_array_equal(known["last_order_day"], want)
    np.testing.assert_array_equal(known["join_day"], people.join_day)
    became = (people.stage == 0) & (known["first_order_day"].to_numpy() >= 0)
    assert became.sum() > 100 and (booked[:20000][became] >= 1).all()


def test_known_fans_get_no_new_user_push():
    """Known fans joined before the start (here the day before): their first order is at
    the base rate 0.01, not 50 times it, on day 0; the channel's fans added that day
    get the push."""
    n = 20000
    people = InitialPeople(stage=np.zeros(n, int), segment=np.zeros(n, int),
                           source=np.full(n, "sms"), join_day=np.full(n, -1))
    run = run_replication(scenario(first_order=0.01, new_user_days=3, new_user_multiplier=50.0),
                          np.random.SeedSequence(3), initial=people)
    agents = run.agents
    converted = (agents["first_order_day"].iloc[:n] == 0).sum()
    assert abs(converted - 0.01 * n) < Z * np.sqrt(n * 0.01 * 0.99)
    new = agents.iloc[n:]
    pushed = new["first_order_day"] - new["join_day"]
    assert len(new) > 50 and (pushed.between(0, 2).sum() > 0.5 * (new["first_order_day"] >= 0).sum())


def test_dormant_people_stay_dormant_without_waking():
    """A person known to have stopped (dormant, wake = 0, no orders while dormant) never
    orders again; the awake ones do."""
    people = brand(5000, seed=4)
    run = run_replication(scenario(repeat_order=0.1, wake=0.0, dormant_multiplier=0.0),
                          np.random.SeedSequence(4), initial=people)
    known = run.agents.iloc[:5000]
    assert known["dormant"][people.dormant].all()
    np.testing.assert_array_equal(known["orders"][people.dormant], people.orders[people.dormant])
    assert (known["orders"][~people.dormant & (people.stage >= 1)]
            > people.orders[~people.dormant & (people.stage >= 1)]).mean() > 0.9


def test_same_seed_same_numbers_and_the_pool_counts_are_ignored():
    people = brand(3000, seed=5)
    s = scenario(first_order=0.02, repeat_order=0.03, dormancy=0.01, wake=0.01)
    one = simulate(s, seed=7, reps=2, initial=people, keep_orders=True)
    two = simulate(s, seed=7, reps=2, initial=people, keep_orders=True)
    for name in ("daily", "agents", "orders"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name))
    assert one.daily.groupby("rep")[["fan", "customer", "member", "koc", "deleted"]].first(
        ).sum(axis=1).eq(3000 + one.daily.groupby("rep")["new_adds"].first()).all()
    other = simulate(s, seed=8, reps=1, initial=people)
    assert not other.daily["orders"].equals(one.daily.loc[one.daily["rep"] == 0, "orders"])


def test_names_and_codes_are_the_same_people():
    named = brand(2000, seed=6)
    coded = InitialPeople(**{**named.__dict__,
                             "stage": np.array(STAGES)[named.stage],
                             "segment": (named.segment == "premium").astype(int)})
    s = scenario(first_order=0.02, repeat_order=0.03)
    a = run_replication(s, np.random.SeedSequence(6), initial=named).agents
    b = run_replication(s, np.random.SeedSequence(6), initial=coded).agents
    pd.testing.assert_frame_equal(a, b)


def test_given_multipliers_are_used_and_reported():
    """Given multipliers put those kinds in use: they are reported as given; the ones not
    given stay 1 unless the scenario draws them (order_shape here)."""
    n = 4000
    m = np.linspace(0.0, 4.0, n).astype(np.float32)
    people = InitialPeople(stage=np.ones(n, int), segment=np.zeros(n, int),
                           source=np.full(n, "initial"), join_day=np.full(n, -10),
                           deletion_multiplier=m)
    s = build(segments=SEGMENTS, horizon_days=20, lifecycle=zero_lifecycle(
        repeat_order=0.05, deletion=dict.fromkeys(STAGES, 0.01),
        heterogeneity={"order_shape": 1.0}))
    agents = run_replication(s, np.random.SeedSequence(7), initial=people).agents
    np.testing.assert_array_equal(agents["deletion_multiplier"], m)
    assert (agents["dormancy_multiplier"] == 1).all()
    assert agents["order_multiplier"].std() > 0.5
    deleted = agents["stage"] == "deleted"
    assert not deleted[m == 0].any()
    assert deleted[m > 2].mean() > 2.5 * deleted[(m > 0) & (m < 1)].mean()


def test_a_function_gives_each_replication_its_own_people():
    s = scenario(repeat_order=0.05)
    result = simulate(s, seed=1, reps=2, initial=lambda rep: brand(1000 + rep, seed=rep))
    assert result.agents.groupby("rep")["join_day"].apply(lambda d: (d < 0).sum()).tolist() \
        == [1000, 1001]


@pytest.mark.parametrize("change, field, words", [
    ({"segment": np.full(10, "vip")}, "segment", "expected one of"),
    ({"source": np.full(10, "tv")}, "source", "expected one of"),
    ({"stage": np.full(10, 4)}, "stage", "expected one of"),
    ({"join_day": np.arange(10) - 3}, "join_day", "rows 3, 4, 5, 6, 7 (and 2 more)"),
    ({"member_day": np.full(10, 2.5)}, "member_day", "before the start"),
    ({"orders": -np.ones(10)}, "orders", ">= 0"),
    ({"order_multiplier": np.full(10, np.nan)}, "order_multiplier", ">= 0"),
    ({"gmv_cny": np.zeros(9)}, "gmv_cny", "has 9 rows"),
])
def test_bad_people_are_refused_by_name(change, field, words):
    good = {"stage": np.zeros(10, int), "segment": np.full(10, "mass"),
            "source": np.full(10, "sms"), "join_day": np.full(10, -5)}
    with pytest.raises(InputError) as caught:
        run_replication(scenario(), np.random.SeedSequence(0),
                        initial=InitialPeople(**{**good, **change}))
    problems = caught.value.problems
    assert [p.loc for p in problems] == [(field,)]
    assert words in str(caught.value)
