"""What one add is worth: expected members, deletions, pool and GMV per add, by month.

Every person is a Markov chain over (stage, dormant) plus deleted, stepped once a day
with the engine's rate tables (:func:`simdomain.sim.rates.build_rates`: segment
propensities, the source channel's deletion multiplier, the campaigns active that day)
and the engine's order within a day: orders on the morning's state; deletion, else an
upgrade, on one uniform (competing risks); dormancy flips for the survivors. The
expectation is computed exactly, day by day, with no sampling.

The chain is age-structured: a person's first days differ from later ones, because the
new-user push multiplies ``first_order`` for ``new_user_days`` after the add (not for the
initial pool), and
because touches build engagement and fatigue up over the first weeks. Touches enter as
their *mean*: each stage's daily uplift (1:1 messages where the policy sends them to
the stage, group posts for the share in groups, moments posts) accumulates with the
engagement half-life, and likewise fatigue; conversion rates are multiplied by
``1 + engagement`` and deletion by ``1 + sensitivity * max(0, fatigue - tolerance)``,
as in the engine, but at the mean level rather than per person.

The planner counts three kinds of people: the adds its spend buys, the adds that come
without spend (a channel's ``free_adds_per_month``, :func:`free_adds`) and the initial
pool. Free adds are a known constant: the engine draws them each day as Poisson with
mean ``free_adds_per_month / month length x campaign adds multiplier``, so their days
follow the same shares as the bought adds. Their segments follow the channel's audience
as it is, where bought adds follow it weighted by each segment's add propensity (the
funnel converts some segments' contacts more often); so free adds have outcomes of their
own (``free_*``), which differ from a bought add's when segments differ. Referral and organic adds are left out by
design (they depend on the pool the plan builds, not on a rate the planner knows).

Adds of a month are spread over its days in proportion to the channel's campaign
adds multiplier. Results are *per add* of a channel in a cohort month, so the planner
multiplies them by its adds (bought and free); the initial pool's are in people.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np

from simdomain.scenario.model import STAGES, Scenario
from simdomain.sim.rates import Layout, build_rates
from simdomain.sim.world import Calendar

_SETTLED = 1e-3
"""Engagement and fatigue count as settled once this share of their build-up is left."""


@dataclass(frozen=True)
class Cohorts:
    """Expected outcomes per add, by channel ``c``, cohort month ``k`` and day or month.

    Attributes
    ----------
    channels
        Channel names (axis ``c``).
    calendar
        The horizon extended by the months after it that are followed (members join
        months after their add).
    horizon_months
        ``K``: cohort months (the horizon's months).
    members, deletions
        ``(C, K, months)``: new members and deletions in each calendar month per add.
    alive, gmv
        ``(C, K, days)``: people still in the pool at the end of each day, and GMV
        (yuan) up to the end of each day, per add.
    base_members, base_deletions, base_alive, base_gmv
        The same for the initial pool, in people and yuan.
    initial_size
        People in the initial pool.
    add_share
        ``(C, days)``: the share of its month's adds a channel brings on each day.
    free_members, free_deletions, free_alive, free_gmv
        The same as ``members`` ... ``gmv`` per add *without spend* (segments as the
        audience, not weighted by add propensity); ``None`` when no channel has such adds.
    """

    channels: list[str]
    calendar: Calendar
    horizon_months: int
    members: np.ndarray
    deletions: np.ndarray
    alive: np.ndarray
    gmv: np.ndarray
    base_members: np.ndarray
    base_deletions: np.ndarray
    base_alive: np.ndarray
    base_gmv: np.ndarray
    initial_size: float
    add_share: np.ndarray
    free_members: np.ndarray | None = None
    free_deletions: np.ndarray | None = None
    free_alive: np.ndarray | None = None
    free_gmv: np.ndarray | None = None

    def free_view(self) -> Cohorts:
        """These outcomes with the per-add arrays of the adds without spend (for
        channels without such adds, the bought adds' arrays)."""
        if self.free_members is None:
            return self
        return replace(self, members=self.free_members, deletions=self.free_deletions,
                       alive=self.free_alive, gmv=self.free_gmv)

    def members_within(self, window: int) -> np.ndarray:
        """``(C, K)``: members per add who join in the add's month or the ``window``
        months after it."""
        months = np.arange(self.members.shape[2])
        k = np.arange(self.horizon_months)[:, None]
        inside = (months >= k) & (months <= k + window)
        return (self.members * inside).sum(axis=2)

    def pool_start(self) -> tuple[np.ndarray, np.ndarray]:
        """Pool at the start of each calendar month: ``(C, K, months)`` per add, and the
        initial pool's ``(months,)``."""
        eve = np.searchsorted(self.calendar.month, np.arange(len(self.calendar.labels))) - 1
        first = eve < 0
        eve = np.maximum(eve, 0)
        per_add = np.where(first, 0.0, self.alive[:, :, eve])
        base = np.where(first, self.initial_size, self.base_alive[eve])
        return per_add, base


def touch_profile(scenario: Scenario, ages: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``1 + engagement`` and deletion multiplier from fatigue, ``(stages, ages + 1)``.

    Column ``a < ages`` is for the day ``a`` days after the add (touched on each of the
    ``a + 1`` days since); the last column is the settled level.
    """
    policy = scenario.touch_policy
    one, group, moments = policy.one_to_one, policy.group, policy.moments
    post_rate = group.posts_per_day * group.view_rate * group.share_in_groups
    moment_rate = moments.posts_per_day * moments.view_rate
    uplift, fatigue = np.zeros(len(STAGES)), np.zeros(len(STAGES))
    for s, stage in enumerate(STAGES):
        messages = one.per_week / 7 * one.reach if stage in one.stages else 0.0
        uplift[s] = (messages * one.uplift + post_rate * group.uplift_per_view
                     + moment_rate * moments.uplift_per_view)
        fatigue[s] = (messages * one.fatigue + post_rate * group.fatigue_per_view
                      + moment_rate * moments.fatigue_per_view)
    age = np.append(np.arange(ages), np.inf)

    def build_up(daily: np.ndarray, half_life: float) -> np.ndarray:
        keep = 0.5 ** (1 / half_life)
        return daily[:, None] * (1 - keep ** (age + 1)) / (1 - keep)

    lift = 1 + build_up(uplift, policy.engagement_half_life_days)
    tired = np.maximum(build_up(fatigue, policy.fatigue_half_life_days), 0.0)
    deletion = 1 + policy.fatigue_sensitivity * np.maximum(tired - policy.fatigue_tolerance, 0)
    return lift, deletion


def settle_days(scenario: Scenario) -> int:
    """Days after which engagement, fatigue and the new-user push no longer change."""
    policy = scenario.touch_policy
    longest = max(policy.engagement_half_life_days, policy.fatigue_half_life_days)
    return max(2, scenario.lifecycle.new_user_days,
               math.ceil(longest * math.log2(1 / _SETTLED)))


def cohorts(scenario: Scenario, *, months_after: int = 0) -> Cohorts:
    """Expected outcomes per add for every channel and cohort month of the horizon.

    Parameters
    ----------
    scenario
        The scenario (its spend plan is not used: results are per add).
    months_after
        Calendar months after the horizon to follow the cohorts into.
    """
    horizon = scenario.horizon_days
    months = scenario.months + months_after
    first = scenario.start_date.replace(day=1)
    last_month = first.year * 12 + first.month - 1 + months
    end = dt.date(last_month // 12, last_month % 12 + 1, 1)
    calendar = Calendar.of(scenario.start_date, (end - scenario.start_date).days)
    days = calendar.days
    layout = Layout.of(scenario)
    channels = list(scenario.channels)
    n_ch, n_seg, k_months = len(channels), len(scenario.segments), scenario.months
    free = [c for c, ch in enumerate(scenario.channels.values()) if ch.free_adds_per_month > 0]
    n_src = n_ch + len(free)  # bought adds, then free adds of the channels with them
    sources = [*range(n_ch), *free, layout.initial]
    ages = settle_days(scenario)
    lift, fatigue = touch_profile(scenario, ages)
    rows = ages + k_months + 1  # young rows by age, old rows by cohort month, the initial pool
    row_age = np.minimum(np.arange(rows), ages)
    lift_rows, fatigue_rows = lift[:, row_age].T, fatigue[:, row_age].T  # (rows, stages)
    life = scenario.lifecycle
    new_user = np.ones((rows, len(STAGES)))
    new_user[: min(life.new_user_days, ages), 0] = life.new_user_multiplier
    aov = np.array([s.order_value_cny for s in scenario.segments.values()])

    add_share = _add_shares(scenario, calendar)
    mass = np.zeros((len(sources), n_seg, rows, len(STAGES), 2))
    mixes = np.array([_add_mix(scenario, name) for name in channels]
                     + [_audience_mix(scenario, channels[c]) for c in free]).reshape(n_src, n_seg)
    share_of = add_share[[*range(n_ch), *free]]
    initial = scenario.audience("initial")
    for s, stage in enumerate(STAGES):
        count = getattr(scenario.initial_pool, stage)
        mass[-1, :, 1, s, 0] = count * np.array([initial.get(g, 0.0) for g in scenario.segments])

    members = np.zeros((len(sources), k_months + 1, months))
    deletions = np.zeros_like(members)
    alive = np.zeros((len(sources), k_months + 1, days))
    gmv = np.zeros_like(alive)
    tables: dict[tuple[int, ...], tuple[np.ndarray, ...]] = {}
    starts = [(calendar.day_of(c.start), c.days) for c in scenario.campaigns]
    for day in range(days):
        if day < horizon:
            mass[:n_src, :, 0, 0, 0] += share_of[:, day, None] * mixes
        active = tuple(i for i, (s, n) in enumerate(starts) if s <= day < s + n)
        if active not in tables:
            tables[active] = _rates(scenario, layout, sources, active, lift_rows,
                                    fatigue_rows, new_user)
        flows = _step(mass, *tables[active], aov)
        cohort = _cohort_of_rows(day, ages, k_months, calendar)
        m = calendar.month[day]
        members[:, :, m] += flows["members"] @ cohort
        deletions[:, :, m] += flows["deletions"] @ cohort
        gmv[:, :, day] = flows["gmv"] @ cohort
        alive[:, :, day] = mass.sum(axis=(1, 3, 4)) @ cohort
        oldest = cohort[ages - 1]
        if oldest.any():
            mass[:, :, ages + int(np.argmax(oldest))] += mass[:, :, ages - 1]
        mass[:, :, 1:ages] = mass[:, :, : ages - 1].copy()
        mass[:, :, 0] = 0.0
    gmv = np.cumsum(gmv, axis=2)
    extra = {}
    if free:
        order = np.arange(n_ch)
        order[free] = n_ch + np.arange(len(free))  # channels without free adds: bought ones
        extra = {f"free_{name}": table[order, :k_months] for name, table in
                 (("members", members), ("deletions", deletions), ("alive", alive),
                  ("gmv", gmv))}
    return Cohorts(
        channels=channels, calendar=calendar, horizon_months=k_months,
        members=members[:n_ch, :k_months], deletions=deletions[:n_ch, :k_months],
        alive=alive[:n_ch, :k_months], gmv=gmv[:n_ch, :k_months],
        base_members=members[-1, -1], base_deletions=deletions[-1, -1],
        base_alive=alive[-1, -1], base_gmv=gmv[-1, -1],
        initial_size=float(scenario.initial_pool.total), add_share=add_share, **extra,
    )


def free_adds(scenario: Scenario) -> np.ndarray:
    """``(C, M)``: expected adds without spend of each channel in each horizon month.

    The engine's daily Poisson mean ``free_adds_per_month / month length x adds
    multiplier``, summed over the month's days within the horizon (a partial first or
    last month brings its share; a campaign raises it).
    """
    calendar = Calendar.of(scenario.start_date, scenario.horizon_days)
    n_ch, n_mo = len(scenario.channels), scenario.months
    multiplier = adds_multipliers(scenario, scenario.horizon_days)
    per_month = np.array([np.bincount(calendar.month, weights=row, minlength=n_mo)
                          for row in multiplier]).reshape(n_ch, n_mo) / calendar.month_length
    rate = np.array([ch.free_adds_per_month for ch in scenario.channels.values()])
    return rate.reshape(n_ch, 1) * per_month


def _audience_mix(scenario: Scenario, channel: str) -> list[float]:
    """Segment shares of a channel's adds without spend: its audience as it is."""
    mix = scenario.audience(channel)
    weights = [mix.get(g, 0.0) for g in scenario.segments]
    total = sum(weights)
    return [w / total if total > 0 else 0.0 for w in weights]


def _add_mix(scenario: Scenario, channel: str) -> list[float]:
    """Segment shares of a channel's adds: its audience weighted by add propensity."""
    mix = scenario.audience(channel)
    weights = [mix.get(g, 0.0) * seg.propensity.add for g, seg in scenario.segments.items()]
    total = sum(weights)
    return [w / total if total > 0 else 0.0 for w in weights]


def adds_multipliers(scenario: Scenario, days: int) -> np.ndarray:
    """``(C, days)``: each channel's campaign adds multiplier on each day."""
    multiplier = np.ones((len(scenario.channels), days))
    for campaign in scenario.campaigns:
        first = (campaign.start - scenario.start_date).days
        window = slice(first, min(first + campaign.days, days))
        for c, name in enumerate(scenario.channels):
            if campaign.channels is None or name in campaign.channels:
                multiplier[c, window] *= campaign.multipliers.adds
    return multiplier


def _add_shares(scenario: Scenario, calendar: Calendar) -> np.ndarray:
    """``(C, days)``: share of a horizon month's adds brought on each of its days."""
    horizon = scenario.horizon_days
    weight = np.zeros((len(scenario.channels), calendar.days))
    weight[:, :horizon] = adds_multipliers(scenario, horizon)
    month = calendar.month
    totals = np.zeros((weight.shape[0], len(calendar.labels)))
    for c in range(weight.shape[0]):
        totals[c] = np.bincount(month, weights=weight[c], minlength=totals.shape[1])
    per_day = totals[:, month]
    return np.divide(weight, per_day, out=np.zeros_like(weight), where=per_day > 0)


def _rates(scenario: Scenario, layout: Layout, sources: list[int], active: tuple[int, ...],
           lift: np.ndarray, fatigue: np.ndarray, new_user: np.ndarray) -> tuple[np.ndarray, ...]:
    """Daily probabilities ``(sources, segments, rows, stages, dormant)``: deletion,
    upgrade (given not deleted, as competing risks on one uniform), order, flip."""
    tables = build_rates(scenario, layout, [scenario.campaigns[i] for i in active])
    shape = (len(layout.sources), len(layout.segments), len(STAGES) + 1, 2)
    n_seg = len(scenario.segments)

    def pick(table: np.ndarray) -> np.ndarray:
        return table.astype(float).reshape(shape)[sources, :n_seg, : len(STAGES)][:, :, None]

    per_row = (None, None, slice(None), slice(None), None)
    delete = pick(tables.delete) * fatigue[per_row]
    advance = pick(tables.advance)
    move = advance * (lift * new_user)[per_row]
    move[-1] = advance[-1] * lift[per_row][0]  # the initial pool (last source) is not new
    p_delete = np.minimum(delete, 1.0)
    p_advance = np.maximum(np.minimum(delete + move, 1.0) - p_delete, 0.0)
    p_order = np.minimum(pick(tables.order) * lift[per_row], 1.0)
    return p_delete, p_advance, p_order, pick(tables.flip_dormancy)


def _step(mass: np.ndarray, p_delete: np.ndarray, p_advance: np.ndarray, p_order: np.ndarray,
          p_flip: np.ndarray, aov: np.ndarray) -> dict[str, np.ndarray]:
    """One day of the chain on ``mass`` (in place); the day's flows per source and row."""
    deleted = mass * p_delete
    advanced = mass * p_advance
    stayed = mass - deleted - advanced
    orders = mass * p_order
    first = advanced[:, :, :, 0].sum(axis=-1)
    members = advanced[:, :, :, 1].sum(axis=-1)
    stayed_flip, advanced_flip = stayed * p_flip, advanced * p_flip
    mass[...] = stayed - stayed_flip + stayed_flip[..., ::-1]
    moved = advanced - advanced_flip + advanced_flip[..., ::-1]
    mass[:, :, :, 1:] += moved[:, :, :, :-1]
    order_count = orders.sum(axis=(3, 4)) + first
    return {
        "members": members.sum(axis=1),
        "deletions": deleted.sum(axis=(1, 3, 4)),
        "gmv": np.einsum("sgr,g->sr", order_count, aov),
    }


def _cohort_of_rows(day: int, ages: int, k_months: int, calendar: Calendar) -> np.ndarray:
    """``(rows, K + 1)`` one-hot: which cohort month (or the initial pool, last) each row
    of the chain holds on ``day``."""
    onehot = np.zeros((ages + k_months + 1, k_months + 1))
    added = day - np.arange(ages)
    young = added >= 0
    onehot[np.flatnonzero(young), np.minimum(calendar.month[added[young]], k_months)] = 1.0
    if day + 1 < ages:
        onehot[day + 1, k_months] = 1.0
    onehot[ages + np.arange(k_months + 1), np.arange(k_months + 1)] = 1.0
    return onehot
