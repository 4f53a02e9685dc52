"""A naive reference simulator: one SimPy process per consumer, the engine's rules.

Deliberately plain and slow. Each consumer is a Python object with its own SimPy
process and its own random generator, stepping itself once a day with scalar draws;
global processes bring people in (channels, referral), run campaigns, send touches and
record the day. It shares no step code with the vectorized engine
(:mod:`simdomain.sim.steps`): every probability is computed here from the scenario's
fields (segment and channel propensities, and each consumer's own multipliers when the
scenario's heterogeneity draws them), so the two agree only if both implement the rules
as documented. It is for
validating the engine on small populations (see ``tests/test_reference.py``).

Within a day the processes act in the engine's order: campaigns, channels, referral,
touches (1:1, then group posts, then moments), each consumer's lifecycle, the recorder.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import functools
import itertools
import math
from collections.abc import Generator, Sequence

import numpy as np
import pandas as pd
import simpy

from simdomain import kpi
from simdomain.scenario.model import STAGES, Campaign, CampaignMultipliers, Propensities, Scenario
from simdomain.sim.engine import DAILY_COLUMNS, Replication
from simdomain.sim.population import (
    BEFORE_START,
    CUSTOMER,
    DELETED,
    FAN,
    KOC,
    MEMBER,
    NEVER,
    NOBODY,
    NOT_DELETED,
    STAGE_NAMES,
)
from simdomain.sim.rates import lognormal_params
from simdomain.sim.world import TALLIES, Calendar
from simdomain.simulation import SimulationResult

Process = Generator[simpy.Event, None, None]

CAMPAIGNS, ACQUISITION, REFERRAL, ONE_TO_ONE, GROUP, MOMENTS, LIFECYCLE, RECORDER = (
    0.0, 0.1, 0.2, 0.3, 0.31, 0.32, 0.5, 0.9)
"""Phases (fractions of a day); the touches keep the engine's order 1:1, group, moments."""


FIELDS: dict[str, tuple[type, object]] = {
    "stage": (np.int8, FAN), "segment": (np.int16, 0), "source": (np.int16, 0),
    "join_day": (np.int32, BEFORE_START), "referrer": (np.int64, NOBODY), "dormant": (np.bool_, False),
    "in_group": (np.bool_, False), "engagement": (np.float32, 0.0), "fatigue": (np.float32, 0.0),
    "touches_one_to_one": (np.int32, 0), "touches_group": (np.int32, 0),
    "touches_moments": (np.int32, 0), "orders": (np.int32, 0), "gmv_cny": (np.float64, 0.0),
    "first_order_day": (np.int32, NEVER), "last_order_day": (np.int32, NEVER),
    "member_day": (np.int32, NEVER), "koc_day": (np.int32, NEVER),
    "deletion_day": (np.int32, NOT_DELETED), "invites": (np.int32, 0),
}
"""A person's attributes: name -> (dtype in the agents frame, value on joining); the
columns of the engine's agents frame."""


MULTIPLIERS = ("order_multiplier", "dormancy_multiplier", "deletion_multiplier")
"""A person's own rate multipliers (1 unless the scenario's heterogeneity draws them)."""


class Consumer:
    """One person: the attributes in :data:`FIELDS`, their own rate multipliers and a
    generator of their own."""

    __slots__ = ("agent", "rng", *FIELDS, *MULTIPLIERS)

    def __init__(self, agent: int, rng: np.random.Generator, **fields: object) -> None:
        self.agent, self.rng = agent, rng
        for name, (_, fill) in FIELDS.items():
            setattr(self, name, fields.get(name, fill))
        for name in MULTIPLIERS:
            setattr(self, name, 1.0)


def at(env: simpy.Environment, day: int, phase: float) -> simpy.Timeout:
    """A timeout that fires at ``phase`` of ``day`` (absolute, so no drift)."""
    return env.timeout(max(0.0, day + phase - env.now))


def draw(rng: np.random.Generator, cumulative: Sequence[float]) -> int:
    """Index drawn from cumulative weights, by inversion of one uniform."""
    i = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
    return min(i, len(cumulative) - 1)


