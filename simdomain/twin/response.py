"""A channel's adds-versus-spend curve, fitted from its monthly spend and adds.

The family is the planner's own (:mod:`simdomain.planner.curves`) with geometric
carry-over: a month's mean adds are ::

    adds_m = free + A (1 - exp(-b e_m / A)),   e_m = x_m + lambda e_(m-1),  e_(-1) = 0

with ``x_m`` the month's spend (yuan), ``e_m`` the spend still at work, ``A`` the peak
adds, ``b`` the adds per yuan at zero spend, ``lambda`` the carry-over and ``free`` the
adds that come without spend. The adds counted in a month are negative binomial around
that mean (variance ``mu + mu^2 / phi``): campaigns, seasons and chance move a month's
adds more than Poisson noise does, and with no such swings ``phi`` grows large and the
counts are Poisson. Spend tests (arms that ran a channel at a set monthly spend, see
:func:`spend_test_terms`) add terms ``adds ~ NB(curve(level) * days / 30.4)``.

Carry-over and free adds are kept only where the data shows them: each raises the
maximum log-likelihood by more than :data:`KEEP` (the likelihood-ratio test at 5%),
else it is 0. The posterior under weak priors (``_Model.log_prior``, listed in
docs/twin.md) is sampled by a multi-chain adaptive random-walk Metropolis started at
the maximum a posteriori, with its covariance from the Laplace approximation. With fewer than :data:`MIN_LEVELS`
distinct spend levels the likelihood has a ridge (``A`` and ``b`` trade off), the band
away from the spend seen is the prior's, and the fit says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.signal import lfilter
from scipy.special import expit, gammaln

KEEP = 3.84 / 2
"""Least gain in maximum log-likelihood that keeps carry-over or free adds (chi2_1, 95%)."""
MAX_CARRYOVER = 0.95
MIN_LEVELS = 3
"""Distinct spend levels (more than :data:`LEVEL_GAP` apart) needed to see saturation."""
LEVEL_GAP = 0.1
DAYS_PER_MONTH = 30.4
PRIOR_SD = 2.0
"""Standard deviation of the normal priors on ``log A``, ``log b``, ``log free``."""
DISPERSION_PRIOR = (np.log(100.0), 2.5)
"""Normal prior on ``log phi`` (mean, sd): from near-Poisson to wide monthly swings."""
MAX_LOG_DISPERSION = np.log(1e7)
"""Beyond this ``phi`` the counts are Poisson to double precision (and gammaln differences
lose it)."""


@dataclass(frozen=True)
class CurveData:
    """One channel's observations of its curve.

    Attributes
    ----------
    spend
        Full-month spend (yuan) of each month, in order, from the channel's first month
        with spend: it drives the carry-over recursion.
    adds
        Adds counted in each month.
    exposure
        Share of each month observed (0: the month is in the recursion only).
    months
        ``YYYY-MM`` of each month.
    test_level, test_adds, test_months
        Spend tests: each arm's monthly spend, adds counted and length in months.
    """

    spend: np.ndarray
    adds: np.ndarray
    exposure: np.ndarray
    months: list[str] = field(default_factory=list)
    test_level: np.ndarray = field(default_factory=lambda: np.zeros(0))
    test_adds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    test_months: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def levels(self) -> int:
        """Distinct spend levels among the observed months and test arms."""
        seen = np.concatenate([self.spend[self.exposure > 0], self.test_level])
        seen = np.sort(seen[seen > 0])
        if len(seen) == 0:
            return 0
        count, anchor = 1, seen[0]
        for x in seen[1:]:
            if x > anchor * (1 + LEVEL_GAP):
                count, anchor = count + 1, x
        return count


@dataclass(frozen=True)
class CurveFit:
    """A fitted curve: point estimates (posterior medians), draws and what they rest on.

    Attributes
    ----------
    peak_adds, adds_per_cny, carryover, free
        ``A``, ``b``, ``lambda`` and ``free`` (posterior medians).
    dispersion
        ``phi`` of the negative binomial (posterior median).
    draws
        One row per posterior draw: ``peak_adds, adds_per_cny, carryover, free,
        dispersion``.
    levels
        Distinct spend levels the data shows.
    message
        Why the curve is wide, or None.
    selection
        Maximum log-likelihood of each model tried (``base``, ``carryover``, ``free``,
        ``both``) and which was kept.
    data
        The observations fitted.
    """

    peak_adds: float
    adds_per_cny: float
    carryover: float
    free: float
    dispersion: float
    draws: pd.DataFrame
    levels: int
    message: str | None
    selection: dict[str, object]
    data: CurveData

    def adds(self, spend: float | np.ndarray, draws: bool = False) -> np.ndarray:
        """Mean monthly adds at a steady ``spend`` with nothing carried (the curve),
        at the point estimate or, with ``draws``, one row per draw."""
        x = np.atleast_1d(np.asarray(spend, dtype=float))
        if draws:
            d = self.draws
            return curve(x[None, :], d["peak_adds"].to_numpy()[:, None],
                         d["adds_per_cny"].to_numpy()[:, None], d["free"].to_numpy()[:, None])
        return curve(x, self.peak_adds, self.adds_per_cny, self.free)

    def interval(self, name: str, level: float = 0.9) -> tuple[float, float]:
        """The central ``level`` interval of a parameter's draws."""
        return tuple(np.quantile(self.draws[name], [(1 - level) / 2, (1 + level) / 2]))


