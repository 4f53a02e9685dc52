"""Run replications of a scenario and gather their frames."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from simdomain.scenario.model import STAGES, Scenario
from simdomain.sim import processes
from simdomain.sim.policy import NO_POLICIES, Policies
from simdomain.sim.population import BEFORE_START, MULTIPLIERS, STAGE_NAMES, InitialPeople
from simdomain.sim.steps import chunks
from simdomain.sim.world import TALLIES, World, stream


@dataclass
class Replication:
    """The raw output of one replication.

    ``orders`` (if kept) has one row per order booked in the simulation, first orders
    included: ``agent`` (the agents frame's row), ``day`` and ``amount_cny``, by day.
    """

    daily: pd.DataFrame
    channels: pd.DataFrame
    channel_members: pd.DataFrame
    agents: pd.DataFrame | None
    snapshots: pd.DataFrame | None
    orders: pd.DataFrame | None = None


DAILY_COLUMNS = ["day", *STAGE_NAMES, "dormant", *TALLIES]


def run_replication(
    scenario: Scenario,
    seed: np.random.SeedSequence,
    *,
    keep_agents: bool = True,
    observe_days: Collection[int] = (),
    on_day: Callable[[], None] = lambda: None,
    initial: InitialPeople | None = None,
    keep_orders: bool = False,
    policies: Policies = NO_POLICIES,
) -> Replication:
    """Simulate the scenario once with the streams derived from ``seed``.

    ``observe_days`` are days at whose end every person's state is copied into
    ``snapshots`` (for training models on what was known on a day). ``initial`` are the
    people known at the start, who replace the scenario's ``initial_pool`` counts (see
    :class:`~simdomain.sim.population.InitialPeople`); ``keep_orders`` keeps the order
    log. The agents frame (and snapshots) carry the columns ``order_multiplier``,
    ``dormancy_multiplier`` and ``deletion_multiplier`` when any multiplier is in use.
    ``policies`` are the touch policies built above the engine that the scenario asks
    for (see :mod:`simdomain.sim.policy`); a missing one raises ``ValueError``.
    """
    policies.check(scenario)
    world = World(scenario, seed, initial=initial, keep_orders=keep_orders)
    if initial is None:
        seed_initial_pool(world)
    else:
        seed_initial_people(world, initial)
    env = simpy.Environment()
    layout = world.layout

    def frame() -> pd.DataFrame:
        return world.pop.to_frame(layout.segments, layout.sources, world.heterogeneous)

    snapshots = []

    def close_day(day: int) -> None:
        if day in observe_days:
            snapshots.append(frame().assign(day=day))
        on_day()

    processes.start(env, world, close_day, policies)
    env.run(until=scenario.horizon_days)
    return Replication(
        daily=_daily_frame(world),
        channels=_channel_frame(world),
        channel_members=_channel_members(world),
        agents=frame() if keep_agents else None,
        snapshots=pd.concat(snapshots, ignore_index=True) if snapshots else None,
        orders=None if world.order_log is None else _order_frame(world),
    )


def seed_initial_pool(world: World) -> None:
    """Place the initial pool, segments drawn from their shares, before day 0."""
    scenario = world.scenario
    rng = stream(world.seed, "initial")
    segments, shares = world.mix("initial")
    for stage_code, stage in enumerate(STAGES):
        count = getattr(scenario.initial_pool, stage)
        if count:
            people = np.repeat(segments, rng.multinomial(count, shares))
            world.join(rng.permutation(people), source=world.layout.initial, day=BEFORE_START,
                       rng=rng, stage=stage_code)


def seed_initial_people(world: World, initial: InitialPeople) -> None:
    """Place the people known at the start, in their order, with their history.

    Raises
    ------
    InputError
        If a field is malformed (see :meth:`InitialPeople.resolve`).
    """
    fields = initial.resolve(list(world.scenario.segments), world.layout.sources)
    rng = stream(world.seed, "initial")
    index = world.join(
        fields["segment"], source=fields["source"], day=fields["join_day"], rng=rng,
        stage=fields["stage"], dormant=fields.get("dormant", False),
        in_group=fields.get("in_group"),
        multipliers={name: fields[name] for name in MULTIPLIERS if name in fields})
    pop = world.pop
    for name in ("orders", "gmv_cny", "first_order_day", "last_order_day", "member_day",
                 "koc_day"):
        if name in fields:
            pop.put(name, index, fields[name])


def _order_frame(world: World) -> pd.DataFrame:
    log = world.order_log
    return pd.DataFrame({
        "agent": np.concatenate([who for who, _, _ in log]) if log else np.empty(0, np.int64),
        "day": np.repeat([day for _, day, _ in log],
                         [len(who) for who, _, _ in log]).astype(np.int32),
        "amount_cny": np.concatenate([v for _, _, v in log]) if log else np.empty(0),
    })


def _daily_frame(world: World) -> pd.DataFrame:
    frame = pd.DataFrame(world.daily_rows, columns=DAILY_COLUMNS)
    counts = ["day", *STAGE_NAMES, "dormant", *(t for t in TALLIES if t not in ("gmv_cny", "spend_cny"))]
    frame[counts] = frame[counts].astype(np.int64)
    frame.insert(1, "date", [world.calendar.start + pd.Timedelta(days=d) for d in frame["day"]])
    frame["date"] = pd.to_datetime(frame["date"])
    frame.insert(frame.columns.get_loc("deleted") + 1, "pool",
                 frame[list(STAGES)].sum(axis=1))
    return frame


def _channel_frame(world: World) -> pd.DataFrame:
    frame = pd.DataFrame(world.channel_rows, columns=["day", "channel", "spend_cny", "contacts", "adds"])
    frame["channel"] = pd.Categorical.from_codes(frame["channel"].astype(int),
                                                 categories=world.layout.sources)
    return frame.sort_values(["day", "channel"], kind="stable").reset_index(drop=True)


def _channel_members(world: World) -> pd.DataFrame:
    """New members per month by the channel that brought them."""
    pop, cal, sources = world.pop, world.calendar, world.layout.sources
    member_day = pop.stored("member_day")  # as stored: NEVER (in any dtype) is below 0
    cell = (cal.month * len(sources)).astype(np.int32)  # the month's first cell, by day
    counts = np.zeros(len(cal.labels) * len(sources), dtype=np.int64)
    for part in chunks(pop.n):  # by chunks: small work arrays
        joined = np.flatnonzero(member_day[part] >= 0) + part.start
        counts += np.bincount(cell[member_day[joined]] + pop.at("source", joined),
                              minlength=counts.size)
    frame = pd.DataFrame({
        "month": np.repeat(cal.labels, len(sources)),
        "channel": np.tile(sources, len(cal.labels)),
        "new_members": counts,
    })
    return frame
