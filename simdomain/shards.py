"""A population split by person into shards, each simulated on its own, and merged.

Shard ``s`` of ``N`` simulates ``1/N`` of the world: :func:`shard_scenario` scales every
extensive quantity of the scenario by ``1/N`` and keeps every intensive one (rates,
propensities, prices, the touch policy). People known at the start (a twin's, or given as
:class:`~simdomain.sim.population.InitialPeople`) are split by row: row ``i`` goes to
shard ``i mod N``. Each shard draws from its own streams (:func:`shard_seed`), so a task
depends only on the root seed, the replication, the shard and ``N``: the same seed and
shard count give the same outputs however many workers run them. :func:`merge` adds the
shards' daily stocks and flows and channel rows, and concatenates their people with
ids made unique.

What is exact and what is not (``docs/sharding.md`` says it at length):

- exact: everything per person (orders, upgrades, dormancy, deletion, touches, their
  heterogeneity); spend, contacts' cost, fixed, staff and campaign costs (up to float
  rounding); the initial pool's counts (split as whole numbers that add up); free adds
  (a sum of Poissons is the Poisson of the sum); channel adds given the contacts (a sum
  of binomials with one rate); saturation, since ``S/N (1 - exp(-(c/N)/(S/N)))`` is
  ``1/N`` of ``S (1 - exp(-c/S))``.
- approximate: staff capacity is split (whole adds a day that add up) and clipped per
  shard, which clips at least as much as on the total when one shard's adds exceed its
  part and another's fall short; each shard rounds its own contacts to whole ones a day;
  word of mouth stays within a shard (its people refer people of its part of the
  market, at the rate ``W_s / M_s``, the whole's ``W / M`` in expectation) and a
  targeted 1:1 policy ranks people within their shard.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simdomain.errors import InputError, Problem
from simdomain.scenario.io import validate_scenario
from simdomain.scenario.model import Scenario
from simdomain.sim.engine import Replication
from simdomain.sim.population import NOBODY, STAGE_NAMES, InitialPeople
from simdomain.twin.people import PEOPLE_COLUMNS, TwinPeople

MAX_SHARDS = 4096
"""Most shards of one population."""
BATCH_ROWS = 1 << 16
"""Rows of a twin's people file read at a time (a shard keeps only its own)."""


def part(total: int, shard: int, shards: int) -> int:
    """Shard ``shard``'s whole part of ``total``: the parts of all shards add up to it
    (the first ``total mod shards`` get one more), as rows ``i mod shards`` do."""
    return total // shards + (shard < total % shards)


def shard_seed(seed: int, rep: int, shard: int, shards: int) -> np.random.SeedSequence:
    """The streams of shard ``shard`` of ``shards`` in replication ``rep``.

    With one shard, replication ``rep``'s own (the ``rep``-th child of
    ``SeedSequence(seed)``), so one shard is the unsharded run; else a spawn key
    ``(rep, shards, shard)`` that no unsharded stream has.
    """
    key = (rep,) if shards == 1 else (rep, shards, shard)
    return np.random.SeedSequence(seed, spawn_key=key)


def shard_scenario(scenario: Scenario, shard: int, shards: int) -> Scenario:
    """The scenario of one shard: ``1/shards`` of every extensive quantity.

    Money (monthly spend, fixed, staff and campaign costs, budgets, the planner's spend
    bounds), free adds, saturation and carried contacts are divided; whole counts (the
    initial pool by stage, contact capacity, staff's daily capacity, the referral
    market) are split into whole parts that add up (:func:`part`). A channel's staff
    becomes its shard's daily capacity in accounts of one add a day, their cost moving
    to the channel's fixed cost (charged in the same months). Rates, propensities, prices,
    the touch policy, campaign windows and targets are unchanged. One shard is the
    scenario itself.
    """
    if shards == 1:
        return scenario
    n = float(shards)
    raw: dict[str, Any] = scenario.model_dump(mode="json")
    raw["initial_pool"] = {stage: part(count, shard, shards)
                           for stage, count in raw["initial_pool"].items()}
    for channel in raw["channels"].values():
        spend = channel["monthly_spend_cny"]
        channel["monthly_spend_cny"] = ([x / n for x in spend] if isinstance(spend, list)
                                        else spend / n)
        for name in ("saturation_contacts", "max_spend_cny"):
            if channel.get(name) is not None:
                channel[name] = channel[name] / n
        for name in ("carried_contacts", "min_spend_cny", "free_adds_per_month"):
            if name in channel:
                channel[name] = channel[name] / n
        if channel.get("max_contacts_per_month") is not None:
            channel["max_contacts_per_month"] = part(channel["max_contacts_per_month"],
                                                     shard, shards)
        staff_cost = 0.0
        if channel.get("staff") is not None:
            staff = channel["staff"]
            staff_cost = staff["accounts"] * staff["monthly_cost_per_account_cny"]
            capacity = int(staff["accounts"] * staff["adds_per_account_per_day"])
            channel["staff"] = {"accounts": part(capacity, shard, shards),
                                "adds_per_account_per_day": 1.0,
                                "monthly_cost_per_account_cny": 0.0}
        channel["fixed_cost_cny"] = (channel["fixed_cost_cny"] + staff_cost) / n
    if raw.get("referral") is not None:
        referral = raw["referral"]
        referral["addressable_market"] = part(referral["addressable_market"], shard, shards)
    for campaign in raw["campaigns"]:
        campaign["cost_cny"] = campaign["cost_cny"] / n
    for name, value in raw["budget"].items():
        if value is not None:
            raw["budget"][name] = value / n
    return validate_scenario(raw, f"{scenario.name} (shard {shard} of {shards})")


