"""``simulate``: replications of a scenario, as tidy frames with KPIs and targets.

Replications run in this process, or split by person into shards (see
:mod:`simdomain.shards`) that run on a :class:`~simdomain.workers.Cluster` and are merged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simdomain import kpi
from simdomain.scenario.model import Scenario
from simdomain.shards import MAX_SHARDS, merge, shard_people, shard_scenario, shard_seed, shard_twin
from simdomain.sim.engine import Replication, run_replication
from simdomain.sim.policy import NO_POLICIES, Policies
from simdomain.sim.population import InitialPeople
from simdomain.sim.world import stream
from simdomain.twin.people import Mode, TwinPeople
from simdomain.workers import Cluster, InProcess


@dataclass
class SimulationResult:
    """What :func:`simulate` returns; every frame has a ``rep`` column.

    Attributes
    ----------
    daily
        Per replication and day: people per stage (``pool`` = not deleted), dormant,
        and the day's flows (adds, new customers/members/KOCs, deletions, orders, GMV,
        spend).
    channels
        Per replication, day and channel: spend, contacts and adds.
    monthly
        Tidy monthly KPIs (see :mod:`simdomain.kpi`): ``rep, month, kpi, channel, value``.
    targets
        Each north-star target per replication and period: ``value, goal, met``.
    agents
        One row per person and replication with their history, if kept.
    snapshots
        Every person's state at the end of each observed day (``day`` column), if asked.
    orders
        One row per order booked (``rep, agent, day, amount_cny``), if asked.
    """

    scenario: Scenario
    seed: int
    reps: int
    daily: pd.DataFrame
    channels: pd.DataFrame
    monthly: pd.DataFrame
    targets: pd.DataFrame
    agents: pd.DataFrame | None = field(default=None, repr=False)
    snapshots: pd.DataFrame | None = field(default=None, repr=False)
    orders: pd.DataFrame | None = field(default=None, repr=False)
    draws: list[int] | None = None
    """For a twin: the parameter draw of each replication (0 = the point estimates)."""
    shards: int = 1
    """Shards the population was split into (see :mod:`simdomain.shards`)."""

    def summary(self, level: float = 0.9) -> dict[str, Any]:
        """Mean and central ``level`` interval of each KPI per month, and each target's
        chance of being met over the replications."""
        kpis = []
        for (month, name, channel), values in self.monthly.groupby(
                ["month", "kpi", "channel"], sort=True)["value"]:
            mean, low, high = kpi.interval(values.dropna(), level)
            kpis.append({"month": month, "kpi": name, "channel": channel,
                         "mean": _finite(mean), "low": _finite(low), "high": _finite(high)})
        targets = []
        for (name, period), group in self.targets.groupby(["target", "period"], sort=False):
            mean, low, high = kpi.interval(group["value"], level)
            targets.append({"target": name, "period": period, "goal": float(group["goal"].iloc[0]),
                            "mean": _finite(mean), "low": _finite(low), "high": _finite(high),
                            "probability_met": float(group["met"].mean())})
        out = {"scenario": self.scenario.name, "seed": self.seed, "reps": self.reps,
               "interval": level, "kpis": kpis, "targets": targets}
        if self.shards > 1:
            out["shards"] = self.shards
        if self.draws is not None:
            out["parameter_draws"] = self.draws
            out["spread"] = self.spread().to_dict(orient="records")
        return out

    def spread(self) -> pd.DataFrame:
        """For a twin: per KPI over the horizon, the share of the spread between
        replications that parameter uncertainty explains (the rest is chance)."""
        if self.draws is None:
            raise ValueError("only a twin's replications carry parameter draws")
        totals = kpi.horizon_kpis(self.monthly)
        draw_of = np.asarray(self.draws)
        rows = []
        for name, group in totals.groupby("kpi", sort=True):
            share = kpi.parameter_share(group["value"].to_numpy(float),
                                        draw_of[group["rep"].to_numpy()])
            rows.append({"kpi": name, "std": float(group["value"].std(ddof=1)),
                         "parameter_share": share})
        return pd.DataFrame(rows)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def simulate(
    scenario: Scenario,
    *,
    seed: int = 0,
    reps: int = 1,
    keep_agents: bool = True,
    observe_days: Collection[int] = (),
    progress: bool | None = False,
    initial: InitialPeople | Callable[[int], InitialPeople] | None = None,
    keep_orders: bool = False,
    parameters: Mode = "posterior",
    policies: Policies | None = None,
    shards: int = 1,
    cluster: Cluster | None = None,
) -> SimulationResult:
    """Simulate ``reps`` independent replications of ``scenario``.

    Parameters
    ----------
    scenario
        A validated scenario (see :func:`simdomain.load_scenario`).
    seed
        Root seed; replication ``r`` uses the ``r``-th stream spawned from it, so the
        same seed gives identical frames and replication ``r`` does not depend on how
        many others run.
    reps
        Number of replications.
    keep_agents
        Keep the per-person table (memory grows with people x replications).
    observe_days
        Days at whose end every person's state is copied into ``snapshots``.
    progress
        Show a progress bar over days x replications; ``None`` shows it on a terminal.
    initial
        People known at the start, replacing the scenario's ``initial_pool``: the same
        in every replication, or a function of the replication number (to draw each
        replication's latent state).
    keep_orders
        Keep the order log (one row per order).
    parameters
        For a twin (a scenario with ``population``): ``posterior`` draws a parameter set
        per replication (``population.reps_per_draw`` replications share one), ``point``
        uses the point estimates in every replication.
    policies
        Touch policies for the engine (see :mod:`simdomain.sim.policy`); by default the
        ones the scenario asks for, built by :func:`simdomain.models.targeting.policies_for`
        (on each worker, when sharded; policies given must then pickle).
    shards
        Split the population by person into this many shards, each simulating ``1/shards``
        of the world (:func:`simdomain.shards.shard_scenario`), and merge them. The same
        seed and number of shards give the same frames whatever runs them; one shard on
        a ``cluster`` gives the unsharded frames.
    cluster
        Where the shards run (see :func:`simdomain.workers.open_cluster`); by default one
        after the other in this process.
    """
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be from 1 to {MAX_SHARDS}, got {shards}")
    engine = {"keep_agents": keep_agents, "observe_days": frozenset(observe_days),
              "keep_orders": keep_orders}
    if shards > 1 or cluster is not None:
        if callable(initial):
            raise ValueError("sharded runs take the known people as data, not a function")
        runs, draws = _sharded(scenario, seed, reps, shards, cluster or InProcess(), engine,
                               initial=initial, parameters=parameters, policies=policies,
                               progress=progress)
    else:
        runs, draws = [], []
        policies = _policies(scenario) if policies is None else policies
        twin = TwinPeople.of(scenario) if scenario.population is not None else None
        with tqdm(total=reps * scenario.horizon_days, unit="day", desc=scenario.name,
                  disable=None if progress is None else not progress, leave=False) as bar:
            for rep in range(reps):
                bar.set_postfix(rep=f"{rep + 1}/{reps}")
                run, draw = _replicate(
                    scenario, shard_seed(seed, rep, 0, 1), rep=rep, seed=seed, twin=twin,
                    initial=initial(rep) if callable(initial) else initial,
                    parameters=parameters, policies=policies, on_day=bar.update, **engine)
                runs.append(run)
                if draw is not None:
                    draws.append(draw)

    def stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat([f.assign(rep=r)[["rep", *f.columns]] for r, f in enumerate(frames)],
                         ignore_index=True)

    daily = stack([r.daily for r in runs])
    channels = stack([r.channels for r in runs])
    monthly = kpi.monthly_kpis(daily, channels, stack([r.channel_members for r in runs]))
    return SimulationResult(
        scenario=scenario, seed=seed, reps=reps, daily=daily, channels=channels,
        monthly=monthly, targets=kpi.check_targets(scenario, daily, monthly),
        agents=stack([r.agents for r in runs]) if keep_agents else None,
        snapshots=stack([r.snapshots for r in runs]) if observe_days else None,
        orders=stack([r.orders for r in runs]) if keep_orders else None,
        draws=draws or None, shards=shards,
    )


def _policies(scenario: Scenario) -> Policies:
    """The policies the scenario asks for."""
    if scenario.touch_policy.one_to_one.targeting is None:
        return NO_POLICIES
    from simdomain.models.targeting import policies_for  # the models load only if asked
    return policies_for(scenario)


def _replicate(scenario: Scenario, child: np.random.SeedSequence, *, rep: int, seed: int,
               twin: TwinPeople | None, initial: InitialPeople | None, parameters: Mode,
               policies: Policies, shard: int = 0, shards: int = 1,
               on_day: Callable[[], None] = lambda: None,
               **engine: Any) -> tuple[Replication, int | None]:
    """One replication (or one shard of it) with the streams of ``child``; the twin's
    parameter draw it used, if any."""
    run_scenario, draw = scenario, None
    if twin is not None and initial is None:
        draw = twin.draw_for(rep, seed, parameters)
        run_scenario = twin.scenario_for(scenario, draw)
        initial = InitialPeople(**twin.initial(run_scenario, draw, stream(child, "twin")))
    run = run_replication(shard_scenario(run_scenario, shard, shards), child, initial=initial,
                          policies=policies, on_day=on_day, **engine)
    return run, draw


@dataclass(frozen=True)
class ShardTask:
    """One shard of one replication: all a worker needs to simulate it."""

    scenario: Scenario
    seed: int
    rep: int
    shard: int
    shards: int
    engine: dict[str, Any]
    """``keep_agents``, ``observe_days`` and ``keep_orders``."""
    parameters: Mode
    initial: InitialPeople | None
    """The shard's part of the known people given (not a twin's: the worker reads those)."""
    policies: Policies | None


def run_shard(task: ShardTask) -> tuple[int, int, Replication, int | None]:
    """Simulate one shard (in a worker); return its replication, shard, frames and the
    twin's parameter draw (if any)."""
    scenario = task.scenario
    twin = None
    if scenario.population is not None and task.initial is None:
        twin = shard_twin(scenario, task.shard, task.shards)
    run, draw = _replicate(
        scenario, shard_seed(task.seed, task.rep, task.shard, task.shards), rep=task.rep,
        seed=task.seed, twin=twin, initial=task.initial, parameters=task.parameters,
        policies=_policies(scenario) if task.policies is None else task.policies,
        shard=task.shard, shards=task.shards, **task.engine)
    return task.rep, task.shard, run, draw


