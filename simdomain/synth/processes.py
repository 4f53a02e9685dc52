"""Order processes that are not the engine's model, in continuous time.

Each person who buys makes a first order at ``t0`` and repeat orders after it:

- :class:`BGNBD` (Fader, Hardie & Lee 2005): repeat orders at rate ``lambda ~ Gamma(r,
  rate=alpha)`` while active; after each repeat order the person drops out with
  probability ``p ~ Beta(a, b)``.
- :class:`ParetoNBD` (Schmittlein, Morrison & Colombo 1987) with an annual sinusoid and a
  campaign week: rate ``lambda * g(t)`` while alive, lifetime ``~ Exp(mu)``, ``mu ~
  Gamma(s, rate=beta)``; ``g(t) = 1 + A cos(2 pi (t - t_peak) / 365.25) + (k - 1)`` in the
  week of November 5-11 (a Double-11 sale at about ``k`` times the rate), else without
  the last term. ``A = 0, k = 1`` is the plain Pareto/NBD.
- :class:`TenureDecay`: Pareto/NBD whose rate fades with tenure, ``lambda exp(-(t - t0) /
  tau)``, and whose order value is tied to frequency (frequent buyers buy smaller
  baskets: mean value times ``(lambda / E lambda) ** elasticity``).

Rates and times are in days. Intensities that vary are drawn by thinning. The first
order (the "trial" of the BTYD models) is not part of the process: it is placed by the
caller (:mod:`simdomain.synth.independent`), without season or spike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import hyp2f1

SPIKE_START = (11, 5)
SPIKE_DAYS = 7
YEAR_DAYS = 365.25


@dataclass(frozen=True)
class BGNBD:
    """BG/NBD: gamma rates, beta dropout after each repeat order (days)."""

    r: float = 0.5
    alpha: float = 50.0
    a: float = 1.2
    b: float = 4.0
    name: str = "bgnbd"

    def expected_repeats(self, t: np.ndarray) -> np.ndarray:
        """``E[X(t)]``: mean repeat orders within ``t`` days of the first order."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        t = np.asarray(t, dtype=np.float64)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


@dataclass(frozen=True)
class ParetoNBD:
    """Pareto/NBD with an annual sinusoid (``amplitude``, peak on ``peak`` MM-DD) and a
    November 5-11 week at ``spike`` times the base rate (days)."""

    r: float = 0.5
    alpha: float = 50.0
    s: float = 0.6
    beta: float = 300.0
    amplitude: float = 0.3
    peak: str = "12-20"
    spike: float = 5.0
    name: str = "pareto-seasonal"

    def expected_repeats(self, t: np.ndarray) -> np.ndarray:
        """``E[X(t)]`` of the plain Pareto/NBD (without season and spike)."""
        r, alpha, s, beta = self.r, self.alpha, self.s, self.beta
        t = np.asarray(t, dtype=np.float64)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


@dataclass(frozen=True)
class TenureDecay:
    """Pareto/NBD whose rate decays with tenure (``decay_days`` e-folding time) and
    whose mean order value scales as ``(lambda / E lambda) ** elasticity`` (days)."""

    r: float = 0.5
    alpha: float = 50.0
    s: float = 0.6
    beta: float = 300.0
    decay_days: float = 365.0
    elasticity: float = -0.3
    name: str = "pareto-decay"


Process = BGNBD | ParetoNBD | TenureDecay
PROCESSES: dict[str, Process] = {
    "bgnbd": BGNBD(),
    "pareto": ParetoNBD(amplitude=0.0, spike=1.0, name="pareto"),
    "pareto-seasonal": ParetoNBD(),
    "pareto-decay": TenureDecay(),
}
"""The independent processes by name, with their default parameters."""


@dataclass(frozen=True)
class Repeats:
    """Repeat orders drawn for the buyers: who (index into the buyers) and when."""

    buyer: np.ndarray
    at: np.ndarray
    latent: dict[str, np.ndarray]
    """Per buyer: the drawn rate ``lambda`` and the dropout quantity of the process."""
    value_scale: np.ndarray
    """Per buyer: factor on the mean order value (1 unless value is tied to frequency)."""


def describe(process: Process) -> dict[str, float | str]:
    """The process's parameters for truth.json (rates in days)."""
    params = asdict(process)
    params.pop("name")
    return params


