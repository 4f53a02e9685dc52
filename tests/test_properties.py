"""Invariants of the simulation that hold for every scenario and seed.

Hypothesis draws small scenarios with every mechanism switched on or off at random
(channels with and without staff, touches, referral with fraud, a campaign, dormancy,
the new-user push); each invariant is exact, so any violation is a bug, whatever the
seed. Examples are few (25 per test; see ``conftest``: the default profile is
derandomized) so that the file runs in well under a minute.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import STAGES, scenario_dict
from hypothesis import given
from hypothesis import strategies as st

from simdomain.scenario import Scenario, validate_scenario
from simdomain.sim.rates import state_key
from simdomain.sim.world import World
from simdomain.simulation import SimulationResult, simulate

FAN, CUSTOMER, MEMBER, KOC, DELETED = range(5)
UNKNOWN = -2
NEVER = -1

seeds = st.integers(0, 2**32 - 1)
rates = st.floats(0.0, 0.2)
multipliers = st.floats(0.0, 3.0)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A small scenario: up to a few thousand people over one to two months."""
    days = draw(st.integers(7, 62))
    start = draw(st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31)))
    names = ["mass", "premium"][: draw(st.integers(1, 2))]
    share = draw(st.sampled_from([0.2, 0.5, 0.7])) if len(names) == 2 else 1.0
    fields = ["add", "first_order", "repeat_order", "join", "koc", "dormancy", "deletion",
              "referral"]
    segments = {
        name: {"share": s, "order_value_cny": draw(st.floats(1.0, 500.0)),
               "order_value_cv": draw(st.floats(0.0, 2.0)),
               "propensity": draw(st.fixed_dictionaries({}, optional=dict.fromkeys(
                   fields, multipliers)))}
        for name, s in zip(names, [share, 1.0 - share], strict=False)
    }
    lifecycle = {
        "first_order": draw(rates), "repeat_order": draw(rates), "join": draw(rates),
        "koc": draw(rates), "dormancy": draw(rates), "wake": draw(rates),
        "dormant_multiplier": draw(st.floats(0.0, 1.0)),
        "new_user_days": draw(st.integers(0, 5)),
        "new_user_multiplier": draw(st.floats(0.0, 5.0)),
        "member_order_multiplier": draw(multipliers),
        "deletion": {stage: draw(st.floats(0.0, 0.1)) for stage in STAGES},
    }
    channels = {}
    for i in range(draw(st.integers(0, 2))):
        staff = draw(st.none() | st.fixed_dictionaries({
            "accounts": st.integers(0, 3), "adds_per_account_per_day": st.floats(0.5, 30.0),
            "monthly_cost_per_account_cny": st.floats(0.0, 1000.0)}))
        channels[f"ch{i}"] = {
            "monthly_spend_cny": draw(st.floats(0.0, 3000.0)),
            "cost_per_contact_cny": draw(st.floats(0.5, 5.0)),
            "funnel": {"click": draw(st.floats(0.1, 1.0)), "add": draw(st.floats(0.1, 1.0))},
            "carrier_add_rate": draw(st.floats(0.1, 1.0)),
            "max_contacts_per_month": draw(st.none() | st.integers(0, 5000)),
            "saturation_contacts": draw(st.none() | st.floats(10.0, 1e4)),
            "fixed_cost_cny": draw(st.floats(0.0, 1000.0)),
            "staff": staff,
            "deletion_multiplier": draw(multipliers),
        }
    per_week = draw(st.integers(0, 7))
    weekdays = draw(st.none() | st.permutations(range(7)).map(lambda w: w[:per_week]))

    def posts(group: bool) -> dict:
        spec = {"posts_per_day": draw(st.integers(0, 4)), "view_rate": draw(st.floats(0, 1)),
                "content": {"post": {"share": 1.0, "uplift": draw(st.floats(0.0, 0.3)),
                                     "fatigue": draw(st.floats(-0.5, 0.5))}}}
        if group:
            spec["share_in_groups"] = draw(st.floats(0.0, 1.0))
        return spec

    touch_policy = {
        "one_to_one": {"per_week": per_week, "weekdays": weekdays,
                       "reach": draw(st.sampled_from([1.0, 0.5])),
                       "stages": draw(st.lists(st.sampled_from(STAGES), min_size=1,
                                               unique=True)),
                       "uplift": draw(st.floats(0.0, 0.5)),
                       "fatigue": draw(st.floats(0.0, 0.5))},
        "group": posts(True), "moments": posts(False),
        "fatigue_tolerance": draw(st.floats(0.0, 1.0)),
        "fatigue_sensitivity": draw(st.floats(0.0, 3.0)),
    }
    referral = draw(st.none() | st.fixed_dictionaries({
        "addressable_market": st.integers(0, 3000),
        "external_rate": st.floats(0.0, 0.05),
        "word_of_mouth": st.dictionaries(st.sampled_from(STAGES), st.floats(0.0, 0.5)),
        "fraud_share": st.floats(0.0, 0.5),
        "gift_per_invitee_cny": st.floats(0.0, 10.0),
        "reward_tiers": st.just([{"invites": 1, "gift_cny": 5.0},
                                 {"invites": 3, "gift_cny": 20.0}]),
    }))
    campaigns = []
    if draw(st.booleans()):
        campaigns.append({
            "name": "sale", "start": str(start + dt.timedelta(days=draw(st.integers(0, days - 1)))),
            "days": draw(st.integers(1, 20)), "cost_cny": draw(st.floats(0.0, 1000.0)),
            "multipliers": draw(st.fixed_dictionaries({}, optional=dict.fromkeys(
                ["adds", "first_order", "repeat_order", "join", "koc", "wake", "deletion",
                 "referral"], multipliers))),
        })
    raw = scenario_dict(
        name="property", start_date=str(start), horizon_days=days,
        initial_pool={stage: draw(st.integers(0, 150)) for stage in STAGES},
        segments=segments, channels=channels, touch_policy=touch_policy,
        lifecycle=lifecycle, campaigns=campaigns,
    )
    if referral is not None:
        raw["referral"] = referral
    return validate_scenario(raw)


