"""One replication's state: the population, its calendar, rates, streams and tallies."""

from __future__ import annotations

import bisect
import datetime as dt
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simdomain.scenario.model import Campaign, Scenario
from simdomain.sim.population import (
    DELETED,
    FIELDS,
    HISTORY_DAYS,
    KOC,
    MEMBER,
    MULTIPLIERS,
    NEVER,
    NOBODY,
    STAGE_NAMES,
    InitialPeople,
    Population,
)
from simdomain.sim.rates import (
    Layout,
    RateTables,
    build_rates,
    key_fields,
    lognormal_params,
    state_key,
)
from simdomain.sim.thinning import Strata

TALLIES = (
    "new_adds",
    "organic_adds",
    "referral_adds",
    "fraud_adds",
    "new_customers",
    "new_members",
    "new_kocs",
    "deletions",
    "orders",
    "member_orders",
    "gmv_cny",
    "spend_cny",
)
"""Daily flows, reset by the recorder at the end of each day."""


@dataclass(frozen=True)
class Calendar:
    """Day numbers mapped to calendar months and weekdays."""

    start: dt.date
    days: int
    month: np.ndarray = field(repr=False)
    """Month index (0 = the start date's month) of each day."""
    weekday: np.ndarray = field(repr=False)
    labels: list[str] = field(repr=False)
    """``YYYY-MM`` of each month index."""
    month_length: np.ndarray = field(repr=False)
    """Calendar days in each month (monthly spend is spread over them)."""
    day_in_month: np.ndarray = field(repr=False)
    """Day of the month of each day, from 0."""

    @classmethod
    def of(cls, start: dt.date, days: int) -> Calendar:
        dates = [start + dt.timedelta(days=d) for d in range(days)]
        month = np.array([(x.year - start.year) * 12 + x.month - start.month for x in dates])
        labels, lengths = [], []
        for m in range(int(month[-1]) + 1):
            first = dt.date(start.year + (start.month - 1 + m) // 12, (start.month - 1 + m) % 12 + 1, 1)
            following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            labels.append(f"{first:%Y-%m}")
            lengths.append((following - first).days)
        weekday = np.array([x.weekday() for x in dates])
        day_in_month = np.array([x.day - 1 for x in dates])
        return cls(start, days, month, weekday, labels, np.array(lengths), day_in_month)

    def day_of(self, date: dt.date) -> int:
        return (date - self.start).days

    def first_of_month(self, day: int) -> bool:
        """Whether ``day`` is the first simulated day of its month."""
        return day == 0 or self.month[day] != self.month[day - 1]


def stream(seed: np.random.SeedSequence, name: str) -> np.random.Generator:
    """A generator for one named process, independent of every other name.

    Derived from the name (not from a position), so adding a channel to a scenario
    leaves the other processes' draws unchanged (common random numbers).
    """
    child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, zlib.crc32(name.encode())))
    return np.random.default_rng(child)


def expected_people(scenario: Scenario, known: int | None = None) -> int:
    """An estimate of the people channels bring (to size arrays; referral grows them),
    plus the initial pool or the ``known`` people who replace it."""
    months = Calendar.of(scenario.start_date, scenario.horizon_days).month_length
    total = scenario.initial_pool.total if known is None else known
    for name, channel in scenario.channels.items():
        by_month = scenario.expected_adds_by_month(name)
        for m, length in enumerate(months):
            adds = by_month[m]
            if channel.staff is not None:
                adds = min(adds, channel.staff.daily_capacity * length)
            total += adds + channel.free_adds_per_month
    return int(total * 1.1) + 1024


