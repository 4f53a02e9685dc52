"""One day of each mechanism, as vector operations over the whole population.

The SimPy processes in :mod:`simdomain.sim.processes` call these once per day; none
of them loops over people in Python.
"""

from __future__ import annotations

import math

import numpy as np

from simdomain.scenario.model import STAGES, Posts
from simdomain.sim.policy import TouchSelector
from simdomain.sim.population import CUSTOMER, DELETED, FAN, MEMBER
from simdomain.sim.thinning import candidates, counts_below, tails_above
from simdomain.sim.world import World


def decay(world: World) -> None:
    """Let engagement and fatigue fade by one day of their half-lives (lazily: see
    :meth:`~simdomain.sim.population.Population.decay`; no pass over people)."""
    policy = world.scenario.touch_policy
    pop = world.pop
    pop.decay("engagement", 0.5 ** (1.0 / policy.engagement_half_life_days))
    pop.decay("fatigue", 0.5 ** (1.0 / policy.fatigue_half_life_days))


def lifecycle(world: World, day: int, rng: np.random.Generator) -> None:
    """Orders, stage changes, deletions and dormancy for one day.

    Orders are drawn on the morning's state. Then each person is deleted with
    probability ``p_del`` or else moves up a stage with probability ``p_adv`` (competing
    risks: one uniform ``u``; deleted if ``u < p_del``, advanced if
    ``p_del <= u < p_del + p_adv``, so ``p_adv`` is in effect capped at ``1 - p_del``).
    The survivors' dormancy flips last.

    Events are rare, so each draw is thinned (see :mod:`simdomain.sim.thinning`): only
    people picked with a bound on their probability have it computed. The bound is per
    stage (a rate table's maximum over the stage's states, times the largest lift or
    fatigue), so the deleted cost nothing and a stage with low rates is not drawn at a
    higher stage's. A person's own multiplier (repeat orders, active -> dormant,
    deletion), when in use, multiplies their probability (capped at 1 by the uniform's
    range), and that draw is thinned per stratum of the multiplier too.
    """
    pop, rates, life = world.pop, world.rates, world.scenario.lifecycle
    policy = world.scenario.touch_policy
    n = pop.n
    if n == 0:
        return
    key, stage_of_key = pop.key, world.stage_of_key
    lift_max = 1.0 + pop.largest("engagement")
    engagement, fatigue = pop.stored("engagement"), pop.stored("fatigue")
    engagement_scale = np.float32(pop.scale["engagement"])

    def lift(index: np.ndarray) -> np.ndarray:
        return engagement[index] * engagement_scale + np.float32(1.0)

    strata = world.strata
    occupied = world.key_counts > 0  # the bounds need cover only the states people are in

    def by_stage(table: np.ndarray, dormant: bool | None = None) -> np.ndarray:
        return largest_by_stage(table, occupied, dormant)

    order_max = by_stage(rates.order) * lift_max
    picked, u, keys = strata["order_multiplier"].draw(
        lambda band, ceiling: order_max[band] * ceiling, rng, key, stage_of_key)
    p_order = rates.order[keys] * lift(picked)
    if strata["order_multiplier"].scaled:
        p_order *= pop.order_multiplier[picked]
    world.record_orders(np.sort(picked[u < p_order]), day, rng)

    sensitivity, tolerance = policy.fatigue_sensitivity, policy.fatigue_tolerance
    fatigue_max = 1.0 + sensitivity * max(pop.largest("fatigue") - tolerance, 0.0)
    pushed = life.new_user_multiplier != 1 and life.new_user_days > 0
    boost = max(life.new_user_multiplier, 1.0) if pushed else 1.0  # a push below 1: no bound
    delete_max = by_stage(rates.delete) * fatigue_max
    advance_max = by_stage(rates.advance) * lift_max
    first_new_day = max(day - life.new_user_days + 1, 0)  # the initial pool is not new
    new_from = world.first_slot_of_day(first_new_day) if pushed else n  # joined in order
    picked, u, keys = strata["deletion_multiplier"].draw(
        lambda band, ceiling: delete_max[band] * ceiling + advance_max[band], rng, key,
        stage_of_key, tail=(new_from, lambda band, ceiling: delete_max[band] * ceiling
              + advance_max[band] * np.where(band == FAN, boost, 1.0)))
    p_del = rates.delete[keys]
    if sensitivity > 0:
        tired = fatigue[picked] * np.float32(pop.scale["fatigue"])
        p_del = p_del * (1 + sensitivity * np.maximum(tired - tolerance, 0))
    if strata["deletion_multiplier"].scaled:
        p_del = p_del * pop.deletion_multiplier[picked]
    p_adv = rates.advance[keys] * lift(picked)
    if pushed:  # people joined in slot order: those from new_from on joined since
        new = (picked >= new_from) & (stage_of_key[keys] == FAN)
        p_adv = np.where(new, p_adv * life.new_user_multiplier, p_adv)
    deleted = np.sort(picked[u < p_del])  # picks come in runs: events in slot order
    advanced = np.sort(picked[(u >= p_del) & (u < p_del + p_adv)])

    awake, asleep = by_stage(rates.flip_dormancy, dormant=False), by_stage(
        rates.flip_dormancy, dormant=True)  # the multiplier acts on dormancy, not waking
    picked, u, keys = strata["dormancy_multiplier"].draw(
        lambda band, ceiling: np.maximum(awake[band] * ceiling, asleep[band]), rng, key,
        stage_of_key)
    p_flip = rates.flip_dormancy[keys]
    if strata["dormancy_multiplier"].scaled:  # odd keys are dormant (rates.state_key)
        p_flip = p_flip * np.where(keys & 1, np.float32(1), pop.dormancy_multiplier[picked])
    flips = np.sort(picked[u < p_flip])

    old_stage = pop.stage[advanced]
    world.move(advanced, stage=old_stage + 1)
    first = advanced[old_stage == FAN]
    pop.stored("first_order_day")[first] = day
    world.record_orders(first, day, rng)
    pop.stored("member_day")[advanced[old_stage == CUSTOMER]] = day
    pop.stored("koc_day")[advanced[old_stage == MEMBER]] = day
    world.tally["new_customers"] += len(first)
    world.tally["new_members"] += int(np.count_nonzero(old_stage == CUSTOMER))
    world.tally["new_kocs"] += int(np.count_nonzero(old_stage == MEMBER))

    world.move(deleted, stage=DELETED)
    pop.deletion_day[deleted] = day
    pop.in_group[deleted] = False
    world.tally["deletions"] += len(deleted)

    flips = flips[pop.stage[flips] != DELETED]
    world.move(flips, dormant=~pop.at("dormant", flips))