class Domain:
    """One replication's consumers, campaigns, tallies and records.

    Parameters
    ----------
    scenario
        The scenario to simulate.
    seed
        Root of this replication's streams: one per global process, one per consumer.
    """

    def __init__(self, scenario: Scenario, seed: np.random.SeedSequence) -> None:
        self.scenario = scenario
        self.calendar = Calendar.of(scenario.start_date, scenario.horizon_days)
        self.segment_names = [*scenario.segments, "fraud"]
        self.fraud = len(scenario.segments)
        self.sources = [*scenario.channels, "initial", "organic", "referral"]
        self.people: list[Consumer] = []
        self.active: list[Campaign] = []
        self.boost = CampaignMultipliers()
        self.tally = dict.fromkeys(TALLIES, 0.0)
        self.daily_rows: list[tuple[float, ...]] = []
        self.channel_rows: list[tuple[float, ...]] = []
        self.market_used = 0
        self._people_seed, *streams = seed.spawn(6 + len(scenario.channels))
        self.rng = dict(zip(["initial", "referral", "one_to_one", "group", "moments",
                             *scenario.channels], map(np.random.default_rng, streams)))
        self._propensity = [s.propensity for s in scenario.segments.values()]
        self._order_value = [lognormal_params(s.order_value_cny, s.order_value_cv)
                             for s in scenario.segments.values()]
        channels = scenario.channels.values()
        self._deletion_multiplier = [*(c.deletion_multiplier * c.propensity.deletion
                                       for c in channels), 1.0, 1.0, 1.0]  # initial, organic, referral
        self._channel = [*(c.propensity for c in channels), *[Propensities()] * 3]
        spec = scenario.lifecycle.heterogeneity
        self._shapes = {name: getattr(spec, name.split("_")[0] + "_shape") if spec else None
                        for name in MULTIPLIERS}
        policy = scenario.touch_policy
        self._keep_engagement = 0.5 ** (1.0 / policy.engagement_half_life_days)
        self._keep_fatigue = 0.5 ** (1.0 / policy.fatigue_half_life_days)

    # -- people ---------------------------------------------------------------------------
    def mix(self, source: str) -> tuple[list[int], list[float]]:
        """Segment codes of an audience and their cumulative shares."""
        mix = self.scenario.audience(source)
        return [self.segment_names.index(k) for k in mix], list(itertools.accumulate(mix.values()))

    def join(self, env: simpy.Environment, segment: int, source: str, day: int, *,
             stage: int = FAN, referrer: int = NOBODY) -> Consumer:
        """Create a consumer and start their process; they may join a group."""
        rng = np.random.default_rng(self._people_seed.spawn(1)[0])
        share = self.scenario.touch_policy.group.share_in_groups
        person = Consumer(len(self.people), rng, segment=segment, stage=stage, join_day=day,
                          source=self.sources.index(source), referrer=referrer,
                          in_group=bool(rng.random() < share))
        for name, shape in self._shapes.items():
            if shape is not None:
                setattr(person, name, float(np.float32(rng.gamma(shape, 1.0 / shape))))
        self.people.append(person)
        env.process(live(env, self, person))
        if day >= 0:
            self.tally["new_adds"] += 1
        return person

    def word_of_mouth(self, p: Consumer) -> float:
        """This person's contribution to the referral pressure."""
        if p.stage == DELETED or p.segment == self.fraud:
            return 0.0
        spec = self.scenario.referral
        weight = (spec.word_of_mouth.get(STAGES[p.stage], 0.0)
                  * self._propensity[p.segment].referral * self.boost.referral
                  * self._channel[p.source].referral)
        return weight * (self.scenario.lifecycle.dormant_multiplier if p.dormant else 1.0)

    # -- one consumer's day ---------------------------------------------------------------
    def step(self, p: Consumer, day: int) -> None:
        """Orders, then deletion or an upgrade, then dormancy; then touch effects fade."""
        life, boost, rng = self.scenario.lifecycle, self.boost, p.rng
        policy = self.scenario.touch_policy
        fraud = p.segment == self.fraud
        prop = None if fraud else self._propensity[p.segment]
        chan = self._channel[p.source]
        lift = 1.0 + p.engagement
        sleepy = life.dormant_multiplier if p.dormant else 1.0
        stage = p.stage

        if prop is not None and stage in (CUSTOMER, MEMBER, KOC):
            rate = life.repeat_order * prop.repeat_order * boost.repeat_order
            if stage != CUSTOMER:
                rate *= life.member_order_multiplier
            rate *= chan.repeat_order
            if rng.random() < min(rate * sleepy, 1.0) * lift * p.order_multiplier:
                self.order(p, day)

        if prop is None:
            p_del = life.deletion["fan"] * boost.deletion
        else:
            p_del = life.deletion[STAGES[stage]] * prop.deletion * boost.deletion
        p_del = min(p_del * self._deletion_multiplier[p.source], 1.0)
        own = p.deletion_multiplier
        if policy.fatigue_sensitivity > 0:
            excess = max(0.0, p.fatigue - policy.fatigue_tolerance)
            own *= 1.0 + policy.fatigue_sensitivity * excess
        p_del = min(p_del * own, 1.0)

        p_adv = 0.0
        if prop is not None and stage != KOC:
            if stage == FAN:
                rate = life.first_order * prop.first_order * boost.first_order * chan.first_order
            elif stage == CUSTOMER:
                rate = life.join * prop.join * boost.join * chan.join
            else:
                rate = life.koc * prop.koc * boost.koc * chan.koc
            p_adv = min(rate * sleepy, 1.0) * lift
            # the new-user push: the add day and the days after it (not the initial pool)
            if stage == FAN and p.join_day >= 0 and day - p.join_day < life.new_user_days:
                p_adv *= life.new_user_multiplier
        p_adv = min(p_adv, 1.0 - p_del)

        can_sleep = STAGES[stage] in life.dormancy_stages
        p_flip = 0.0 if prop is None else (
            life.wake * boost.wake if p.dormant
            else min(life.dormancy * prop.dormancy * chan.dormancy, 1.0) * p.dormancy_multiplier
            * can_sleep)
        u, v = rng.random(), rng.random()
        if u < p_del:
            p.stage, p.deletion_day, p.in_group = DELETED, day, False
            self.tally["deletions"] += 1
        else:
            if u < p_del + p_adv:
                self.advance(p, day)
            if v < p_flip:
                p.dormant = not p.dormant
        p.engagement *= self._keep_engagement
        p.fatigue *= self._keep_fatigue

    def advance(self, p: Consumer, day: int) -> None:
        """Move one stage up: the first order, joining as a member, becoming a KOC."""
        p.stage += 1
        if p.stage == CUSTOMER:
            p.first_order_day = day
            self.order(p, day)
            self.tally["new_customers"] += 1
        elif p.stage == MEMBER:
            p.member_day = day
            self.tally["new_members"] += 1
        else:
            p.koc_day = day
            self.tally["new_kocs"] += 1

    def order(self, p: Consumer, day: int) -> None:
        """Book one order at a lognormal value for the person's segment."""
        mu, sigma = self._order_value[p.segment]
        value = float(p.rng.lognormal(mu, sigma))
        p.orders += 1
        p.gmv_cny += value
        p.last_order_day = day
        self.tally["orders"] += 1
        self.tally["member_orders"] += p.stage in (MEMBER, KOC)
        self.tally["gmv_cny"] += value

    # -- output ---------------------------------------------------------------------------
    def record(self, day: int) -> None:
        """Count the people per stage, store the day's row and reset the flows."""
        counts = [0] * len(STAGE_NAMES)
        dormant = 0
        for p in self.people:
            counts[p.stage] += 1
            dormant += p.dormant and p.stage != DELETED
        self.daily_rows.append((day, *counts, dormant, *self.tally.values()))
        self.tally = dict.fromkeys(TALLIES, 0.0)

    def replication(self, keep_agents: bool) -> Replication:
        """The engine's frames (same columns, dtypes and order) from this run."""
        cal = self.calendar
        daily = pd.DataFrame(self.daily_rows, columns=DAILY_COLUMNS)
        counts = [c for c in DAILY_COLUMNS if c not in ("gmv_cny", "spend_cny")]
        daily[counts] = daily[counts].astype(np.int64)
        daily.insert(1, "date", pd.to_datetime([cal.start + pd.Timedelta(days=d)
                                                for d in daily["day"]]))
        daily.insert(daily.columns.get_loc("deleted") + 1, "pool", daily[list(STAGES)].sum(axis=1))
        channels = pd.DataFrame(self.channel_rows,
                                columns=["day", "channel", "spend_cny", "contacts", "adds"])
        channels["channel"] = pd.Categorical.from_codes(channels["channel"].astype(int),
                                                        categories=self.sources)
        channels = channels.sort_values(["day", "channel"], kind="stable").reset_index(drop=True)
        members = np.zeros((len(cal.labels), len(self.sources)), dtype=np.int64)
        for p in self.people:
            if p.member_day >= 0:
                members[cal.month[p.member_day], p.source] += 1
        channel_members = pd.DataFrame({
            "month": np.repeat(cal.labels, len(self.sources)),
            "channel": np.tile(self.sources, len(cal.labels)),
            "new_members": members.ravel(),
        })
        agents = None
        if keep_agents:
            columns: dict[str, object] = {"agent": np.arange(len(self.people))}
            for name, (dtype, _) in FIELDS.items():
                columns[name] = np.array([getattr(p, name) for p in self.people], dtype=dtype)
            if any(shape is not None for shape in self._shapes.values()):
                for name in MULTIPLIERS:
                    columns[name] = np.array([getattr(p, name) for p in self.people],
                                             dtype=np.float32)
            agents = pd.DataFrame(columns)
            for name, labels in [("stage", STAGE_NAMES), ("segment", self.segment_names),
                                 ("source", self.sources)]:
                agents[name] = pd.Categorical.from_codes(agents[name], categories=list(labels))
        return Replication(daily=daily, channels=channels, channel_members=channel_members,
                           agents=agents, snapshots=None)