def shard_people(initial: InitialPeople, shard: int, shards: int) -> InitialPeople:
    """Rows ``shard, shard + shards, ...`` of the known people."""
    if shards == 1:
        return initial
    fields = {f.name: getattr(initial, f.name) for f in dataclasses.fields(initial)}
    return InitialPeople(**{name: None if value is None else value[shard::shards]
                            for name, value in fields.items()})


def shard_twin(scenario: Scenario, shard: int, shards: int) -> TwinPeople:
    """A twin's parameter draws and the rows ``i mod shards == shard`` of its people,
    read a batch at a time so that only the shard's rows are ever held.

    Raises
    ------
    InputError
        If a file cannot be read or lacks a column.
    """
    files = scenario.population
    assert files is not None
    if shards == 1:
        return TwinPeople.of(scenario)
    try:
        source = pq.ParquetFile(files.people)
        missing = [c for c in PEOPLE_COLUMNS if c not in source.schema_arrow.names]
        if missing:
            raise InputError([Problem(files.people, (), f"the twin's people lack the "
                                                        f"columns {missing}")])
        batches, first = [], 0
        for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=list(PEOPLE_COLUMNS)):
            start = (shard - first) % shards
            batches.append(batch.take(pa.array(np.arange(start, batch.num_rows, shards))))
            first += batch.num_rows
        schema = source.schema_arrow
        table = pa.Table.from_batches(batches, schema=pa.schema(
            [schema.field(c) for c in PEOPLE_COLUMNS]) if not batches else None)
        parameters = (None if files.parameters is None
                      else pd.read_parquet(files.parameters))
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InputError([Problem(files.people, (), f"cannot read the twin's files: "
                                                    f"{exc}")]) from None
    if parameters is not None and "draw" not in parameters:
        raise InputError([Problem(files.parameters, (), "the twin's parameters lack the "
                                                        "columns ['draw']")])
    return TwinPeople(table.to_pandas(), parameters, files.reps_per_draw)


def merge(parts: list[Replication]) -> Replication:
    """One replication from its shards' (in shard order).

    Daily stocks and flows, channel rows and new members by channel are added up (each
    shard has the same days, channels and months in the same order); people are
    concatenated shard after shard, ``agent`` (and ``referrer``, in the agents,
    snapshots and order log) shifted by the people of the shards before, so ids are
    unique and referrers point at their rows. Snapshots and orders are kept in day order.
    """
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    people = [_people(p.daily) for p in parts]
    offsets = np.concatenate([[0], np.cumsum(people)[:-1]])
    return Replication(
        daily=_add(first.daily, [p.daily for p in parts], keep=("day", "date")),
        channels=_add(first.channels, [p.channels for p in parts], keep=("day", "channel")),
        channel_members=_add(first.channel_members, [p.channel_members for p in parts],
                             keep=("month", "channel")),
        agents=_stack([p.agents for p in parts], offsets),
        snapshots=_stack([p.snapshots for p in parts], offsets, by_day=True),
        orders=_stack([p.orders for p in parts], offsets, by_day=True),
    )


def _people(daily: pd.DataFrame) -> int:
    """Everyone who was ever in a shard: its last day's people in every stage, deleted
    included."""
    return int(daily[list(STAGE_NAMES)].iloc[-1].sum()) if len(daily) else 0


def _add(template: pd.DataFrame, frames: list[pd.DataFrame], keep: tuple[str, ...]) -> pd.DataFrame:
    """``template`` with every column but ``keep`` summed over ``frames`` (same rows)."""
    out = template.copy()
    for frame in frames[1:]:
        if len(frame) != len(out) or not all(frame[k].equals(out[k]) for k in keep):
            raise ValueError(f"shards disagree on their rows ({', '.join(keep)})")
    for column in out.columns.drop(list(keep)):
        out[column] = sum(f[column].to_numpy() for f in frames[1:]) + out[column].to_numpy()
    return out


def _stack(frames: list[pd.DataFrame | None], offsets: np.ndarray,
           by_day: bool = False) -> pd.DataFrame | None:
    if frames[0] is None:
        return None
    shifted = []
    for frame, offset in zip(frames, offsets):
        frame = frame.copy()
        frame["agent"] += offset
        if "referrer" in frame:
            frame["referrer"] = np.where(frame["referrer"] != NOBODY,
                                         frame["referrer"] + offset, NOBODY)
        shifted.append(frame)
    out = pd.concat(shifted, ignore_index=True)
    if by_day:
        out = out.sort_values("day", kind="stable", ignore_index=True)
    return out
