"""Candidate tests and what each would measure under every parameter draw.

Two kinds of test, each on one uncertain *lever*:

- **Channel spend** (``channel:<name>``, block ``curve:<name>``): run the channel at a
  monthly spend ``level`` for ``days`` days and count the adds its channel code brings.
  Under draw ``k`` the count is negative binomial around ``curve_k(level) * days / 30.4``
  (the planner's curve of the draw, as the curve fit counts spend tests). ``dispersion``
  is the size of a month's count (variance ``mu + mu^2 / dispersion``: swings from month
  to month); a test of ``days`` sums ``days / 30.4`` months of independent swings, so its
  size is ``dispersion * days / 30.4`` (a longer test averages the swings out).
- **Touch frequency** (``touch:<kind>``, block ``value``): two arms of ``people`` each,
  the current frequency of 1:1 messages (per week) or of group or moments posts (per
  day) against another, for ``days`` days; orders, joins and deletions counted per arm
  (Poisson). The arms' means are the touch-effects fit's own mean field
  (:func:`simdomain.twin.effects.arm_means`) for people of the pool's stage mix settled
  under the scenario's touches: from the first day each arm's engagement and fatigue move
  from the settled levels toward its own, with their half-lives.

Costs: a spend test costs the spend above what the plan spends on the channel in those
days, less the extra adds it is expected to bring (the draws' mean) at the plan's
average cost per add (never below zero); a touch test costs the people it is expected to
lose (extra deletions in the changed arm, at the plan's cost per add). Both add a fixed
``setup_cny``. People per arm: the contacts a spend level buys, or the people in each
touch arm; designs under :data:`MIN_PEOPLE` per arm (the seeds' rule) are not offered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simdomain.advise.preposterior import Outcome
from simdomain.advise.replan import VALUE, curve_block
from simdomain.scenario.model import STAGES, Scenario
from simdomain.twin.effects import Arm as EffectsArm
from simdomain.twin.effects import Design as EffectsDesign
from simdomain.twin.effects import arm_means

DAYS_PER_MONTH = 30.4
MIN_PEOPLE = 1000
"""The seeds' floor of people per arm of a test (a floor, not a default)."""
SPEND_FACTORS = (1.0, 1.5, 2.0, 3.0)
"""Spend levels tried, as multiples of the plan's monthly spend on the channel."""
DAYS = (14, 28, 56)
PEOPLE = (1000, 3000, 10000, 30000)
TOUCH_KINDS = ("one_to_one", "group", "moments")
MEASURES = {
    "spend": "adds by the channel's code per day, and the spend actually charged",
    "frequency": "orders, joins and deletions per arm (people randomised by staff account "
                 "or group), from the first day",
}


@dataclass(frozen=True)
class Design:
    """One candidate test.

    Attributes
    ----------
    lever, block
        ``channel:<name>`` or ``touch:<kind>``, and the parameter block it informs.
    kind
        ``spend`` or ``frequency``.
    arms
        Monthly spend levels (yuan) or touch frequencies, one per arm.
    people
        People per arm (contacts reached, for a spend test).
    days
        Duration.
    cost
        Its cost in yuan (see the module's notes).
    """

    lever: str
    block: str
    kind: str
    arms: tuple[float, ...]
    people: int
    days: int
    cost: float

    @property
    def label(self) -> str:
        if self.kind == "spend":
            return f"spend ¥{self.arms[0]:,.0f}/month for {self.days} days"
        unit = "/week" if self.lever.endswith("one_to_one") else " posts/day"
        arms = " vs ".join(f"{a:g}{unit}" for a in self.arms)
        return f"{arms}, {self.people:,} per arm, {self.days} days"


def channel_means(curves: list, channel: int, levels: np.ndarray, days: int) -> np.ndarray:
    """``(K, arms)`` expected adds of a spend test under each draw's curve."""
    return np.array([[float(row[channel].adds(level)) for level in levels]
                     for row in curves]) * days / DAYS_PER_MONTH