# -- processes ----------------------------------------------------------------------------
def live(env: simpy.Environment, dom: Domain, p: Consumer) -> Process:
    """A consumer's own process: one lifecycle step a day until they delete the brand."""
    day = max(p.join_day, 0)
    while p.stage != DELETED:
        yield at(env, day, LIFECYCLE)
        dom.step(p, day)
        day += 1


def campaign(env: simpy.Environment, dom: Domain, spec: Campaign) -> Process:
    """Multiply the rates while the campaign runs; its cost is booked on the first day."""
    first = dom.calendar.day_of(spec.start)
    for running, day in [(True, first), (False, first + spec.days)]:
        yield at(env, day, CAMPAIGNS)
        if running:
            dom.active.append(spec)
            dom.tally["spend_cny"] += spec.cost_cny
        else:
            dom.active.remove(spec)
        product = {k: math.prod(getattr(c.multipliers, k) for c in dom.active)
                   for k in CampaignMultipliers.model_fields}
        dom.boost = CampaignMultipliers(**product)


def channel(env: simpy.Environment, dom: Domain, name: str) -> Process:
    """A channel's adds: the month's contacts spread over its days, each contact an add
    with the funnel's rate (after saturation), capped by the staff's daily capacity.
    With carry-over the contacts still at work from earlier months (``carryover`` times
    the last month's contacts at work) are spread over the month too, at no cost."""
    ch, rng, cal = dom.scenario.channels[name], dom.rng[name], dom.calendar
    segments, cumulative = dom.mix(name)
    shares = np.diff([0.0, *cumulative])
    add_rate = ch.carrier_add_rate * math.prod(ch.funnel.values())
    at_work, carried = 0.0, ch.carried_contacts  # contacts at work e_m; e_(m-1)
    for day in range(cal.days):
        yield at(env, day, ACQUISITION)
        month = int(cal.month[day])
        spend = ch.monthly_spend_cny
        spend = spend[month] if isinstance(spend, list) else spend
        bought = spend / ch.cost_per_contact_cny
        if ch.max_contacts_per_month is not None:
            bought = min(bought, ch.max_contacts_per_month)
        if day == 0 or cal.month[day - 1] != month:
            if day > 0:
                carried = at_work
            at_work = bought + ch.carryover * carried
        cost = bought * ch.cost_per_contact_cny / cal.month_length[month]
        if spend > 0 and (day == 0 or cal.month[day - 1] != month):
            cost += ch.fixed_cost_cny
            if ch.staff is not None:
                cost += ch.staff.accounts * ch.staff.monthly_cost_per_account_cny
        expected = bought / cal.month_length[month]
        contacts = int(expected) + int(rng.random() < expected - int(expected))
        if at_work > bought:  # contacts carried over from earlier months work at no cost
            still = (at_work - bought) / cal.month_length[month]
            contacts += int(still) + int(rng.random() < still - int(still))
        added: list[int] = []
        if contacts > 0:
            scale = ch.saturation_contacts
            effective = at_work if scale is None else scale * (1 - math.exp(-at_work / scale))
            per_contact = add_rate * effective / at_work
            for campaign_ in dom.active:
                if campaign_.channels is None or name in campaign_.channels:
                    per_contact *= campaign_.multipliers.adds
            left, left_share = contacts, 1.0
            for i, (g, share) in enumerate(zip(segments, shares)):  # contacts by segment
                last = i == len(segments) - 1
                reached = left if last else int(rng.binomial(left, min(share / left_share, 1.0)))
                left, left_share = left - reached, left_share - share
                p = min(per_contact * dom._propensity[g].add * ch.propensity.add, 1.0)
                added += [g] * int(rng.binomial(reached, p))
            capacity = ch.staff.daily_capacity if ch.staff is not None else None
            if capacity is not None and len(added) > capacity:
                added = [added[i] for i in rng.permutation(len(added))[:capacity]]
        for g in added:
            dom.join(env, g, name, day)
        dom.tally["spend_cny"] += cost
        dom.channel_rows.append((day, dom.sources.index(name), cost, contacts, len(added)))