def reps_of(result: SimulationResult):
    """``(daily, channels, agents)`` of each replication."""
    for rep in range(result.reps):
        yield (result.daily[result.daily["rep"] == rep].reset_index(drop=True),
               result.channels[result.channels["rep"] == rep].reset_index(drop=True),
               result.agents[result.agents["rep"] == rep].reset_index(drop=True))


def days_histogram(day: pd.Series, days: int) -> np.ndarray:
    """People per day of an event (days without it left out)."""
    return np.bincount(day[day >= 0], minlength=days)


@given(scenario=scenarios(), seed=seeds)
def test_people_are_conserved(scenario: Scenario, seed: int):
    result = simulate(scenario, seed=seed, reps=2)
    initial = scenario.initial_pool.total
    for daily, channels, agents in reps_of(result):
        adds = daily["new_adds"].cumsum()
        np.testing.assert_array_equal(daily["pool"] + daily["deleted"], initial + adds)
        np.testing.assert_array_equal(daily["pool"], daily[list(STAGES)].sum(axis=1))
        channel_adds = channels.groupby("day")["adds"].sum().reindex(daily["day"], fill_value=0)
        np.testing.assert_array_equal(
            daily["new_adds"],
            daily["organic_adds"] + daily["referral_adds"] + channel_adds.to_numpy())
        assert len(agents) == initial + adds.iloc[-1]
        assert (agents["join_day"] == NEVER).sum() == initial
        np.testing.assert_array_equal(days_histogram(agents["join_day"], scenario.horizon_days),
                                      daily["new_adds"])
        # the recorder's counts (kept incrementally) agree with the people at the end
        last = daily.iloc[-1]
        final = agents["stage"].value_counts()
        for stage in [*STAGES, "deleted"]:
            assert final[stage] == last[stage], stage
        assert (agents["dormant"] & (agents["stage"] != "deleted")).sum() == last["dormant"]
        # orders booked on people = orders in the daily flows
        assert agents["orders"].sum() == daily["orders"].sum()
        assert agents["gmv_cny"].sum() == pytest.approx(daily["gmv_cny"].sum(), rel=1e-9)
        assert daily["member_orders"].le(daily["orders"]).all()