def largest_by_stage(table: np.ndarray, occupied: np.ndarray, dormant: bool | None = None,
                     ) -> np.ndarray:
    """A rate table's largest entry per stage over the ``occupied`` states (a mask over
    sources, segments and, unless ``dormant`` says which, dormancy; see
    :mod:`simdomain.sim.rates` for the layout): 0 for a stage nobody is in."""
    per_state = np.where(occupied, table, 0).reshape(-1, len(STAGES) + 1, 2)
    largest = per_state.max(axis=(0, 2)) if dormant is None else per_state[..., int(dormant)
                                                                           ].max(axis=0)
    return largest.astype(np.float64)


CHUNK = 1 << 18
"""People per chunk of a pass over everyone (see :func:`chunks`)."""
SPARSE = 0.1
"""Touches reaching at most this share of their audience on a day are drawn for the
people they reach only (thinning); denser ones by a pass over everyone, which is then
cheaper than picking people one by one."""


def one_to_one(world: World, rng: np.random.Generator,
               select: TouchSelector | None = None) -> None:
    """Send the day's 1:1 messages to the policy's stages (each person at most one).

    ``select``, if given, chooses among the people the uniform policy would message (a
    targeted policy handed in from above the engine, see :mod:`simdomain.sim.policy`).
    """
    policy = world.scenario.touch_policy.one_to_one
    pop = world.pop
    allowed = np.array([stage in policy.stages for stage in STAGES] + [False])
    counter = pop.touches_one_to_one
    if select is None and policy.reach <= SPARSE:
        picked, _ = candidates(pop.n, policy.reach, rng)
        picked = picked[allowed[pop.stage[picked]]]
        _touch(world, np.ones(len(picked), np.int8), policy.uplift, policy.fatigue, counter,
               picked)
        return
    codes = np.flatnonzero(allowed)
    if select is None:  # by chunks, drawing and touching each in turn: small work arrays
        for part in chunks(pop.n):
            reached = in_stages(pop.stage[part], codes, world.chunk("reached", np.bool_, part))
            if policy.reach < 1:
                reached &= _bernoulli(world, policy.reach, rng, part)
            _touch(world, reached, policy.uplift, policy.fatigue, counter, part)
        return
    reached = in_stages(pop.stage, codes, world.scratch("reached", np.bool_))
    if policy.reach < 1:
        for part in chunks(pop.n):
            reached[part] &= _bernoulli(world, policy.reach, rng, part)
    reached &= select(world, reached)
    for part in chunks(pop.n):
        _touch(world, reached[part], policy.uplift, policy.fatigue, counter, part)