def referral(env: simpy.Environment, dom: Domain) -> Process:
    """Bass diffusion: each remaining person of the market joins with ``p + W / M``."""
    spec, rng = dom.scenario.referral, dom.rng["referral"]
    segments, cumulative = dom.mix("referral")
    for day in range(dom.calendar.days):
        yield at(env, day, REFERRAL)
        remaining = spec.addressable_market - dom.market_used
        if remaining <= 0:
            continue
        speakers = [(p, w) for p in dom.people if (w := dom.word_of_mouth(p)) > 0]
        weights = list(itertools.accumulate(w for _, w in speakers))
        word = (weights[-1] if weights else 0.0) / spec.addressable_market
        joined = int(rng.binomial(remaining, min(1.0, spec.external_rate + word)))
        dom.market_used += joined
        for _ in range(joined):
            if rng.random() >= word / (spec.external_rate + word):
                dom.join(env, segments[draw(rng, cumulative)], "organic", day)
                dom.tally["organic_adds"] += 1
                continue
            fake = rng.random() < spec.fraud_share
            segment = dom.fraud if fake else segments[draw(rng, cumulative)]
            referrer = speakers[draw(rng, weights)][0]
            dom.join(env, segment, "referral", day, referrer=referrer.agent)
            referrer.invites += 1
            dom.tally["referral_adds"] += 1
            dom.tally["fraud_adds"] += fake
            dom.tally["spend_cny"] += spec.gift_per_invitee_cny + sum(
                t.gift_cny for t in spec.reward_tiers if t.invites == referrer.invites)


