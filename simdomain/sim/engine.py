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
from simdomain.sim.population import NEVER, STAGE_NAMES
from simdomain.sim.world import TALLIES, World, stream


@dataclass
class Replication:
    """The raw output of one replication."""

    daily: pd.DataFrame
    channels: pd.DataFrame
    channel_members: pd.DataFrame
    agents: pd.DataFrame | None
    snapshots: pd.DataFrame | None


DAILY_COLUMNS = ["day", *STAGE_NAMES, "dormant", *TALLIES]


def run_replication(
    scenario: Scenario,
    seed: np.random.SeedSequence,
    *,
    keep_agents: bool = True,
    observe_days: Collection[int] = (),
    on_day: Callable[[], None] = lambda: None,
    policies: Policies = NO_POLICIES,
) -> Replication:
    """Simulate the scenario once with the streams derived from ``seed``.

    ``observe_days`` are days at whose end every person's state is copied into
    ``snapshots`` (for training models on what was known on a day). ``policies`` are
    the touch policies built above the engine that the scenario asks for (see
    :mod:`simdomain.sim.policy`); a missing one raises ``ValueError``.
    """
    policies.check(scenario)
    world = World(scenario, seed)
    seed_initial_pool(world)
    env = simpy.Environment()
    layout = world.layout
    snapshots = []

    def close_day(day: int) -> None:
        if day in observe_days:
            snapshots.append(world.pop.to_frame(layout.segments, layout.sources).assign(day=day))
        on_day()

    processes.start(env, world, close_day, policies)
    env.run(until=scenario.horizon_days)
    return Replication(
        daily=_daily_frame(world),
        channels=_channel_frame(world),
        channel_members=_channel_members(world),
        agents=world.pop.to_frame(layout.segments, layout.sources) if keep_agents else None,
        snapshots=pd.concat(snapshots, ignore_index=True) if snapshots else None,
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
            world.join(rng.permutation(people), source=world.layout.initial, day=NEVER,
                       rng=rng, stage=stage_code)


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
    joined = np.flatnonzero(pop.member_day >= 0)
    month = cal.month[pop.member_day[joined]]
    counts = np.bincount(month * len(sources) + pop.source[joined],
                         minlength=len(cal.labels) * len(sources))
    frame = pd.DataFrame({
        "month": np.repeat(cal.labels, len(sources)),
        "channel": np.tile(sources, len(cal.labels)),
        "new_members": counts,
    })
    return frame
