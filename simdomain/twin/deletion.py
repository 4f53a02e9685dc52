"""Deletion (a person deleting the brand, or staff deleting them) by stage, channel and tenure.

Person ``i`` deletes at the daily hazard ``z_i * b[stage] * c[source]``, where ``z_i`` is
a gamma frailty with mean 1 and shape ``k``: people differ, so the hazard of a cohort
falls with tenure (the frail leave first), as the seeds report for red-packet package
cards. The fit is EM (the E-step is each person's posterior frailty mean given their
exposure and outcome), with the shape maximising the marginal likelihood. The engine
carries exactly this model (a stage and source rate table times a gamma multiplier).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from simdomain.scenario.model import STAGES
from simdomain.twin.rates import Hazard, stage_at, stage_days

MAX_SHAPE = 1000.0
"""Shapes above this are indistinguishable from no heterogeneity and are capped."""


@dataclass(frozen=True)
class DeletionFit:
    """Stage rates, channel multipliers and the frailty shape, with what they rest on."""

    stage: dict[str, Hazard]
    """Per stage: deletions and frailty-weighted person-days (rate = their ratio)."""
    channel: dict[str, Hazard]
    """Per channel: deletions and expected deletions (multiplier = their ratio)."""
    shape: float
    shape_se_log: float
    """Standard error of log(shape) from the profile likelihood's curvature."""
    cumulative: pd.Series
    """Each surviving person's cumulative hazard to date, before frailty."""

    def multipliers(self) -> dict[str, float]:
        return {c: h.rate for c, h in self.channel.items()}

    def shape_draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.minimum(np.exp(np.log(self.shape) + self.shape_se_log * rng.standard_normal(n)),
                          MAX_SHAPE)

    def shape_interval(self, level: float = 0.9) -> tuple[float, float]:
        from scipy.stats import norm

        z = norm.ppf(0.5 + level / 2)
        return (float(np.exp(np.log(self.shape) - z * self.shape_se_log)),
                float(min(np.exp(np.log(self.shape) + z * self.shape_se_log), MAX_SHAPE)))


def _marginal(shape: float, events: np.ndarray, hazard: np.ndarray) -> float:
    """Log-likelihood of the frailty shape given each person's cumulative hazard."""
    return float(np.sum(gammaln(shape + events) - gammaln(shape) + shape * np.log(shape)
                        - (shape + events) * np.log(shape + hazard)))


def fit_deletion(people: pd.DataFrame, *, iterations: int = 50) -> DeletionFit | None:
    """Fit deletion on the contacts (people whose adds and deletions are observed).

    Returns ``None`` when no contact was ever observed (orders-only data).
    """
    contacts = people[people["contact"]]
    if contacts.empty:
        return None
    exposure = stage_days(contacts).to_numpy()  # people x stages
    deleted = contacts["deletion_day"].notna().to_numpy()
    stage = stage_at(contacts, contacts["deletion_day"].fillna(0.0))
    events_by_stage = np.bincount(stage[deleted], minlength=len(STAGES)).astype(float)
    source_codes, sources = pd.factorize(contacts["source"], sort=True)
    events_by_source = np.bincount(source_codes[deleted], minlength=len(sources)).astype(float)
    d = deleted.astype(float)

    base = np.full(len(STAGES), max(d.sum(), 0.5) / max(exposure.sum(), 1.0))
    channel = np.ones(len(sources))
    shape = 1.0
    for _ in range(iterations):
        person_rate = channel[source_codes]
        hazard = exposure @ base * person_rate
        weight = (shape + d) / (shape + hazard)
        weighted = exposure * (weight * person_rate)[:, None]
        base = np.where(weighted.sum(axis=0) > 0,
                        events_by_stage / np.maximum(weighted.sum(axis=0), 1e-300), 0.0)
        per_person = (exposure @ base) * weight
        expected = np.bincount(source_codes, weights=per_person, minlength=len(sources))
        channel = np.where(expected > 0, events_by_source / np.maximum(expected, 1e-300), 1.0)
        scale = events_by_source.sum() / max((expected * channel).sum(), 1e-300)
        channel *= scale  # the exposure-weighted mean multiplier is 1 ...
        base /= scale      # ... and the stage rates carry the level
        hazard = exposure @ base * channel[source_codes]
        result = minimize_scalar(lambda ls: -_marginal(np.exp(ls), d, hazard),
                                 bounds=(np.log(1e-3), np.log(MAX_SHAPE)), method="bounded")
        shape = float(np.exp(result.x))

    hazard = exposure @ base * channel[source_codes]
    h = 1e-3
    ls = np.log(shape)
    curvature = (_marginal(np.exp(ls + h), d, hazard) - 2 * _marginal(shape, d, hazard)
                 + _marginal(np.exp(ls - h), d, hazard)) / h**2
    se = float(1 / np.sqrt(-curvature)) if curvature < 0 else float("inf")
    weight = (shape + d) / (shape + hazard)
    weighted_days = (exposure * (weight * channel[source_codes])[:, None]).sum(axis=0)
    expected = np.bincount(source_codes, weights=(exposure @ base) * weight,
                           minlength=len(sources))
    return DeletionFit(
        stage={s: Hazard(float(events_by_stage[i]), float(weighted_days[i]))
               for i, s in enumerate(STAGES)},
        channel={str(c): Hazard(float(events_by_source[j]), float(expected[j]))
                 for j, c in enumerate(sources)},
        shape=min(shape, MAX_SHAPE),
        shape_se_log=se if np.isfinite(se) else 10.0,
        cumulative=pd.Series(hazard, index=contacts.index)[~deleted],
    )
