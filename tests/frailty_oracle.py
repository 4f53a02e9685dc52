"""An independent oracle for the twin's deletion model: a Lomax fit of censored durations.

Time to an event with a gamma frailty: an exponential hazard that differs between people.

Each person has a constant hazard ``theta`` per day, ``theta ~ Gamma(k, rate=k/m)``
across people (mean ``m``), so the survival in tenure is Lomax (Pareto II):
``S(t) = (1 + m t / k)^-k``. Fitted by maximum likelihood on right-censored durations
in days, with intervals on the log scale; each person's posterior hazard given what was
seen is again a gamma. A plain maximum-likelihood code path, against which the
deletion model's EM (``simdomain/twin/deletion.py``) is checked on one stage and channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special

from simdomain.errors import InputError, Problem
from simdomain.twin.mle import LogNormalFit, as_arrays, compress, mle


class FrailtyParams(NamedTuple):
    """Gamma frailty: hazard ``theta ~ Gamma(k, rate=k/mean_rate)`` per day."""

    k: float
    mean_rate: float


@dataclass(frozen=True)
class FrailtyFit(LogNormalFit):
    """An exponential hazard with gamma frailty, fitted by maximum likelihood (days).

    ``params`` is :class:`FrailtyParams`; ``cov`` the covariance of (log k, log mean_rate).
    The survival in tenure is Lomax: ``S(t) = (1 + mean_rate t / k)^-k``.
    """

    def survival(self, t) -> np.ndarray:
        """Share of people still without the event after ``t`` days."""
        k, m = self.params
        return np.exp(-k * np.log1p(m * np.asarray(t, dtype=np.float64) / k))

    def posterior(self, duration, events) -> dict[str, np.ndarray]:
        """Each person's hazard given ``events`` over ``duration`` days.

        ``theta | data ~ Gamma(k + events, k/mean_rate + duration)``; for someone who
        survived to T with no event, ``Gamma(k, k/mean_rate + T)``.
        """
        k, m = self.params
        d, e = as_arrays("FrailtyFit.posterior", duration=duration, events=events)
        return {"shape": k + e, "rate": k / m + d}


def frailty_loglik(params, duration, events) -> np.ndarray:
    """Log-likelihood per person: ``events`` (0 = censored, 1 = event at ``duration``)."""
    k, m = params
    b = k / m
    return (special.gammaln(k + events) - special.gammaln(k) + k * np.log(b)
            - (k + events) * np.log(b + duration))


def fit_frailty_survival(duration, event, *, weights=None) -> FrailtyFit:
    """Fit a gamma-frailty exponential hazard on right-censored durations (days).

    Each person has a constant hazard ``theta`` per day, ``theta ~ Gamma(k, rate=k/m)``
    across people (mean ``m``); a person with ``event = 1`` had it at ``duration`` days,
    with ``event = 0`` was still without it after ``duration`` days (censored). Counts
    greater than 1 are read as recurrent events over an exposure of ``duration`` days
    (the same gamma-Poisson likelihood).

    Parameters
    ----------
    duration
        Days observed (time to the event, or to censoring), per person.
    event
        Number of events in that time, usually 0 or 1.
    weights
        Optional non-negative frequency weights.

    Returns
    -------
    FrailtyFit
        ``params = FrailtyParams(k, mean_rate)``. Very large ``k`` means no detectable
        heterogeneity (a plain exponential); its upper interval is then wide.
    """
    d, e = as_arrays("fit_frailty_survival", duration=duration, event=event)
    w = None if weights is None else as_arrays("fit_frailty_survival", weights=weights)[0]
    if (w is None and e.sum() == 0) or (w is not None and (w * e).sum() == 0):
        raise InputError([Problem("fit_frailty_survival", ("event",),
                                  "no events: the hazard cannot be fitted")])
    rows, counts = compress([d, e], w)
    cd, ce = rows.T
    total = counts.sum()

    def loglik(theta: np.ndarray) -> float:
        return float(counts @ frailty_loglik(np.exp(theta), cd, ce))

    m0 = (counts @ ce) / max(counts @ cd, 1e-9)
    theta, cov, ll = mle(loglik, [np.log([1.0, m0]), np.log([20.0, m0])], total,
                          "fit_frailty_survival")
    return FrailtyFit(params=FrailtyParams(*np.exp(theta)), cov=cov, loglik=ll, n=int(d.size))