def one_to_one(env: simpy.Environment, dom: Domain) -> Process:
    """1:1 messages on the schedule's weekdays to the policy's stages."""
    spec, rng = dom.scenario.touch_policy.one_to_one, dom.rng["one_to_one"]
    stages = {STAGES.index(s) for s in spec.stages}
    for day in range(dom.calendar.days):
        yield at(env, day, ONE_TO_ONE)
        if dom.calendar.weekday[day] not in spec.schedule:
            continue
        for p in dom.people:
            if p.stage in stages and (spec.reach >= 1 or rng.random() < spec.reach):
                p.engagement += spec.uplift
                p.fatigue += spec.fatigue
                p.touches_one_to_one += 1


def posts(env: simpy.Environment, dom: Domain, kind: str, phase: float) -> Process:
    """Group (``kind="group"``) or moments posts: each viewed with the view rate, each
    view carrying the content mix's mean uplift and fatigue (fatigue stays >= 0)."""
    spec, rng = getattr(dom.scenario.touch_policy, kind), dom.rng[kind]
    uplift = sum(c.share * c.uplift for c in spec.content.values())
    fatigue = sum(c.share * c.fatigue for c in spec.content.values())
    for day in range(dom.calendar.days):
        yield at(env, day, phase)
        for p in dom.people:
            if p.stage == DELETED or (kind == "group" and not p.in_group):
                continue
            # posts seen, each with the view rate: one binomial draw for the day's posts
            views = int(rng.binomial(spec.posts_per_day, spec.view_rate))
            p.engagement += views * uplift
            p.fatigue = max(0.0, p.fatigue + views * fatigue)
            setattr(p, f"touches_{kind}", getattr(p, f"touches_{kind}") + views)