def _sharded(scenario: Scenario, seed: int, reps: int, shards: int, cluster: Cluster,
             engine: dict[str, Any], *, initial: InitialPeople | None, parameters: Mode,
             policies: Policies | None,
             progress: bool | None) -> tuple[list[Replication], list[int]]:
    """Every shard of every replication on ``cluster``; each replication merged as soon as
    its shards are in (so the shards' frames are not all held at once)."""
    if scenario.population is not None:  # workers elsewhere have another working folder
        files = scenario.population
        scenario = scenario.model_copy(update={"population": files.model_copy(update={
            "people": os.path.abspath(files.people),
            "parameters": files.parameters and os.path.abspath(files.parameters)})})
    tasks = [ShardTask(scenario, seed, rep, shard, shards, engine, parameters,
                       None if initial is None else shard_people(initial, shard, shards),
                       policies)
             for rep in range(reps) for shard in range(shards)]
    futures = [cluster.submit(run_shard, task) for task in tasks]
    finished = cluster.as_completed(futures)
    pending = set(futures)  # only the unfinished are held: a result is freed once merged
    del futures, tasks
    parts: dict[int, dict[int, Replication]] = {}
    runs: dict[int, Replication] = {}
    draws: dict[int, int] = {}
    try:
        with tqdm(total=len(pending), unit="shard", desc=scenario.name,
                  disable=None if progress is None else not progress, leave=False) as bar:
            for future in finished:
                pending.discard(future)
                rep, shard, run, draw = future.result()
                del future
                got = parts.setdefault(rep, {})
                got[shard] = run
                if draw is not None:
                    draws[rep] = draw
                if len(got) == shards:
                    runs[rep] = merge([got[s] for s in range(shards)])
                    del parts[rep]
                bar.update()
    except BaseException:
        cluster.cancel(list(pending))
        raise
    return [runs[rep] for rep in range(reps)], [draws[rep] for rep in sorted(draws)]