def _bernoulli(world: World, p: float, rng: np.random.Generator, part: slice) -> np.ndarray:
    """Bernoulli(``p``) draws for the chunk ``part`` (a work array of bools)."""
    hits = counts_below([p], rng, out=world.chunk("hits", np.int8, part),
                        flag=world.chunk("flag", np.bool_, part))
    return hits.view(np.bool_)


def chunks(n: int) -> list[slice]:
    """Slices of at most :data:`CHUNK` people covering ``0 .. n``: passes over everyone
    go by chunks, so their work arrays are small (and stay in cache)."""
    return [slice(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]


def in_stages(stage: np.ndarray, codes: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Whether each person's stage is one of ``codes`` (comparisons: quicker than a
    table lookup per person)."""
    codes = [int(c) for c in codes]
    if codes == list(range(DELETED)):
        return np.not_equal(stage, DELETED, out=out)
    out[...] = False
    for code in codes:
        out |= stage == code
    return out


def posts(world: World, channel: str, rng: np.random.Generator) -> None:
    """The day's group posts (``channel="group"``) or moments posts (``"moments"``).

    Each person in the audience sees each of the day's posts with the view rate, so
    their views are binomial. When few see any (at most :data:`SPARSE` of the audience
    on average), the people who see some are picked by thinning with the chance of a
    view, and their count of views drawn from the uniform that picked them; otherwise
    every person's views are drawn by inversion from one uniform per person (drawn a
    byte at a time, see :func:`~simdomain.sim.thinning.counts_below`). A view carries
    the content mix's mean uplift and fatigue.
    """
    spec: Posts = getattr(world.scenario.touch_policy, channel)
    pop = world.pop
    counter = getattr(pop, f"touches_{channel}")
    trials, p = spec.posts_per_day, spec.view_rate
    at_least = [1 - binom_cdf(k - 1, trials, p) for k in range(1, trials + 1)]
    if at_least[0] <= SPARSE:  # u < P(V >= 1): someone with views; V = #{k: u < P(V >= k)}
        picked, u = candidates(pop.n, at_least[0], rng)
        audience = pop.in_group[picked] if channel == "group" else pop.stage[picked] != DELETED
        picked, u = picked[audience], u[audience]
        _touch(world, tails_above(u, at_least), spec.uplift_per_view, spec.fatigue_per_view,
               counter, picked)
        return
    for part in chunks(pop.n):
        views = counts_below(at_least, rng, out=world.chunk("views", np.int8, part),
                             flag=world.chunk("flag", np.bool_, part))
        audience = (pop.in_group[part] if channel == "group"
                    else np.not_equal(pop.stage[part], DELETED, out=world.chunk(
                        "audience", np.bool_, part)))
        views *= audience.view(np.int8)
        _touch(world, views, spec.uplift_per_view, spec.fatigue_per_view, counter, part)


def _touch(world: World, views: np.ndarray, uplift: float, fatigue: float,
           counter: np.ndarray, index: slice | np.ndarray) -> None:
    """Add ``views`` times the per-view effects to the people at ``index`` (a slice, or
    sorted distinct slots), and count them."""
    pop = world.pop
    if len(views) == 0:
        return
    whole = isinstance(index, slice)
    size = slice(0, len(views))
    as_float = None  # the views as float32, converted once for both fields
    for name, per_view in (("engagement", uplift), ("fatigue", fatigue)):
        if not per_view:
            continue
        if as_float is None:
            as_float = world.chunk("views_float", np.float32, size)
            np.copyto(as_float, views, casting="unsafe")
        effect = np.multiply(as_float, np.float32(per_view / pop.scale[name]),
                             out=world.chunk("effect", np.float32, size))
        stored = pop.stored(name)
        changed = stored[index]  # a view of a slice, a copy of slots
        if whole:
            changed += effect
        else:
            changed = changed + effect
        if per_view < 0 and name == "fatigue":  # fatigue is never below 0
            np.maximum(changed, np.float32(0), out=changed)
        elif per_view > 0:
            pop.peak[name] = max(pop.peak[name], float(changed.max()))
        if not whole:
            stored[index] = changed
    if whole:
        np.add(counter[index], views.view(np.uint8), out=counter[index])  # views are >= 0
    else:
        counter[index] = counter[index] + views.view(np.uint8)


def binom_cdf(k: int, trials: int, p: float) -> float:
    """``P(Binomial(trials, p) <= k)``."""
    return sum(math.comb(trials, j) * p**j * (1 - p) ** (trials - j) for j in range(k + 1))


def referral(world: World, day: int, rng: np.random.Generator) -> None:
    """Bass diffusion over the addressable market, one person per adopter.

    Each remaining person in the market joins with probability ``p + W / M``: ``p`` on
    their own (an organic add), ``W / M`` through word of mouth (a referred add, with a
    referrer drawn in proportion to each person's word of mouth).
    """
    spec = world.scenario.referral
    market = spec.addressable_market
    remaining = market - world.market_adopters
    if remaining <= 0:
        return
    pressure = float(world.key_counts @ world.rates.referral_weight)
    word = pressure / market
    hazard = min(1.0, spec.external_rate + word)
    joined = int(rng.binomial(remaining, hazard))
    if joined == 0:
        return
    world.market_adopters += joined
    referred = int(rng.binomial(joined, word / (spec.external_rate + word)))
    organic = joined - referred
    fraud = int(rng.binomial(referred, spec.fraud_share))
    segments, shares = world.mix("referral")
    layout = world.layout
    if referred:
        genuine = np.repeat(segments, rng.multinomial(referred - fraud, shares))
        people = np.concatenate([genuine, np.full(fraud, layout.fraud)])
        referrers = pick_referrers(world, referred, pressure, rng)
        world.join(people, source=layout.referral, day=day, rng=rng, referrer=referrers)
        world.tally["referral_adds"] += referred
        world.tally["fraud_adds"] += fraud
        world.tally["spend_cny"] += referred * spec.gift_per_invitee_cny + _rewards(
            world, referrers)
    if organic:
        organic_segments = np.repeat(segments, rng.multinomial(organic, shares))
        world.join(organic_segments, source=layout.organic, day=day, rng=rng)
        world.tally["organic_adds"] += organic


def pick_referrers(world: World, count: int, pressure: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Draw ``count`` referrers, each with probability proportional to their word of mouth.

    Rejection sampling: uniform candidates are kept with probability ``w / w_max``.
    """
    weights = world.rates.referral_weight
    w_max = weights[world.key_counts > 0].max()
    n = world.pop.n
    acceptance = pressure / (n * w_max)
    chosen: list[np.ndarray] = []
    needed = count
    while needed > 0:
        batch = min(int(needed / acceptance * 1.2) + 16, 1 << 20)
        candidates = rng.integers(0, n, size=batch)
        kept = candidates[rng.random(batch) * w_max < weights[world.keys(candidates)]][:needed]
        chosen.append(kept)
        needed -= len(kept)
    return np.concatenate(chosen)


def _rewards(world: World, referrers: np.ndarray) -> float:
    """Count the new invites and pay the tier gifts they unlock."""
    pop = world.pop
    people, new = np.unique(referrers, return_counts=True)
    before = pop.invites[people].astype(np.int64)
    if len(people) and before.max() + new.max() > np.iinfo(pop.invites.dtype).max:
        pop.widen("invites", np.int32)  # held in uint16 while they fit (narrow_dtypes)
    pop.invites[people] = before + new
    return sum(
        tier.gift_cny * np.count_nonzero((before < tier.invites) & (before + new >= tier.invites))
        for tier in world.scenario.referral.reward_tiers
    )
