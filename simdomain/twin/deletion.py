"""Deletion (a person deleting the brand, or staff deleting them) by stage, channel and tenure.

Person ``i`` deletes at the daily hazard ``z_i * b[stage] * c[source]``, where ``z_i`` is
a gamma frailty with mean 1 and shape ``k``: people differ, so the hazard of a cohort
falls with tenure (the frail leave first), as the seeds report for red-packet package
cards. The fit is EM (the E-step is each person's posterior frailty mean given their
exposure and outcome), with the shape maximising the marginal likelihood. The engine
carries exactly this model (a stage and source rate table times a gamma multiplier).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from simdomain.scenario.model import STAGES
from simdomain.twin.mle import hessian
from simdomain.twin.rates import Hazard, stage_at, stage_days

TOLERANCE = 1e-5
"""EM stops when an iteration moves the frailty shape by less than this, relatively."""
MAX_SHAPE = 1000.0
"""Shapes above this are indistinguishable from no heterogeneity and are capped."""


@dataclass(frozen=True)
class DeletionFit:
    """Stage rates, channel multipliers and the frailty shape, with their joint uncertainty.

    The estimates' covariance is the inverse observed information of the marginal
    likelihood in (log stage rates, log channel multipliers but the first, log shape):
    joint, because a falling hazard can be read as frailty or as stage differences.
    """

    stage: dict[str, Hazard]
    """Per stage: deletions and frailty-weighted person-days (rate = their ratio)."""
    channel: dict[str, Hazard]
    """Per channel: deletions and expected deletions (multiplier = their ratio)."""
    shape: float
    theta: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    free_stages: list[str] = field(repr=False)
    cumulative: pd.Series = field(repr=False)
    """Each surviving person's cumulative hazard to date, before frailty."""

    def multipliers(self) -> dict[str, float]:
        return {c: h.rate for c, h in self.channel.items()}

    def draws(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Joint draws: ``stage.<stage>`` rates, ``channel.<channel>`` multipliers
        (renormalised to the fitted channels' weighted mean of 1) and ``shape``."""
        z = np.exp(rng.multivariate_normal(self.theta, self.cov, size=n, method="eigh"))
        s = len(self.free_stages)
        names = list(self.channel)
        out = {f"stage.{st}": z[:, i] for i, st in enumerate(self.free_stages)}
        for st in STAGES:
            out.setdefault(f"stage.{st}", np.zeros(n))
        first = self.channel[names[0]].rate
        multipliers = np.column_stack([np.full(n, first), z[:, s:-1]]) if len(names) > 1 else (
            np.full((n, 1), first))
        expected = np.array([h.exposure for h in self.channel.values()])
        scale = (multipliers * expected).sum(axis=1) / expected.sum()
        for j, name in enumerate(names):
            out[f"channel.{name}"] = multipliers[:, j] / scale
        for st in self.free_stages:
            out[f"stage.{st}"] = out[f"stage.{st}"] * scale
        out["shape"] = np.minimum(z[:, -1], MAX_SHAPE)
        return pd.DataFrame(out)

    def shape_interval(self, level: float = 0.9) -> tuple[float, float]:
        from scipy.stats import norm

        se = float(np.sqrt(self.cov[-1, -1]))
        z = norm.ppf(0.5 + level / 2)
        return (float(np.exp(np.log(self.shape) - z * se)),
                float(min(np.exp(np.log(self.shape) + z * se), MAX_SHAPE)))


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
        mean = (expected * channel).sum() / max(expected.sum(), 1e-300)
        channel /= mean  # the expected-deletion-weighted mean multiplier is 1 ...
        base *= mean     # ... and the stage rates carry the level
        hazard = exposure @ base * channel[source_codes]
        result = minimize_scalar(lambda ls, h=hazard: -_marginal(np.exp(ls), d, h),
                                 bounds=(np.log(1e-3), np.log(MAX_SHAPE)), method="bounded")
        previous, shape = shape, float(np.exp(result.x))
        if abs(np.log(shape / previous)) < TOLERANCE:  # EM has settled
            break

    hazard = exposure @ base * channel[source_codes]
    free = [i for i in range(len(STAGES)) if events_by_stage[i] > 0]
    at_death = np.where(deleted, stage, 0)

    def loglik(theta: np.ndarray) -> float:
        b = np.zeros(len(STAGES))
        b[free] = np.exp(theta[: len(free)])
        c = np.concatenate([[channel[0]], np.exp(theta[len(free):-1])])
        k = np.exp(theta[-1])
        rate = c[source_codes]
        cumulative = exposure @ b * rate
        with np.errstate(divide="ignore"):
            log_h = np.where(deleted, np.log(b[at_death] * rate), 0.0)
        return float(log_h.sum()) + _marginal(k, d, cumulative)

    theta = np.log(np.concatenate([base[free], channel[1:], [min(shape, MAX_SHAPE)]]))
    info = -hessian(loglik, theta)
    cov = np.linalg.pinv(info) if np.any(np.linalg.eigvalsh(info) <= 0) else np.linalg.inv(info)
    weight = (shape + d) / (shape + hazard)
    weighted_days = (exposure * (weight * channel[source_codes])[:, None]).sum(axis=0)
    expected = np.bincount(source_codes, weights=(exposure @ base) * weight,
                           minlength=len(sources))
    return DeletionFit(
        stage={s: Hazard(float(events_by_stage[i]), float(weighted_days[i]))
               for i, s in enumerate(STAGES)},
        channel={str(c): Hazard(float(events_by_source[j]), float(expected[j]))
                 for j, c in enumerate(sources)},
        shape=min(shape, MAX_SHAPE), theta=theta, cov=cov,
        free_stages=[STAGES[i] for i in free],
        cumulative=pd.Series(hazard, index=contacts.index)[~deleted],
    )