@given(scenario=scenarios(), seed=seeds)
def test_referrals_and_spend_add_up(scenario: Scenario, seed: int):
    """Every referred person has a referrer who was in the pool that day; invites count
    the referred; fake accounts never buy; the day's spend is channels + campaigns +
    referral gifts."""
    result = simulate(scenario, seed=seed, reps=1)
    for daily, channels, agents in reps_of(result):
        referred = (agents["source"] == "referral").to_numpy()
        referrer = agents["referrer"].to_numpy()
        assert ((referrer >= 0) == referred).all()
        assert referred.sum() == daily["referral_adds"].sum()
        assert (agents["source"] == "organic").sum() == daily["organic_adds"].sum()
        who = referrer[referred]
        assert (who < np.flatnonzero(referred)).all(), "referrers joined earlier"
        day = agents["join_day"].to_numpy()[referred]
        assert (agents["join_day"].to_numpy()[who] <= day).all()
        gone = agents["deletion_day"].to_numpy()[who]
        assert ((gone == NEVER) | (gone >= day)).all(), "referral acts before deletions"
        np.testing.assert_array_equal(
            agents["invites"], np.bincount(who, minlength=len(agents)))
        fake = agents["segment"] == "fraud"
        assert (agents.loc[fake, "orders"] == 0).all()
        assert agents.loc[fake, "stage"].isin(["fan", "deleted"]).all()
        assert (agents.loc[fake, "source"] == "referral").all()
        spend = channels["spend_cny"].sum() + sum(c.cost_cny for c in scenario.campaigns)
        if scenario.referral is not None:
            spend += scenario.referral.gift_per_invitee_cny * referred.sum() + sum(
                tier.gift_cny * (agents["invites"] >= tier.invites).sum()
                for tier in scenario.referral.reward_tiers)
        assert daily["spend_cny"].sum() == pytest.approx(spend, rel=1e-9, abs=1e-6)


@given(scenario=scenarios(), seed=seeds)
def test_stages_only_move_forward(scenario: Scenario, seed: int):
    result = simulate(scenario, seed=seed, reps=1)
    days = scenario.horizon_days
    for daily, _, agents in reps_of(result):
        first, member, koc = agents["first_order_day"], agents["member_day"], agents["koc_day"]
        deletion, stage = agents["deletion_day"], agents["stage"]
        joined = agents["join_day"].clip(lower=0)
        # event days in order, within the person's time in the pool
        for earlier, later in [(first, member), (member, koc)]:
            both = (earlier >= 0) & (later >= 0)
            assert (earlier[both] <= later[both]).all()
            skipped = (later >= 0) & (earlier < 0)
            assert (agents["join_day"][skipped] == NEVER).all(), \
                "only the initial pool skips an event (it started past that stage)"
        for event in (first, member, koc, deletion):
            happened = event >= 0
            assert (event[happened] >= joined[happened]).all()
            assert (event[happened] < days).all()
            gone = happened & (deletion >= 0)
            assert (event[gone] <= deletion[gone]).all()
        assert ((deletion >= 0) == (stage == "deleted")).all()
        # a person's stage is backed by the events that brought them there
        new = agents["join_day"] >= 0
        alive = stage != "deleted"
        code = stage.cat.codes
        for event, least in [(first, CUSTOMER), (member, MEMBER), (koc, KOC)]:
            assert ((event[new & alive] >= 0) == (code[new & alive] >= least)).all()
        pool = scenario.initial_pool
        initial = ~new
        assert (initial & alive & (code >= MEMBER) & (member < 0)).sum() <= pool.member + pool.koc
        assert (initial & alive & (code == KOC) & (koc < 0)).sum() <= pool.koc
        assert (initial & alive & (code >= CUSTOMER) & (first < 0)).sum() <= \
            pool.customer + pool.member + pool.koc
        # the daily flows are the event days, and stocks grow only through them
        for event, flow in [(first, "new_customers"), (member, "new_members"),
                            (koc, "new_kocs"), (deletion, "deletions")]:
            np.testing.assert_array_equal(days_histogram(event, days), daily[flow], err_msg=flow)
        before = pd.DataFrame({"fan": pool.fan, "customer": pool.customer,
                               "member": pool.member, "koc": pool.koc, "deleted": 0},
                              index=[0])
        stocks = pd.concat([before, daily[[*STAGES, "deleted"]]], ignore_index=True)
        growth = stocks.diff().iloc[1:].reset_index(drop=True)
        assert (growth["fan"] <= daily["new_adds"]).all()
        assert (growth["customer"] <= daily["new_customers"]).all()
        assert (growth["member"] <= daily["new_members"]).all()
        assert (growth["koc"] <= daily["new_kocs"]).all()
        np.testing.assert_array_equal(growth["deleted"], daily["deletions"])
        # orders: a first order is an order; the last order is not before it
        ordered = agents["orders"] > 0
        assert (agents["orders"][first >= 0] >= 1).all()
        assert ((agents["last_order_day"] >= 0) == ordered).all()
        assert (agents["last_order_day"][first >= 0] >= first[first >= 0]).all()