def recorder(env: simpy.Environment, dom: Domain) -> Process:
    """Close each day: stocks and flows into a row."""
    for day in range(dom.calendar.days):
        yield at(env, day, RECORDER)
        dom.record(day)


# -- running ------------------------------------------------------------------------------
def run_reference_replication(scenario: Scenario, seed: np.random.SeedSequence, *,
                              keep_agents: bool = True) -> Replication:
    """Simulate the scenario once, one process per consumer, into the frames of
    :func:`simdomain.sim.engine.run_replication` (``seed``'s streams are not the engine's)."""
    env, dom = simpy.Environment(), Domain(scenario, seed)
    rng = dom.rng["initial"]
    segments, cumulative = dom.mix("initial")
    for code, stage in enumerate(STAGES):
        for _ in range(getattr(scenario.initial_pool, stage)):
            dom.join(env, segments[draw(rng, cumulative)], "initial", BEFORE_START, stage=code)
    for spec in scenario.campaigns:
        env.process(campaign(env, dom, spec))
    for name in scenario.channels:
        env.process(channel(env, dom, name))
    if scenario.referral is not None:
        env.process(referral(env, dom))
    policy = scenario.touch_policy
    if policy.one_to_one.per_week > 0:
        env.process(one_to_one(env, dom))
    for kind, phase in [("group", GROUP), ("moments", MOMENTS)]:
        if getattr(policy, kind).posts_per_day > 0:
            env.process(posts(env, dom, kind, phase))
    env.process(recorder(env, dom))
    env.run(until=scenario.horizon_days)
    return dom.replication(keep_agents)


def simulate_reference(scenario: Scenario, seed: int = 0, reps: int = 1, *,
                       keep_agents: bool = True, workers: int = 1) -> SimulationResult:
    """:func:`simdomain.simulate` with the reference simulator instead of the engine;
    the KPIs and targets come from :mod:`simdomain.kpi`, as for the engine.

    Parameters
    ----------
    seed, reps, keep_agents
        As for :func:`simdomain.simulate`: replication ``r`` uses the ``r``-th child of
        ``SeedSequence(seed)``.
    workers
        Processes to run the replications in; the result does not depend on it.
    """
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    children = np.random.SeedSequence(seed).spawn(reps)
    run = functools.partial(run_reference_replication, scenario, keep_agents=keep_agents)
    if workers > 1:
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            runs = list(pool.map(run, children))
    else:
        runs = [run(child) for child in children]

    def stack(frames: list[pd.DataFrame | None]) -> pd.DataFrame:
        return pd.concat([f.assign(rep=r)[["rep", *f.columns]] for r, f in enumerate(frames)],
                         ignore_index=True)

    daily, channels = stack([r.daily for r in runs]), stack([r.channels for r in runs])
    monthly = kpi.monthly_kpis(daily, channels, stack([r.channel_members for r in runs]))
    return SimulationResult(
        scenario=scenario, seed=seed, reps=reps, daily=daily, channels=channels,
        monthly=monthly, targets=kpi.check_targets(scenario, daily, monthly),
        agents=stack([r.agents for r in runs]) if keep_agents else None,
    )