def spend_designs(channel: str, c: int, curves: list, planned: float, scale: float,
                  upper: float, cost_per_contact: float, per_add: float,
                  setup_cny: float) -> list[Design]:
    """The spend tests of one channel (see the module's notes): levels of
    :data:`SPEND_FACTORS` times ``scale`` (the plan's monthly spend on the channel, or for
    a channel the plan leaves out, a typical channel's), costed against ``planned``."""
    out = []
    at_plan = channel_means(curves, c, np.array([planned]), 1).mean()
    for factor in SPEND_FACTORS:
        level = min(factor * scale, upper)
        if level <= 0 or (factor > 1 and level <= scale * 1.01):
            continue
        for days in DAYS:
            people = int(level * days / DAYS_PER_MONTH / cost_per_contact)
            if people < MIN_PEOPLE:
                continue
            extra_adds = (channel_means(curves, c, np.array([level]), days).mean()
                          - at_plan * days)
            extra = (level - planned) * days / DAYS_PER_MONTH - extra_adds * per_add
            cost = max(extra, 0.0) + setup_cny
            out.append(Design(f"channel:{channel}", curve_block(channel), "spend", (level,),
                              people, days, cost))
    return out


def spend_outcome(design: Design, curves: list, c: int, dispersion: float) -> Outcome:
    means = channel_means(curves, c, np.array(design.arms), design.days)
    return Outcome(means, np.full(means.shape, dispersion * design.days / DAYS_PER_MONTH))


def touch_frequency(scenario: Scenario, kind: str) -> float:
    """The scenario's frequency of a touch kind: 1:1 messages per week, posts per day."""
    policy = scenario.touch_policy
    return float(policy.one_to_one.per_week if kind == "one_to_one"
                 else getattr(policy, kind).posts_per_day)


def touch_means(scenario: Scenario, kind: str, arms: tuple[float, ...], people: int,
                days: int, mix: np.ndarray) -> np.ndarray:
    """``(arms * 3,)`` expected orders, joins and deletions of each arm of a frequency
    test under ``scenario``'s effects, for people of the stage ``mix`` settled under the
    scenario's touches (the mean field of :func:`simdomain.twin.effects.arm_means`, one
    arm per stage, summed)."""
    present = [(stage, float(w)) for stage, w in zip(STAGES, mix) if w > 0]
    design = EffectsDesign("advise", "touch_frequency", kind, days, tuple(
        EffectsArm(f"{i}", float(level), people * w, stage)
        for i, level in enumerate(arms) for stage, w in present), settled=True)
    table = arm_means(scenario, design)
    return (table.groupby("arm", sort=False)[["orders", "joins", "deletions"]].sum()
            .loc[[str(i) for i in range(len(arms))]].to_numpy().ravel())


def frequency_designs(scenario: Scenario, kind: str, pool: float, cost_per_person: float,
                      extra_deletions: Callable[..., float],
                      setup_cny: float) -> list[Design]:
    """The frequency tests of one touch kind: the current frequency against one more and
    one fewer, at the sizes of :data:`PEOPLE` the pool allows, for each of :data:`DAYS`."""
    now = touch_frequency(scenario, kind)
    top = 7 if kind == "one_to_one" else 24
    out = []
    for other in (now + 1, now - 1):
        if not 0 <= other <= top:
            continue
        for people in PEOPLE:
            if 2 * people > pool:
                continue
            for days in DAYS:
                arms = (now, other)
                lost = max(float(extra_deletions(arms, people, days)), 0.0)
                out.append(Design(f"touch:{kind}", VALUE, "frequency", arms, people, days,
                                  lost * cost_per_person + setup_cny))
    return out


def stage_mix(scenario: Scenario, kind: str, stages: np.ndarray | None = None) -> np.ndarray:
    """``(stages,)`` the stage mix of the pool a test of ``kind`` draws its people from:
    ``stages`` (the twin's people, one stage name each), else the initial pool."""
    if stages is not None and len(stages):
        mix = np.array([float(np.sum(stages == s)) for s in STAGES])
    else:
        pool = scenario.initial_pool.model_dump()
        mix = np.array([float(pool[s]) for s in STAGES])
    if kind == "one_to_one":
        mix *= np.array([s in scenario.touch_policy.one_to_one.stages for s in STAGES])
    total = mix.sum()
    return mix / total if total > 0 else np.eye(len(STAGES))[1]


def relative_spread(means: np.ndarray) -> float:
    """Largest coefficient of variation across draws of a ``(K, S)`` table's columns."""
    mean = np.abs(means.mean(axis=0))
    sd = means.std(axis=0)
    ok = mean > 0
    return float((sd[ok] / mean[ok]).max()) if ok.any() else 0.0