def stage_mornings(agents: pd.DataFrame, days: int) -> np.ndarray:
    """Each person's stage when the day's touches go out (phase 0.3: after the adds,
    before the lifecycle step), one column per day: ``NEVER`` before they join,
    ``DELETED`` after the day they delete, ``UNKNOWN`` for initial people deleted before
    any event (their starting stage is not recorded)."""
    first = agents["first_order_day"].to_numpy()[:, None]
    member = agents["member_day"].to_numpy()[:, None]
    koc = agents["koc_day"].to_numpy()[:, None]
    deletion = agents["deletion_day"].to_numpy()[:, None]
    code = agents["stage"].cat.codes.to_numpy()
    start = np.select(
        [agents["join_day"].to_numpy() >= 0, first[:, 0] >= 0, member[:, 0] >= 0,
         koc[:, 0] >= 0, code != DELETED],
        [FAN, FAN, CUSTOMER, MEMBER, code], UNKNOWN)[:, None]
    t = np.arange(days)[None, :]
    stage = (start + ((first >= 0) & (first < t)) + ((member >= 0) & (member < t))
             + ((koc >= 0) & (koc < t)))
    stage = np.where(start == UNKNOWN, UNKNOWN, stage)
    stage = np.where((deletion >= 0) & (deletion < t), DELETED, stage)
    return np.where(agents["join_day"].to_numpy()[:, None] > t, NEVER, stage)


@given(scenario=scenarios(), seed=seeds)
def test_no_one_gets_more_touches_than_the_policy_sends(scenario: Scenario, seed: int):
    result = simulate(scenario, seed=seed, reps=1)
    policy = scenario.touch_policy
    days = scenario.horizon_days
    start_weekday = scenario.start_date.weekday()
    scheduled = np.isin((start_weekday + np.arange(days)) % 7, policy.one_to_one.schedule)
    if policy.one_to_one.per_week == 0:
        scheduled[:] = False
    allowed = np.array([s in policy.one_to_one.stages for s in STAGES])
    for _, _, agents in reps_of(result):
        stage = stage_mornings(agents, days)
        present = (stage != NEVER) & (stage != DELETED)
        days_present = present.sum(axis=1)
        known = (stage != UNKNOWN).all(axis=1)
        # 1:1: on scheduled days, in an allowed stage; everyone reached if reach = 1
        eligible = present & scheduled & allowed[np.clip(stage, 0, 3)]
        sent = agents["touches_one_to_one"].to_numpy()
        bound = np.where(known, eligible.sum(axis=1), (present & scheduled).sum(axis=1))
        assert (sent <= bound).all()
        if policy.one_to_one.reach == 1.0:
            np.testing.assert_array_equal(sent[known], bound[known])
        # posts: at most posts_per_day a day in the pool; groups only for group members
        for channel in ("group", "moments"):
            views = agents[f"touches_{channel}"].to_numpy()
            assert (views <= getattr(policy, channel).posts_per_day * days_present).all()
        kept = (agents["stage"] != "deleted").to_numpy()
        outside = kept & ~agents["in_group"].to_numpy()
        assert (agents["touches_group"].to_numpy()[outside] == 0).all()
        assert not agents["in_group"][~kept].any(), "deleted people leave their groups"


