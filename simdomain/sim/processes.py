"""SimPy processes of one replication; time is in days.

Within a day the processes run in a fixed order, set by their phase (the fraction of
the day at which they act): campaigns start and end, channels bring adds, referral
brings adds, touches go out, the lifecycle step runs, the recorder closes the day.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np
import simpy

from simdomain.scenario.model import Campaign
from simdomain.sim import steps
from simdomain.sim.policy import NO_POLICIES, Policies
from simdomain.sim.world import World, stream

Process = Generator[simpy.Event, None, None]

CAMPAIGNS, ACQUISITION, REFERRAL, TOUCHES, LIFECYCLE, RECORDER = (0.0, 0.1, 0.2, 0.3, 0.5, 0.9)


def start(env: simpy.Environment, world: World, on_day_closed: Callable[[int], None],
          policies: Policies = NO_POLICIES) -> None:
    """Register every process of the scenario in ``env``, with the ``policies`` handed in."""
    scenario = world.scenario
    for campaign in scenario.campaigns:
        env.process(campaign_window(env, world, campaign))
    for name in scenario.channels:
        env.process(acquisition(env, world, name))
    if scenario.referral is not None:
        env.process(referral(env, world))
    policy = scenario.touch_policy
    if policy.one_to_one.per_week > 0:
        env.process(one_to_one(env, world, policies))
    if policy.group.posts_per_day > 0:
        env.process(posts(env, world, "group"))
    if policy.moments.posts_per_day > 0:
        env.process(posts(env, world, "moments"))
    env.process(lifecycle(env, world))
    env.process(recorder(env, world, on_day_closed))


def every_day(env: simpy.Environment, phase: float, act: Callable[[int], None]) -> Process:
    """Call ``act(day)`` at ``phase`` of each day."""
    yield env.timeout(phase)
    while True:
        act(int(env.now))
        yield env.timeout(1)


def campaign_window(env: simpy.Environment, world: World, campaign: Campaign) -> Process:
    yield env.timeout(world.calendar.day_of(campaign.start) + CAMPAIGNS)
    world.set_campaign(campaign, running=True)
    yield env.timeout(campaign.days)
    world.set_campaign(campaign, running=False)


def acquisition(env: simpy.Environment, world: World, name: str) -> Process:
    """A channel's adds each day: its month's spend spread evenly over the month.

    With carry-over, the contacts still at work from earlier months (``carryover *
    e_(m-1)``, see :meth:`simdomain.scenario.model.Channel.working_contacts`) are spread
    over the month like bought ones and add at the same rate, at no cost.
    """
    rng = stream(world.seed, f"channel.{name}")
    channel = world.scenario.channels[name]
    code = world.layout.sources.index(name)
    segments, shares = world.mix(name)
    propensity = np.array([world.scenario.segments[world.layout.segments[g]].propensity.add
                           for g in segments]) * channel.propensity.add
    cal = world.calendar
    working = channel.working_contacts(int(cal.month[-1]) + 1)

    offset = carry_offset = 0.0

    def spread(total: float, k: int, length: int, shift: float) -> int:
        # Systematic rounding: whole contacts per day whose running total over the month
        # never exceeds the month's (fractional) contacts rounded with one uniform offset.
        return int(np.floor(total * (k + 1) / length + shift) - np.floor(total * k / length + shift))

    def bring(day: int) -> None:
        nonlocal offset, carry_offset
        month = cal.month[day]
        planned = channel.spend_in_month(int(month))
        contacts_month = channel.contacts(planned)
        carried_month = working[month] - contacts_month
        length = cal.month_length[month]
        spend = contacts_month * channel.cost_per_contact_cny / length
        if cal.first_of_month(day):
            offset = rng.random()
            if carried_month > 0:
                carry_offset = rng.random()
            if planned > 0:
                staff = channel.staff
                spend += channel.fixed_cost_cny + (
                    staff.accounts * staff.monthly_cost_per_account_cny if staff else 0.0
                )
        k = cal.day_in_month[day]
        contacts = spread(contacts_month, k, length, offset)
        carried = spread(carried_month, k, length, carry_offset) if carried_month > 0 else 0
        adds_by_segment = np.zeros(len(segments), dtype=np.int64)
        if contacts + carried > 0:
            at_work = working[month]
            per_contact = channel.add_rate * channel.effective_contacts(at_work) / at_work
            p = np.minimum(per_contact * world.adds_multiplier(name) * propensity, 1.0)
            adds_by_segment = rng.binomial(rng.multinomial(contacts + carried, shares), p)
        if channel.free_adds_per_month > 0:
            free = rng.poisson(channel.free_adds_per_month / length * world.adds_multiplier(name))
            adds_by_segment += rng.multinomial(free, shares)
        if channel.staff is not None and adds_by_segment.sum() > channel.staff.daily_capacity:
            adds_by_segment = rng.multivariate_hypergeometric(
                adds_by_segment, channel.staff.daily_capacity)
        world.join(np.repeat(segments, adds_by_segment), source=code, day=day, rng=rng)
        world.tally["spend_cny"] += spend
        world.channel_rows.append((day, code, spend, contacts, int(adds_by_segment.sum())))

    return every_day(env, ACQUISITION, bring)


def referral(env: simpy.Environment, world: World) -> Process:
    rng = stream(world.seed, "referral")
    return every_day(env, REFERRAL, lambda day: steps.referral(world, day, rng))


def one_to_one(env: simpy.Environment, world: World, policies: Policies) -> Process:
    rng = stream(world.seed, "touch.one_to_one")
    schedule = set(world.scenario.touch_policy.one_to_one.schedule)

    def send(day: int) -> None:
        if world.calendar.weekday[day] in schedule:
            steps.one_to_one(world, rng, policies.one_to_one)

    return every_day(env, TOUCHES, send)


def posts(env: simpy.Environment, world: World, channel: str) -> Process:
    rng = stream(world.seed, f"touch.{channel}")
    return every_day(env, TOUCHES, lambda day: steps.posts(world, channel, rng))


def lifecycle(env: simpy.Environment, world: World) -> Process:
    rng = stream(world.seed, "lifecycle")

    def step(day: int) -> None:
        steps.lifecycle(world, day, rng)
        steps.decay(world)

    return every_day(env, LIFECYCLE, step)


def recorder(env: simpy.Environment, world: World, on_day_closed: Callable[[int], None]) -> Process:
    def close(day: int) -> None:
        world.close_day(day)
        on_day_closed(day)

    return every_day(env, RECORDER, close)