def curve(x: np.ndarray, peak: np.ndarray | float, per_cny: np.ndarray | float,
          free: np.ndarray | float = 0.0) -> np.ndarray:
    """``free + A (1 - exp(-b x / A))``, broadcast."""
    return free - peak * np.expm1(-per_cny * x / peak)


def working(spend: np.ndarray, carryover: np.ndarray | float) -> np.ndarray:
    """``e_m = x_m + lambda e_(m-1)`` from ``e_(-1) = 0``; one row per carry-over value."""
    lam = np.atleast_1d(np.asarray(carryover, dtype=float))
    if len(lam) == 1:
        return lfilter([1.0], [1.0, -lam[0]], np.asarray(spend, dtype=float))[None, :]
    out = np.empty((len(lam), len(spend)))
    previous = np.zeros(len(lam))
    for m, x in enumerate(spend):
        previous = x + lam * previous
        out[:, m] = previous
    return out


class _Model:
    """Log posterior of one channel's curve, vectorized over rows of parameters.

    Parameters are unconstrained: ``log A, log b`` then, if kept, ``logit(lambda /
    MAX_CARRYOVER)`` and ``log free``, then ``log phi``.
    """

    def __init__(self, data: CurveData, carryover: bool, free: bool) -> None:
        self.data, self.with_carryover, self.with_free = data, carryover, free
        self.dim = 3 + carryover + free
        seen = data.exposure > 0
        rate = data.adds[seen].sum() / max(data.exposure[seen].sum(), 1e-9)
        paid = data.spend[seen & (data.spend > 0)]
        mean_spend = paid.mean() if len(paid) else 1.0
        top = max(float(np.max(data.adds[seen] / data.exposure[seen], initial=0.0)), 1.0)
        self.prior_mean = {"A": np.log(2 * top), "b": np.log(max(rate, 0.5) / mean_spend),
                           "free": np.log(0.1 * max(rate, 5.0))}
        self.y = np.concatenate([data.adds[seen], data.test_adds]).astype(float)
        self.seen = seen
        self.const = gammaln(self.y + 1)

    def unpack(self, u: np.ndarray) -> dict[str, np.ndarray]:
        u = np.atleast_2d(u)
        i = 2
        out = {"A": np.exp(u[:, 0]), "b": np.exp(u[:, 1]),
               "lam": np.zeros(len(u)), "free": np.zeros(len(u))}
        if self.with_carryover:
            out["lam"] = MAX_CARRYOVER * expit(u[:, i])
            i += 1
        if self.with_free:
            out["free"] = np.exp(u[:, i])
            i += 1
        out["phi"] = np.exp(np.minimum(u[:, i], MAX_LOG_DISPERSION))
        return out

    def mean(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """Expected adds of every observation, one row per parameter row."""
        d = self.data
        e = working(d.spend, p["lam"]) if self.with_carryover else np.broadcast_to(
            d.spend, (len(p["A"]), len(d.spend)))
        col = (slice(None), None)
        months = curve(e[:, self.seen], p["A"][col], p["b"][col], p["free"][col])
        tests = curve(d.test_level[None, :], p["A"][col], p["b"][col], p["free"][col])
        return np.concatenate([months * d.exposure[self.seen], tests * d.test_months], axis=1)

    def log_likelihood(self, u: np.ndarray) -> np.ndarray:
        p = self.unpack(u)
        mu = np.maximum(self.mean(p), 1e-12)
        phi = p["phi"][:, None]
        y = self.y
        ll = (gammaln(y + phi) - gammaln(phi) - self.const - phi * np.log1p(mu / phi)
              + y * np.log(mu / (phi + mu)))
        return ll.sum(axis=1)

    def log_prior(self, u: np.ndarray) -> np.ndarray:
        u = np.atleast_2d(u)
        m = self.prior_mean
        lp = -0.5 * ((u[:, 0] - m["A"]) / PRIOR_SD) ** 2 - 0.5 * ((u[:, 1] - m["b"]) / PRIOR_SD) ** 2
        i = 2
        if self.with_carryover:  # lambda / MAX_CARRYOVER ~ uniform: the logistic density
            lp += -np.logaddexp(0, -u[:, i]) - np.logaddexp(0, u[:, i])
            i += 1
        if self.with_free:
            lp += -0.5 * ((u[:, i] - m["free"]) / PRIOR_SD) ** 2
            i += 1
        lp += -0.5 * ((u[:, i] - DISPERSION_PRIOR[0]) / DISPERSION_PRIOR[1]) ** 2
        return lp

    def log_posterior(self, u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = self.log_likelihood(u) + self.log_prior(u)
        return np.where(np.isfinite(out), out, -np.inf)

    def start(self) -> np.ndarray:
        m = self.prior_mean
        rest = ([0.0] if self.with_carryover else []) + ([m["free"]] if self.with_free else [])
        return np.array([m["A"], m["b"], *rest, DISPERSION_PRIOR[0]])


def _maximize(model: _Model, objective: str) -> tuple[np.ndarray, float]:
    """The maximum of the log posterior (``"posterior"``) or of the likelihood with the
    weak priors as a tie-breaker only (``"likelihood"``), from two starts; BFGS with
    central-difference gradients evaluated in one vectorized call."""
    weight = 1.0 if objective == "posterior" else 1e-6
    d = model.dim
    steps = np.vstack([np.zeros(d), 1e-5 * np.eye(d), -1e-5 * np.eye(d)])

    def f(u: np.ndarray) -> tuple[float, np.ndarray]:
        rows = u + steps
        values = -(model.log_likelihood(rows) + weight * model.log_prior(rows))
        if not np.all(np.isfinite(values)):
            return 1e300, np.zeros(d)
        return float(values[0]), (values[1:d + 1] - values[d + 1:]) / 2e-5

    with np.errstate(all="ignore"):
        best = None
        for shift in (0.0, 2.0):  # from the prior's peak, and from a curve far from saturation
            x0 = model.start()
            x0[0] += shift
            res = minimize(f, x0, jac=True, method="BFGS", options={"gtol": 1e-4})
            if not res.success and np.abs(res.jac).max() > 1e-2:  # a rough start: a
                # derivative-free pass, then again (precision loss at the top is fine)
                res = minimize(lambda u: f(u)[0], res.x, method="Nelder-Mead",
                               options={"maxiter": 200 * d, "xatol": 1e-4, "fatol": 1e-6})
                res = minimize(f, res.x, jac=True, method="BFGS", options={"gtol": 1e-4})
            if best is None or res.fun < best.fun:
                best = res
        return best.x, float(model.log_likelihood(best.x)[0])


def _hessian_cov(model: _Model, u: np.ndarray) -> np.ndarray:
    """Inverse of the negative Hessian of the log posterior at ``u`` (finite differences),
    with its eigenvalues kept within the prior's scale."""
    d, h = len(u), 1e-3
    steps = np.eye(d) * h
    pts = [u]
    for i in range(d):
        for j in range(i, d):
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                pts.append(u + si * steps[i] + sj * steps[j])
    values = model.log_posterior(np.array(pts))
    hess = np.zeros((d, d))
    k = 1
    for i in range(d):
        for j in range(i, d):
            pp, pm, mp, mm = values[k:k + 4]
            k += 4
            hess[i, j] = hess[j, i] = (pp - pm - mp + mm) / (4 * h * h)
    w, v = np.linalg.eigh(-hess)
    w = np.clip(np.where(np.isfinite(w), w, 1.0), 1e-2, 1e8)
    return (v / w) @ v.T


def _sample(model: _Model, u0: np.ndarray, draws: int, rng: np.random.Generator,
            chains: int = 24, steps: int = 600) -> np.ndarray:
    """Posterior draws by random-walk Metropolis over ``chains`` chains at once; the
    proposal's covariance is the Laplace one, then the chains' own (twice adapted)."""
    d = len(u0)
    cov = _hessian_cov(model, u0)
    x = u0 + rng.multivariate_normal(np.zeros(d), cov, size=chains) * 0.5
    lp = model.log_posterior(x)
    bad = ~np.isfinite(lp)
    x[bad], lp[bad] = u0, model.log_posterior(u0[None, :])[0]
    scale = 2.38**2 / d
    kept = []
    burn = steps // 2
    for step in range(steps):
        if step in (burn // 3, 2 * burn // 3, burn):
            recent = np.concatenate(kept[-max(len(kept) // 2, 1):]) if kept else x
            if len(recent) > 4 * d:
                cov = np.cov(recent.T) + 1e-9 * np.eye(d)
        proposal = x + rng.multivariate_normal(np.zeros(d), scale * cov, size=chains)
        lq = model.log_posterior(proposal)
        accept = np.log(rng.random(chains)) < lq - lp
        x = np.where(accept[:, None], proposal, x)
        lp = np.where(accept, lq, lp)
        kept.append(x.copy())
    after = np.concatenate(kept[burn:])
    pick = np.linspace(0, len(after) - 1, draws).round().astype(int)
    return after[rng.permutation(pick)]


def fit_curve(data: CurveData, *, draws: int = 200, seed: int | np.random.SeedSequence = 0
              ) -> CurveFit:
    """Fit one channel's curve (see the module's notes) and draw from its posterior.

    Parameters
    ----------
    data
        The channel's months and spend tests.
    draws
        Posterior draws to return.
    seed
        Of the sampler.

    Returns
    -------
    CurveFit
        Point estimates are posterior medians.
    """
    rng = np.random.default_rng(seed)
    tried: dict[str, float] = {}
    chosen, best = "base", -np.inf
    for name, lam, free in (("base", False, False), ("carryover", True, False),
                            ("free", False, True), ("both", True, True)):
        _, ll = _maximize(_Model(data, lam, free), "likelihood")
        tried[name] = ll
        penalised = ll - KEEP * (lam + free)
        if penalised > best + 1e-9:
            chosen, best = name, penalised
    model = _Model(data, chosen in ("carryover", "both"), chosen in ("free", "both"))
    u_map, _ = _maximize(model, "posterior")
    u = _sample(model, u_map, draws, rng)
    p = model.unpack(u)
    frame = pd.DataFrame({"peak_adds": p["A"], "adds_per_cny": p["b"], "carryover": p["lam"],
                          "free": p["free"], "dispersion": p["phi"]})
    levels = data.levels()
    med = frame.median()
    return CurveFit(
        peak_adds=float(med["peak_adds"]), adds_per_cny=float(med["adds_per_cny"]),
        carryover=float(med["carryover"]), free=float(med["free"]),
        dispersion=float(med["dispersion"]), draws=frame,
        levels=levels,
        message=_identification(data, frame, levels),
        selection={**tried, "kept": chosen}, data=data)


def _identification(data: CurveData, draws: pd.DataFrame, levels: int) -> str | None:
    paid = data.spend[(data.exposure > 0) & (data.spend > 0)]
    if levels == 0:
        return "no month with spend: the curve is not identified; the band is the prior's"
    if levels < MIN_LEVELS:
        where = f"about {np.median(paid):,.0f} yuan a month" if len(paid) else "test levels only"
        return (f"spend never varied enough ({levels} level(s), {where}): saturation not "
                "identified; away from that spend the band is the prior's")
    low, high = np.quantile(draws["peak_adds"], [0.05, 0.95])
    if high > 10 * low:
        return (f"saturation weakly identified: peak adds between {low:,.0f} and {high:,.0f} "
                "(90%); spend more widely to narrow it")
    return None


def spend_test_terms(tests: pd.DataFrame | None, channel: str) -> tuple[np.ndarray, ...]:
    """A channel's spend-test arms as curve observations: level, adds, months.

    ``tests`` has one row per arm (``test_id, arm, lever, kind, level, start, end,
    people, adds, ...``); rows with ``lever == "channel_spend"`` and ``kind == channel``
    count, each as ``adds ~ NB(curve(level) * days / 30.4)`` with ``days`` from
    ``start`` to ``end`` inclusive.
    """
    empty = np.zeros(0)
    if tests is None or len(tests) == 0 or "lever" not in tests:
        return empty, empty, empty
    rows = tests[(tests["lever"].astype(str) == "channel_spend")
                 & (tests["kind"].astype(str) == channel)]
    rows = rows[rows["adds"].notna() & rows["level"].notna()]
    if rows.empty:
        return empty, empty, empty
    days = (pd.to_datetime(rows["end"]) - pd.to_datetime(rows["start"])).dt.days + 1
    return (rows["level"].to_numpy(float), rows["adds"].to_numpy(float),
            days.to_numpy(float) / DAYS_PER_MONTH)