def draw_repeats(process: Process, t0: np.ndarray, end: float, start: dt.date,
                 rng: np.random.Generator) -> Repeats:
    """Repeat orders in ``(t0, end)`` for buyers whose first orders are at ``t0``."""
    n = len(t0)
    lam = rng.gamma(process.r, 1.0 / process.alpha, size=n)
    if isinstance(process, BGNBD):
        p = rng.beta(process.a, process.b, size=n)
        last = rng.geometric(p)  # the repeat order after which each one drops out
        buyer, at = _poisson_times(lam, t0, np.full(n, end), rng)
        buyer, at, rank = _sorted_with_rank(buyer, at, n)
        keep = rank < last[buyer]
        dropped = np.full(n, np.nan)
        final = keep & (rank == last[buyer] - 1)
        dropped[buyer[final]] = at[final]
        return Repeats(buyer[keep], at[keep], {"lambda": lam, "p": p, "dropout_day": dropped},
                       np.ones(n))
    mu = rng.gamma(process.s, 1.0 / process.beta, size=n)
    death = t0 + rng.exponential(1.0, size=n) / mu
    stop = np.minimum(death, end)
    if isinstance(process, ParetoNBD):
        bound = 1 + process.amplitude + (process.spike - 1)
        buyer, at = _poisson_times(lam * bound, t0, stop, rng)
        accept = rng.random(len(at)) * bound < seasonal_intensity(process, start, at)
        scale = np.ones(n)
    else:
        buyer, at = _poisson_times(lam, t0, stop, rng)
        accept = rng.random(len(at)) < np.exp(-(at - t0[buyer]) / process.decay_days)
        scale = (lam * process.alpha / process.r) ** process.elasticity
    buyer, at, _ = _sorted_with_rank(buyer[accept], at[accept], n)
    latent = {"lambda": lam, "mu": mu, "dropout_day": np.where(death < end, death, np.nan)}
    return Repeats(buyer, at, latent, scale)


def seasonal_intensity(process: ParetoNBD, start: dt.date, at: np.ndarray) -> np.ndarray:
    """``g(t)`` at times ``at`` (days since ``start``)."""
    at = np.asarray(at, dtype=np.float64)
    g = 1 + process.amplitude * np.cos(2 * np.pi * (at - _peak_day(process, start)) / YEAR_DAYS)
    for lo, hi in _spikes(start, float(at.max(initial=0.0)) + 1):
        g += (process.spike - 1) * ((at >= lo) & (at < hi))
    return g


def seasonal_integral(process: ParetoNBD, start: dt.date, lo: np.ndarray,
                      hi: np.ndarray) -> np.ndarray:
    """``integral of g(t) dt`` over ``[lo, hi]`` (days since ``start``; 0 where hi <= lo)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    hi = np.maximum(hi, lo)
    w = 2 * np.pi / YEAR_DAYS
    peak = _peak_day(process, start)
    total = (hi - lo) + process.amplitude / w * (np.sin(w * (hi - peak)) - np.sin(w * (lo - peak)))
    for a, b in _spikes(start, float(np.max(hi, initial=0.0)) + 1):
        total += (process.spike - 1) * np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0, None)
    return total


def _peak_day(process: ParetoNBD, start: dt.date) -> float:
    month, day = (int(x) for x in process.peak.split("-"))
    return float((dt.date(start.year, month, day) - start).days)


def _spikes(start: dt.date, until: float) -> list[tuple[float, float]]:
    """November 5-11 of every year up to day ``until``, in days since ``start``."""
    out = []
    for year in range(start.year, start.year + int(until // 365) + 2):
        lo = (dt.date(year, *SPIKE_START) - start).days
        if lo + SPIKE_DAYS > 0 and lo < until:
            out.append((float(lo), float(lo + SPIKE_DAYS)))
    return out


def _poisson_times(rate: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points of a Poisson process at ``rate`` on each ``(lo, hi)``: (owner, time)."""
    length = np.clip(hi - lo, 0, None)
    counts = rng.poisson(rate * length)
    owner = np.repeat(np.arange(len(rate)), counts)
    return owner, lo[owner] + rng.random(len(owner)) * length[owner]


def _sorted_with_rank(owner: np.ndarray, at: np.ndarray,
                      n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort points by owner then time; each point's rank among its owner's points."""
    order = np.lexsort((at, owner))
    owner, at = owner[order], at[order]
    counts = np.bincount(owner, minlength=n)
    first = np.cumsum(counts) - counts
    return owner, at, np.arange(len(owner)) - first[owner]