def key_tables(layout: Layout, narrow: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Segment, source and dormancy of each state key (the fields a
    :class:`~simdomain.sim.population.Population` reads from the key rather than store),
    in the dtypes it would store them in."""
    fields = key_fields(layout)
    return {name: fields[name].astype(narrow.get(name, FIELDS[name][0]))
            for name in ("segment", "source", "dormant")}


def narrow_dtypes(scenario: Scenario, layout: Layout,
                  initial: InitialPeople | None = None) -> dict[str, type]:
    """Population fields this run can hold in fewer bytes: segment and source codes in
    int8 when there are at most 127 of each; days in int16 when the known people's are
    within 32,767 days (89 years) of the start (the horizon is at most 3,660 days);
    state keys in uint8 (int16) when the rate tables have at most 2**8 (under 2**15) rows;
    post views in uint16 when a person cannot see more than 65,535 of them over the
    horizon, 1:1 messages in uint8 when the policy cannot send anyone more than 255;
    orders in uint16 when the known people's most plus two a day fit; invites in uint16
    (widened when a referrer's outgrow it, see :func:`simdomain.sim.steps.referral`)."""
    narrow: dict[str, type] = {}
    if len(layout.segments) <= 127 and len(layout.sources) <= 127:
        narrow["segment"] = narrow["source"] = np.int8
    if initial is None or _days_fit_int16(initial):
        narrow.update(dict.fromkeys(("join_day", *HISTORY_DAYS), np.int16))
    if layout.key_size() <= 2**8:
        narrow["key"] = np.uint8
    elif layout.key_size() < 2**15:
        narrow["key"] = np.int16
    if _most_orders(initial) + 2 * scenario.horizon_days <= np.iinfo(np.uint16).max:
        narrow["orders"] = np.uint16  # at most two a day: a repeat and a first order
    weeks = -(-scenario.horizon_days // 7)  # at most one message a day, per_week a week
    if min(scenario.touch_policy.one_to_one.per_week * weeks,
           scenario.horizon_days) <= np.iinfo(np.uint8).max:
        narrow["touches_one_to_one"] = np.uint8
    narrow["invites"] = np.uint16
    for channel in ("group", "moments"):
        spec = getattr(scenario.touch_policy, channel)
        if spec.posts_per_day * scenario.horizon_days <= np.iinfo(np.uint16).max:
            narrow[f"touches_{channel}"] = np.uint16
    return narrow


def _most_orders(initial: InitialPeople | None) -> float:
    """The most orders a known person brings (infinite if they are not integers, which
    :meth:`InitialPeople.resolve` checks)."""
    if initial is None or initial.orders is None:
        return 0
    orders = np.asarray(initial.orders)
    return int(orders.max(initial=0)) if orders.dtype.kind in "iu" else float("inf")


def _days_fit_int16(initial: InitialPeople) -> bool:
    """Whether the known people's days (NEVER and NaN aside) are all >= -32,767."""
    for name in ("join_day", *HISTORY_DAYS):
        days = getattr(initial, name)
        if days is None or len(days) == 0:
            continue
        days = np.asarray(days)
        if np.nanmin(days[days != NEVER], initial=0) < -(2**15 - 1):
            return False
    return True


def shapes(scenario: Scenario) -> dict[str, float | None]:
    """Gamma shape of each per-person multiplier (see :data:`MULTIPLIERS`), or None."""
    spec = scenario.lifecycle.heterogeneity
    return {name: None if spec is None else getattr(spec, name.split("_")[0] + "_shape")
            for name in MULTIPLIERS}


class World:
    """State shared by the SimPy processes of one replication.

    ``initial`` are the people known at the start (the engine places them); their given
    multipliers, like the scenario's heterogeneity, put a multiplier in use: it is then
    kept per person and its draws are thinned per stratum (see
    :mod:`simdomain.sim.thinning`). Multipliers not in use stay 1 and cost nothing.
    """

    def __init__(self, scenario: Scenario, seed: np.random.SeedSequence,
                 initial: InitialPeople | None = None, keep_orders: bool = False) -> None:
        self.scenario = scenario
        self.seed = seed
        self.layout = Layout.of(scenario)
        self.calendar = Calendar.of(scenario.start_date, scenario.horizon_days)
        known = None if initial is None else len(initial)
        self.shapes = shapes(scenario)
        in_use = [name for name in MULTIPLIERS if self.shapes[name] is not None
                  or (initial is not None and getattr(initial, name) is not None)]
        plain = Strata(scaled=False) if len(in_use) < len(MULTIPLIERS) else None
        self.strata: dict[str, Strata] = {
            name: Strata() if name in in_use else plain for name in MULTIPLIERS}
        """The people grouped for each multiplier's draw: by stage and the multiplier
        where it is in use, by stage alone (one shared set of groups) where not."""
        # Spare slots cost address space only (they are written when taken), so room is
        # made for the whole referral market too: growing would copy every array, and the
        # old copies of the smaller ones stay in the allocator's heap.
        market = scenario.referral.addressable_market if scenario.referral else 0
        narrow = narrow_dtypes(scenario, self.layout, initial)
        self.pop = Population(capacity=expected_people(scenario, known) + market,
                              multipliers=in_use, narrow=narrow,
                              derived=key_tables(self.layout, narrow))
        self._heterogeneity: dict[tuple[str, str], np.random.Generator] = {}
        self.order_log: list[tuple[np.ndarray, int, np.ndarray]] | None = (
            [] if keep_orders else None)
        self._scratch: dict[str, np.ndarray] = {}
        self._join_days: list[int] = []  # days with joiners, ascending
        self._first_slots: list[int] = []  # the first slot of each one's joiners
        self.key_counts = np.zeros(self.layout.key_size(), dtype=np.int64)
        self.stage_of_key = key_fields(self.layout)["stage"].astype(np.int8)
        """The stage of each state key (see :func:`simdomain.sim.rates.state_key`)."""
        self.active: list[Campaign] = []
        self.rates: RateTables = build_rates(scenario, self.layout, self.active)
        self.tally = dict.fromkeys(TALLIES, 0.0)
        self.market_adopters = 0  # people of the referral market already in the pool
        self.daily_rows: list[tuple[float, ...]] = []
        self.channel_rows: list[tuple[float, ...]] = []
        self._group_share = scenario.touch_policy.group.share_in_groups
        self._segment_index = {name: i for i, name in enumerate(self.layout.segments)}
        order_values = [lognormal_params(s.order_value_cny, s.order_value_cv)
                        for s in scenario.segments.values()]
        self._order_mu = np.array([mu for mu, _ in order_values] + [0.0])
        self._order_sigma = np.array([sigma for _, sigma in order_values] + [0.0])

    # -- people ---------------------------------------------------------------------------
    def keys(self, index: slice | np.ndarray = slice(None)) -> np.ndarray:
        """State keys (rows of the rate tables) of the people at ``index``."""
        return self.pop.key[index]

    def mix(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """Segment codes and shares of a channel's (or referral's) audience."""
        mix = self.scenario.audience(source)
        return np.array([self._segment_index[k] for k in mix]), np.array(list(mix.values()))

    def join(
        self,
        segments: np.ndarray,
        *,
        source: int,
        day: int,
        rng: np.random.Generator,
        stage: int | np.ndarray = 0,
        referrer: int | np.ndarray = NOBODY,
        dormant: bool | np.ndarray = False,
        in_group: np.ndarray | None = None,
        multipliers: dict[str, np.ndarray] | None = None,
    ) -> slice:
        """Add people with the given segment codes; some join a group (unless
        ``in_group`` says who). ``day`` is an array only for people known before the start
        (who are no adds); the multipliers in use are drawn unless given."""
        count = len(segments)
        if in_group is None:
            in_group = rng.random(count) < self._group_share
        index = self.pop.add(count, day=day, segment=segments, source=source,
                             in_group=in_group, stage=stage, referrer=referrer,
                             dormant=dormant)  # source, segment and dormancy: in the key
        kind = np.asarray(source, dtype=np.int32) * len(self.layout.segments) + segments
        keys = state_key(np.broadcast_to(kind, (count,)), np.asarray(stage, dtype=np.int32),
                         np.asarray(dormant, dtype=np.int32))
        self.pop.key[index] = keys
        self.key_counts += np.bincount(keys, minlength=self.key_counts.size)
        self._place(index, "initial" if np.ndim(source) else self.layout.sources[source],
                    multipliers or {}, stage)
        if np.ndim(day) == 0 and day >= 0:
            self.tally["new_adds"] += count
            if not self._join_days or self._join_days[-1] < day:
                self._join_days.append(int(day))
                self._first_slots.append(index.start)
        return index

    def first_slot_of_day(self, day: int) -> int:
        """The first slot of the people who joined on ``day`` (>= 0) or later: people
        are appended in order of joining, and only those known before the start (who
        come first) have days below 0."""
        i = bisect.bisect_left(self._join_days, day)
        return self._first_slots[i] if i < len(self._join_days) else self.pop.n

    def _place(self, index: slice, source: str, given: dict[str, np.ndarray],
               stage: int | np.ndarray) -> None:
        """Set the multipliers in use of new people and add them to the strata by their
        ``stage`` (one for all, or one each).

        Drawn ones come from a stream per multiplier and source, so a new channel leaves
        the other sources' people as they were (common random numbers).
        """
        count = index.stop - index.start
        for name, strata in self.strata.items():
            if not strata.scaled:
                continue
            value = given.get(name)
            if value is None:
                shape = self.shapes[name]
                if shape is None:
                    value = np.ones(count, dtype=np.float32)
                else:
                    key = (name, source)
                    if key not in self._heterogeneity:
                        self._heterogeneity[key] = stream(self.seed, f"heterogeneity.{name}.{source}")
                    value = self._heterogeneity[key].gamma(shape, 1.0 / shape, count)
            value = np.asarray(value, dtype=np.float32)
            getattr(self.pop, name)[index] = value
        for name, strata in self._distinct_strata():
            strata.add(index.start, count, band=stage,
                       multiplier=getattr(self.pop, name)[index] if strata.scaled else None)

    def _distinct_strata(self) -> list[tuple[str, Strata]]:
        """Each set of groups once, with the name of a multiplier it serves."""
        return list({id(s): (name, s) for name, s in self.strata.items()}.values())

    @property
    def heterogeneous(self) -> bool:
        """Whether any per-person multiplier is in use."""
        return any(s.scaled for s in self.strata.values())

    def move(
        self,
        index: np.ndarray,
        *,
        stage: int | np.ndarray | None = None,
        dormant: bool | np.ndarray | None = None,
    ) -> None:
        """Change people's stage or dormancy, keeping their keys and ``key_counts`` in step."""
        pop, size = self.pop, self.key_counts.size
        keys = pop.key[index]
        self.key_counts -= np.bincount(keys, minlength=size)
        if stage is not None:  # a key is ... * 10 + stage * 2 + dormant (rates.state_key)
            old_stage = pop.stage[index]
            keys = keys + 2 * (np.asarray(stage, dtype=np.int32) - old_stage)
            pop.stage[index] = stage
            for name, strata in self._distinct_strata():
                strata.move(index, old_stage, stage,
                            getattr(pop, name)[index] if strata.scaled else None, pop.stage)
        if dormant is not None:  # the key's last bit (pop.dormant reads it from there)
            keys = keys + (np.asarray(dormant, dtype=np.int32) - (keys & 1))
        pop.key[index] = keys
        self.key_counts += np.bincount(keys, minlength=size)

    def chunk(self, name: str, dtype: type, part: slice) -> np.ndarray:
        """A reusable work array as long as ``part`` (a chunk of people, see
        :func:`simdomain.sim.steps.chunks`; its contents are undefined)."""
        size = part.stop - part.start
        buffer = self._scratch.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._scratch[name] = np.empty(max(size, 1 << 16), dtype=dtype)
        return buffer[:size]

    def scratch(self, name: str, dtype: type) -> np.ndarray:
        """A reusable work array of ``n`` elements (its contents are undefined)."""
        buffer = self._scratch.get(name)
        if buffer is None or buffer.size < self.pop.n:
            buffer = self._scratch[name] = np.empty(self.pop.capacity, dtype=dtype)
        return buffer[: self.pop.n]

    def order_values(self, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Order values (yuan) for one order by each person at ``index``."""
        segment = self.pop.at("segment", index)
        return np.exp(self._order_mu[segment] + self._order_sigma[segment]
                      * rng.standard_normal(len(index)))

    def record_orders(self, index: np.ndarray, day: int, rng: np.random.Generator) -> None:
        """Book one order for each person at ``index``."""
        pop = self.pop
        values = self.order_values(index, rng)
        if self.order_log is not None:
            self.order_log.append((np.asarray(index), day, values))
        pop.orders[index] += 1
        pop.gmv_cny[index] += values
        pop.stored("last_order_day")[index] = day
        self.tally["orders"] += len(index)
        stage = pop.stage[index]
        self.tally["member_orders"] += int(np.count_nonzero((stage >= MEMBER) & (stage <= KOC)))
        self.tally["gmv_cny"] += float(values.sum())

    # -- campaigns ------------------------------------------------------------------------
    def set_campaign(self, campaign: Campaign, running: bool) -> None:
        """Start or end a campaign; rates are rebuilt with its multipliers."""
        if running:
            self.active.append(campaign)
            self.tally["spend_cny"] += campaign.cost_cny
        else:
            self.active.remove(campaign)
        self.rates = build_rates(self.scenario, self.layout, self.active)

    def adds_multiplier(self, channel: str) -> float:
        product = 1.0
        for campaign in self.active:
            if campaign.channels is None or channel in campaign.channels:
                product *= campaign.multipliers.adds
        return product

    # -- recording ------------------------------------------------------------------------
    def stage_counts(self) -> np.ndarray:
        """People per stage (deleted last) and, at the end, the dormant ones."""
        counts = self.key_counts.reshape(-1, len(STAGE_NAMES), 2)
        by_stage = counts.sum(axis=(0, 2))
        dormant = counts[:, :DELETED, 1].sum()
        return np.append(by_stage, dormant)

    def close_day(self, day: int) -> None:
        """Store the day's stocks and flows and reset the flows."""
        self.daily_rows.append((day, *self.stage_counts(), *self.tally.values()))
        self.tally = dict.fromkeys(TALLIES, 0.0)
