"""Daily transition probabilities as small lookup tables, indexed by a person's state.

A person's state key is ``((source * n_segments + segment) * 5 + stage) * 2 + dormant``;
the tables hold the base rate times the segment's propensity, the source channel's
propensity (and deletion multiplier) and the active campaigns' multipliers. Touch effects
(engagement, fatigue) and a person's own multipliers (heterogeneity) are per person and
applied on top in :func:`simdomain.sim.steps.lifecycle`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simdomain.scenario.model import STAGES, Campaign, CampaignMultipliers, Scenario
from simdomain.sim.population import CUSTOMER, DELETED, FAN, KOC, MEMBER

FRAUD = "fraud"
"""Pseudo-segment of fake referred accounts: they never buy, upgrade or refer."""


@dataclass(frozen=True)
class Layout:
    """Names behind the integer codes of segments and sources."""

    segments: list[str]
    sources: list[str]

    @classmethod
    def of(cls, scenario: Scenario) -> Layout:
        return cls(
            segments=[*scenario.segments, FRAUD],
            sources=[*scenario.channels, "initial", "organic", "referral"],
        )

    @property
    def fraud(self) -> int:
        return len(self.segments) - 1

    @property
    def initial(self) -> int:
        return len(self.sources) - 3

    @property
    def organic(self) -> int:
        return len(self.sources) - 2

    @property
    def referral(self) -> int:
        return len(self.sources) - 1

    def key_size(self) -> int:
        return len(self.sources) * len(self.segments) * 10


def state_key(kind: np.ndarray, stage: np.ndarray, dormant: np.ndarray) -> np.ndarray:
    """Table index of each person; ``kind = source * n_segments + segment``."""
    key = kind.astype(np.int32) * 10
    key += stage * 2
    key += dormant
    return key


def key_fields(layout: Layout) -> dict[str, np.ndarray]:
    """What each state key encodes (:func:`state_key` read backwards): its ``source``,
    ``segment`` and ``stage`` codes and whether it is ``dormant``, one entry per key."""
    key = np.arange(layout.key_size())
    kind = key // 10
    return {"source": kind // len(layout.segments), "segment": kind % len(layout.segments),
            "stage": key // 2 % (DELETED + 1), "dormant": key % 2 == 1}


@dataclass(frozen=True)
class RateTables:
    """Probabilities per state key (see the module docstring)."""

    advance: np.ndarray
    delete: np.ndarray
    order: np.ndarray
    flip_dormancy: np.ndarray
    referral_weight: np.ndarray
    """Word of mouth per person in the state (counted into the referral hazard)."""


def combined(campaigns: list[Campaign]) -> CampaignMultipliers:
    """The product of the active campaigns' multipliers."""
    fields = CampaignMultipliers.model_fields
    product = {name: 1.0 for name in fields}
    for campaign in campaigns:
        for name in fields:
            product[name] *= getattr(campaign.multipliers, name)
    return CampaignMultipliers(**product)


def build_rates(scenario: Scenario, layout: Layout, active: list[Campaign]) -> RateTables:
    """Rate tables for the scenario while the ``active`` campaigns run."""
    life = scenario.lifecycle
    boost = combined(active)
    n_src, n_seg = len(layout.sources), len(layout.segments)
    shape = (n_src, n_seg, 5, 2)
    advance, delete, order, flip, weight = (np.zeros(shape) for _ in range(5))
    channels = list(scenario.channels.values())

    def by_source(field: str) -> np.ndarray:
        """A channel's propensity per source (1 for the initial, organic and referred),
        shaped to broadcast over segments and stages."""
        return np.array([getattr(c.propensity, field) for c in channels] + [1.0] * 3
                        ).reshape(-1, 1, 1)

    word_of_mouth = scenario.referral.word_of_mouth if scenario.referral else {}

    for g, seg in enumerate(scenario.segments.values()):
        p = seg.propensity
        advance[:, g, FAN] = life.first_order * p.first_order * boost.first_order
        advance[:, g, CUSTOMER] = life.join * p.join * boost.join
        advance[:, g, MEMBER] = life.koc * p.koc * boost.koc
        repeat = life.repeat_order * p.repeat_order * boost.repeat_order
        order[:, g, CUSTOMER] = repeat
        order[:, g, [MEMBER, KOC]] = repeat * life.member_order_multiplier
        for s_code, stage in enumerate(STAGES):
            if stage in life.dormancy_stages:
                flip[:, g, s_code, 0] = life.dormancy * p.dormancy
        flip[:, g, :DELETED, 1] = life.wake * boost.wake
        for s, stage in enumerate(STAGES):
            delete[:, g, s] = life.deletion[stage] * p.deletion * boost.deletion
            weight[:, g, s] = word_of_mouth.get(stage, 0.0) * p.referral * boost.referral
    delete[:, layout.fraud, :DELETED] = life.deletion["fan"] * boost.deletion
    deletion_multiplier = [c.deletion_multiplier for c in channels] + [1.0] * 3
    delete *= (np.reshape(deletion_multiplier, (-1, 1, 1)) * by_source("deletion"))[..., None]
    advance[:, :, FAN] *= by_source("first_order")
    advance[:, :, CUSTOMER] *= by_source("join")
    advance[:, :, MEMBER] *= by_source("koc")
    order *= by_source("repeat_order")[..., None]
    flip[..., 0] *= by_source("dormancy")
    weight *= by_source("referral")[..., None]
    advance[..., 1] *= life.dormant_multiplier
    order[..., 1] *= life.dormant_multiplier
    weight[..., 1] *= life.dormant_multiplier
    return RateTables(
        advance=_probability(advance),
        delete=_probability(delete),
        order=_probability(order),
        flip_dormancy=_probability(flip),
        referral_weight=weight.ravel(),
    )


def _probability(table: np.ndarray) -> np.ndarray:
    return np.minimum(table, 1.0).astype(np.float32).ravel()


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the lognormal with this mean and coefficient of variation."""
    sigma = float(np.sqrt(np.log1p(cv * cv)))
    return float(np.log(mean) - sigma * sigma / 2), sigma
