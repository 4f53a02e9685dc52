"""Maximum likelihood on compressed data, with asymptotic normal intervals on the log scale.

The machinery the twin's fits share: distinct rows and their counts, a bounded
L-BFGS-B search over log-parameters, the observed information by central differences,
and a fit object that gives intervals and parameter draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats

from simdomain.errors import InputError, Problem

LOG_BOUND = 12.0
"""Log-parameters are searched in [-12, 12] (rates e^-12 .. e^12 per day)."""


def as_arrays(source: str, **columns) -> list[np.ndarray]:
    """Equal-length, finite, non-negative float arrays, or an InputError naming the column."""
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in columns.values()]
    sizes = {a.size for a in arrays}
    problems = []
    if len(sizes) > 1:
        problems.append(Problem(source, (), "columns differ in length: " + ", ".join(
            f"{k}={a.size}" for k, a in zip(columns, arrays))))
    for (name, a) in zip(columns, arrays):
        bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
        if bad.size:
            problems.append(Problem(source, (name, int(bad[0])), f"{bad.size} values missing or "
                                    f"negative, e.g. {a[bad[0]]!r}"))
    if problems:
        raise InputError(problems)
    return arrays


def unique_rows(columns: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of equal-length columns and each row's index among them.

    A lexicographic sort of the columns: much faster than ``np.unique(axis=0)``.
    """
    order = np.lexsort(columns[::-1])
    cols = [c[order] for c in columns]
    new = np.zeros(order.size, dtype=bool)
    new[:1] = True
    for c in cols:
        new[1:] |= c[1:] != c[:-1]
    inverse = np.empty(order.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return [c[new] for c in cols], inverse


def compress(columns: Sequence[np.ndarray], weights: np.ndarray | None):
    """Distinct rows of ``columns`` (as a 2-D array) and their summed weights."""
    rows, inverse = unique_rows(columns)
    w = np.ones(inverse.size) if weights is None else weights
    return np.column_stack(rows), np.bincount(inverse, weights=w, minlength=rows[0].size)


def hessian(f: Callable[[np.ndarray], float], theta: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    k = theta.size
    h = np.zeros((k, k))
    e = np.eye(k) * step
    f0 = f(theta)
    for i in range(k):
        h[i, i] = (f(theta + e[i]) - 2 * f0 + f(theta - e[i])) / step**2
        for j in range(i):
            h[i, j] = h[j, i] = (f(theta + e[i] + e[j]) - f(theta + e[i] - e[j])
                                 - f(theta - e[i] + e[j]) + f(theta - e[i] - e[j])) / (4 * step**2)
    return h


def mle(loglik: Callable[[np.ndarray], float], start: Sequence[np.ndarray], total: float,
         what: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximise ``loglik`` over log-parameters, trying the next start only when needed.

    A start is enough when L-BFGS-B converges inside the bounds. Returns the
    log-parameters, their covariance (the inverse of the negative Hessian; a
    pseudo-inverse when the likelihood is flat in some direction) and the maximum.
    """
    def objective(theta: np.ndarray) -> float:
        value = loglik(theta)
        return -value / total if np.isfinite(value) else 1e10

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start[0])
    best = None
    for theta0 in start:
        res = optimize.minimize(objective, theta0, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": 500, "ftol": 1e-13, "gtol": 1e-9})
        if best is None or res.fun < best.fun:
            best = res
        if res.success and np.all(np.abs(res.x) < LOG_BOUND - 1e-6):
            break
    if best is None or not np.isfinite(best.fun) or best.fun >= 1e10:
        raise InputError([Problem(what, (), "the likelihood could not be maximised: "
                                  "too few customers or repeat orders")])
    theta = best.x
    # the inverse observed information; directions where the likelihood is flat or not
    # concave (a parameter at its bound) get no spread rather than a meaningless one
    eig, vec = np.linalg.eigh(-hessian(loglik, theta))
    keep = eig > 1e-10 * max(eig.max(), 1e-300)
    cov = (vec[:, keep] / eig[keep]) @ vec[:, keep].T
    return theta, cov, float(loglik(theta))


@dataclass(frozen=True)
class LogNormalFit:
    """Maximum-likelihood estimates with an asymptotic normal on the log scale."""

    params: NamedTuple
    cov: np.ndarray = field(repr=False)
    loglik: float
    n: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.params._fields)

    @property
    def on_bound(self) -> tuple[str, ...]:
        """Parameters that ended at the search bound (e^+-12).

        The likelihood is flat that way (e.g. a shape running to infinity: no detectable
        heterogeneity); their intervals mean little and a simpler model fits as well.
        """
        logs = np.abs(np.log(np.asarray(self.params, dtype=np.float64)))
        return tuple(n for n, v in zip(self.names, logs) if v >= LOG_BOUND - 1e-3)

    @property
    def se_log(self) -> pd.Series:
        """Standard errors of the log-parameters."""
        return pd.Series(np.sqrt(np.clip(np.diag(self.cov), 0, None)), index=self.names)

    def draws(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` parameter sets from the asymptotic normal of the log-parameters."""
        mean = np.log(np.asarray(self.params, dtype=np.float64))
        z = rng.multivariate_normal(mean, self.cov, size=n, method="eigh")
        return pd.DataFrame(np.exp(z), columns=list(self.names))

    def interval(self, level: float = 0.9) -> pd.DataFrame:
        """Estimate and central ``level`` interval of each parameter (log-normal)."""
        if not 0 < level < 1:
            raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
        z = stats.norm.ppf(0.5 + level / 2)
        est = np.asarray(self.params, dtype=np.float64)
        se = self.se_log.to_numpy()
        return pd.DataFrame({"estimate": est, "lower": est * np.exp(-z * se),
                             "upper": est * np.exp(z * se)}, index=pd.Index(self.names,
                                                                           name="parameter"))