@given(scenario=scenarios(), seed=seeds)
def test_channel_adds_never_exceed_staff_capacity(scenario: Scenario, seed: int):
    result = simulate(scenario, seed=seed, reps=1, keep_agents=False)
    channels = result.channels
    assert len(channels) == len(scenario.channels) * scenario.horizon_days
    for name, channel in scenario.channels.items():
        rows = channels[channels["channel"] == name]
        assert (rows["adds"] >= 0).all()
        assert (rows["adds"] <= rows["contacts"]).all()
        if channel.staff is not None:
            capacity = int(channel.staff.accounts * channel.staff.adds_per_account_per_day)
            assert rows["adds"].max() <= capacity


def test_monthly_contacts_never_exceed_what_is_available():
    """A channel whose spend buys more contacts than exist: the month's contacts must
    stay within ``max_contacts_per_month`` (100 over 31 days: 3.23 a day)."""
    scenario = validate_scenario(scenario_dict(
        horizon_days=59,  # January and February 2026
        channels={"parcels": {"monthly_spend_cny": 1000.0, "cost_per_contact_cny": 1.0,
                              "funnel": {"scan": 0.1}, "max_contacts_per_month": 100}},
    ))
    result = simulate(scenario, seed=3, reps=20, keep_agents=False)
    month = result.channels["day"].map(
        lambda d: (scenario.start_date + dt.timedelta(days=int(d))).month).rename("month")
    monthly = result.channels.groupby(["rep", month])["contacts"].sum()
    assert monthly.max() <= 100, f"up to {monthly.max()} contacts in a month"


@given(scenario=scenarios(), seed=seeds)
def test_cached_key_counts_match_the_people(scenario: Scenario, seed: int):
    """``World.key_counts`` (and the per-person keys), kept in step by ``join`` and
    ``move``, equal the state keys recomputed from the people's stage, dormancy, segment
    and source, at the end of every day."""
    wrong = []
    close_day = World.close_day

    def checked_close_day(world: World, day: int) -> None:
        pop = world.pop
        kind = pop.source.astype(np.int32) * len(world.layout.segments) + pop.segment
        fresh = state_key(kind, pop.stage, pop.dormant)
        counts = np.bincount(fresh, minlength=world.key_counts.size)
        if not (np.array_equal(counts, world.key_counts) and np.array_equal(world.keys(), fresh)):
            wrong.append(day)
        close_day(world, day)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(World, "close_day", checked_close_day)
        result = simulate(scenario, seed=seed, reps=1, keep_agents=False)
    assert len(result.daily) == scenario.horizon_days
    assert not wrong, f"key counts out of step on days {wrong}"


FRAMES = ("daily", "channels", "agents", "monthly", "targets")


def test_same_seed_gives_identical_frames(minimal: Scenario):
    a = simulate(minimal, seed=11, reps=2)
    b = simulate(minimal, seed=11, reps=2)
    for frame in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, frame), getattr(b, frame), obj=frame)


def test_different_seeds_give_different_frames(minimal: Scenario):
    a = simulate(minimal, seed=11)
    b = simulate(minimal, seed=12)
    for frame in ("daily", "channels", "agents"):
        assert not getattr(a, frame).equals(getattr(b, frame)), frame
    # and the replications of one run differ from each other
    two = simulate(minimal, seed=11, reps=2).daily.drop(columns="rep")
    assert not two.iloc[: minimal.horizon_days].reset_index(drop=True).equals(
        two.iloc[minimal.horizon_days:].reset_index(drop=True))


def test_a_replication_does_not_depend_on_how_many_run(minimal: Scenario):
    one = simulate(minimal, seed=5, reps=1)
    three = simulate(minimal, seed=5, reps=3)
    for frame in ("daily", "channels", "agents"):
        every = getattr(three, frame)
        pd.testing.assert_frame_equal(
            every[every["rep"] == 0].reset_index(drop=True), getattr(one, frame), obj=frame)
