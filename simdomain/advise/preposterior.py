"""Preposterior analysis over parameter draws: what a test is expected to save.

The twin's parameter draws ``theta_1..theta_K`` (prior weights ``p``) are the prior.
A test design ``d`` has outcome slots (arms x measures) whose mean under each draw is
known (``means``, ``(K, S)``) with a count family per slot. For outer samples
``j = 1..J``: a draw ``t_j`` is taken as the truth, the test's counts ``y_j`` are drawn
around ``means[t_j]``, the draws are re-weighted by the likelihood (the exact posterior
over the draws)::

    w_jk  propto  p_k prod_s f(y_js | means[k, s])

and the decision is made again with those weights (``replan(w_j)``). The expected value
of the sample information is ::

    EVSI(d) = cost_now - mean_j cost_j

with its Monte Carlo standard error over ``j``; the *chance gain* is the mean, over the
truths, of whether the new plan meets the targets in the truth minus whether the current
plan does. (The current plan's posterior chance does not move in expectation: the
posterior is a martingale; :func:`expected_posterior_chance` checks it.)

Common random numbers: the truths and the uniforms behind every count (drawn by inverse
CDF) are fixed by the seed and shared by every design, so the differences between
designs are the designs, not noise.

When a test is informative beyond what ``K`` draws can resolve, the posterior collapses
onto a few draws (effective sample size ``1 / sum w^2`` near 1), and every other
parameter would be pinned to those draws' values too. Below ``min_ess`` the likelihood
is tempered (``L^tau``, the largest ``tau <= 1`` that keeps ``min_ess``): the test is
treated as the largest one the draws can represent, so its value is a lower bound, and
the design is flagged. ``min_ess = 1`` turns this off.

That pinning is also why the default is another way to carry the posterior
(``mode="swap"``): a test informs one *block* of parameters (a channel's curve, or the
value of an add: lifecycle and touch effects), a priori independent of the rest. The
posterior of the block is the re-weighting above; the rest keeps its prior. Both are
carried by ``K`` draws again: the block's values are resampled from the posterior
(systematic resampling, so an uninformative test gives every draw its own values back)
and draw ``k`` takes the block of draw ``source[k]`` with everything else its own. The
replan then sees ``K`` equally weighted draws; a test that teaches nothing about the
block saves exactly nothing, and a perfect test pins the block alone.

The truth of an imagined outcome is one of the ``K`` draws, so an informative test can
find it among them exactly, which a real test never can: the brand's truth is not one
of its draws. ``leave_out=True`` takes the truth's own draw out of its posterior (a
leave-one-out preposterior), so the plan after the test is made from the *other*
draws, as it would be. Its saving is then counted against the plan made from the same
other draws without the test (so a test that teaches nothing is still worth exactly 0,
and the plan now is judged on a truth it was not made from).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

FAMILIES = ("poisson", "negbin")


@dataclass(frozen=True)
class Decision:
    """A plan made under a weighting of the draws.

    Attributes
    ----------
    cost
        Its cost (yuan); ``nan`` when no plan meets the targets at the chance asked.
    feasible
        Whether a plan met the targets at the chance asked.
    met
        ``(K,)``: whether the plan meets every target under each draw.
    """

    cost: float
    feasible: bool
    met: np.ndarray


@dataclass(frozen=True)
class Posterior:
    """What the draws become after a test.

    Attributes
    ----------
    weights
        ``(K,)`` weights of the draws, summing to one.
    source
        ``(K,)`` for ``mode="swap"``: draw ``k`` takes the tested block's values from
        draw ``source[k]``; ``None``: every draw keeps its own.
    """

    weights: np.ndarray
    source: np.ndarray | None = None


Replan = Callable[[Posterior], Decision]
"""The decision under a posterior; ``Decision.met`` is over the draws as they were."""
MODES = ("swap", "weights")


@dataclass(frozen=True)
class Outcome:
    """What a test measures: mean counts per draw and slot, and their family.

    Attributes
    ----------
    means
        ``(K, S)`` expected count of each slot (an arm's adds, orders, deletions ...)
        under each draw.
    size
        ``(K, S)`` negative binomial size (variance ``mu + mu^2 / size``); ``inf``:
        Poisson.
    """

    means: np.ndarray
    size: np.ndarray

    @classmethod
    def poisson(cls, means: np.ndarray) -> Outcome:
        means = np.atleast_2d(np.asarray(means, float))
        return cls(means, np.full(means.shape, np.inf))

    def sample(self, truth: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Counts ``(J, S)`` under the draws ``truth`` by inverse CDF of ``uniforms``."""
        mu = np.maximum(self.means[truth], 1e-300)
        size = self.size[truth]
        u = uniforms[:, : mu.shape[1]]
        poisson = stats.poisson.ppf(u, mu)
        finite = np.isfinite(size)
        if not finite.any():
            return poisson
        n = np.where(finite, size, 1.0)
        negbin = stats.nbinom.ppf(u, n, n / (n + mu))
        return np.where(finite, negbin, poisson)

    def log_likelihood(self, counts: np.ndarray) -> np.ndarray:
        """``(J, K)``: log-likelihood of each outcome ``counts[j]`` under each draw."""
        y = counts[:, None, :]
        mu = np.maximum(self.means[None], 1e-300)
        size = self.size[None]
        finite = np.isfinite(size)
        out = stats.poisson.logpmf(y, mu)
        if finite.any():
            n = np.where(finite, size, 1.0)
            out = np.where(finite, stats.nbinom.logpmf(y, n, n / (n + mu)), out)
        return out.sum(axis=2)


@dataclass(frozen=True)
class Draws:
    """The common random numbers of one analysis: truths and uniforms.

    ``truth`` (``(J,)``) are draw indices taken by systematic sampling from the prior
    weights (every draw about ``J p_k`` times: less noise than independent picks);
    ``uniforms`` (``(J, slots)``) drive the counts of every design alike, ``offset``
    (``(J,)``) the resampling of ``mode="swap"``.
    """

    truth: np.ndarray
    uniforms: np.ndarray
    offset: np.ndarray

    @classmethod
    def of(cls, prior: np.ndarray, outer: int, slots: int, seed: int) -> Draws:
        rng = np.random.default_rng([seed, 0xAD715E])
        prior = np.asarray(prior, float) / np.sum(prior)
        points = (rng.random() + np.arange(outer)) / outer
        truth = np.minimum(np.searchsorted(np.cumsum(prior), points, side="right"),
                           len(prior) - 1)
        truth = rng.permutation(truth)
        return cls(truth, rng.random((outer, slots)), rng.random(outer))


@dataclass(frozen=True)
class Value:
    """The preposterior value of one design.

    Attributes
    ----------
    evsi, evsi_se
        Expected saving (yuan) of the plan after the test, and its Monte Carlo error.
    chance_gain, chance_gain_se
        Expected change in the chance that the plan meets the targets in truth.
    ess
        Median effective sample size of the posteriors.
    tempered
        Share of outcomes whose likelihood was tempered to keep ``min_ess`` draws.
    infeasible
        Share of outcomes after which no plan met the targets at the chance asked (the
        current plan is kept: no saving counted).
    savings
        ``(J,)`` the saving per outcome (for paired comparisons between designs).
    """

    evsi: float
    evsi_se: float
    chance_gain: float
    chance_gain_se: float
    ess: float
    tempered: float
    infeasible: float
    savings: np.ndarray = field(repr=False)


def posterior_weights(prior: np.ndarray, loglik: np.ndarray,
                      min_ess: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior weights ``(J, K)`` from log-likelihoods ``(J, K)``, tempered where the
    effective sample size would fall below ``min_ess``.

    Returns the weights, each row's effective sample size and its temper ``tau``.
    """
    log_prior = np.log(np.maximum(np.asarray(prior, float), 1e-300))

    tau = np.ones(len(loglik))
    w, ess = _weigh(log_prior, loglik, tau)
    low = ess < min_ess - 1e-9
    if low.any():  # the ESS falls as tau rises: bisect each row's tau
        lo, hi = np.zeros(low.sum()), np.ones(low.sum())
        rows = loglik[low]
        for _ in range(40):
            mid = (lo + hi) / 2
            _, e = _weigh(log_prior, rows, mid)
            ok = e >= min_ess
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        tau[low] = lo
        w, ess = _weigh(log_prior, loglik, tau)
    return w, ess, tau


def _weigh(log_prior: np.ndarray, loglik: np.ndarray,
         tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = log_prior + np.where(np.isneginf(loglik), -np.inf, tau[:, None] * loglik)
    z -= z.max(axis=1, keepdims=True)
    w = np.exp(z)
    w /= w.sum(axis=1, keepdims=True)
    return w, 1.0 / (w**2).sum(axis=1)


class CachedReplan:
    """A replan that remembers its answers by the posterior (weights rounded to
    ``1e-7``), so outcomes that leave the same posterior (a collapse onto one draw, a
    design that teaches nothing) are solved once."""

    def __init__(self, replan: Replan) -> None:
        self.replan = replan
        self.cache: dict[bytes, Decision] = {}
        self.solves = 0

    def __call__(self, posterior: Posterior) -> Decision:
        w = np.round(posterior.weights, 7)
        source = posterior.source
        if source is not None and np.array_equal(source, np.arange(len(source))):
            source = None  # every draw its own block: the posterior without a test
        key = w.tobytes() + (b"" if source is None else np.asarray(source, np.int64).tobytes())
        if key not in self.cache:
            self.solves += 1
            w = np.where(posterior.weights < 1e-9, 0.0, posterior.weights)
            self.cache[key] = self.replan(Posterior(w / w.sum(), source))
        return self.cache[key]


def resample(weights: np.ndarray, offset: float) -> np.ndarray:
    """``(K,)`` draw indices by systematic resampling of ``weights`` with ``offset`` in
    ``[0, 1)``, ascending: equal weights give every index once, in order."""
    k = len(weights)
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    return np.minimum(np.searchsorted(cum, (offset + np.arange(k)) / k, side="right"), k - 1)


def preposterior(outcome: Outcome, prior: np.ndarray, now: Decision, replan: Replan,
                 draws: Draws, *, mode: str = "swap", min_ess: float = 1.0,
                 leave_out: bool = False) -> Value:
    """The value of one test design (see the module's notes).

    Parameters
    ----------
    outcome
        What the test measures under each draw.
    prior
        ``(K,)`` prior weights of the draws.
    now
        The decision without the test (feasible).
    replan
        The decision under posterior weights (wrap it in :class:`CachedReplan`).
    draws
        The truths and uniforms (shared by every design: common random numbers).
    mode
        ``swap`` (the tested block's posterior, the rest at its prior) or ``weights``
        (every parameter re-weighted jointly); see the module's notes.
    min_ess
        Least effective sample size of a posterior in ``weights`` mode.
    leave_out
        Leave the truth's own draw out of its posterior (see the module's notes).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    prior = np.asarray(prior, float) / np.sum(prior)
    counts = outcome.sample(draws.truth, draws.uniforms)
    loglik = outcome.log_likelihood(counts)
    if leave_out:
        loglik[np.arange(len(loglik)), draws.truth] = -np.inf
    weights, ess, tau = posterior_weights(prior, loglik, min_ess if mode == "weights" else 1.0)
    savings = np.zeros(len(draws.truth))
    gains = np.zeros(len(draws.truth))
    infeasible = np.zeros(len(draws.truth), dtype=bool)
    equal = np.full(len(prior), 1.0 / len(prior))

    def decide(w: np.ndarray, j: int) -> Decision:
        if mode == "weights":
            return replan(Posterior(w))
        return replan(Posterior(equal, resample(w, draws.offset[j])))

    for j, truth in enumerate(draws.truth):
        base = now
        if leave_out:
            others = prior.copy()
            others[truth] = 0.0
            base = decide(others / others.sum(), j)
        after = decide(weights[j], j)
        if not (after.feasible and base.feasible):  # no plan reaches the chance: keep one
            infeasible[j] = True
            continue
        savings[j] = base.cost - after.cost
        gains[j] = float(after.met[truth]) - float(base.met[truth])
    n = len(savings)
    return Value(
        evsi=float(savings.mean()), evsi_se=_se(savings),
        chance_gain=float(gains.mean()), chance_gain_se=_se(gains),
        ess=float(np.median(ess)), tempered=float(np.mean(tau < 1)),
        infeasible=float(infeasible.mean()) if n else 0.0, savings=savings,
    )


def perfect_information(prior: np.ndarray, now: Decision, replan: Replan,
                        draws: Draws) -> tuple[float, float]:
    """The expected value of perfect information about the tested block, and its standard
    error: for each truth, every draw takes the truth's block (``mode="swap"``) and the
    plan is made again. No test of the block is worth more (in its own draws), so a block
    whose value is nil needs no test valued."""
    k = len(prior)
    equal = np.full(k, 1.0 / k)
    savings = []
    for truth in draws.truth:
        after = replan(Posterior(equal, np.full(k, truth)))
        savings.append(now.cost - after.cost if after.feasible else 0.0)
    return float(np.mean(savings)), _se(savings)


def expected_posterior_chance(outcome: Outcome, prior: np.ndarray, met: np.ndarray,
                              draws: Draws) -> tuple[float, float]:
    """Mean over outcomes of a fixed plan's posterior chance ``w_j . met``, and its
    standard error: equal to the prior chance ``p . met`` in expectation (a check)."""
    prior = np.asarray(prior, float) / np.sum(prior)
    counts = outcome.sample(draws.truth, draws.uniforms)
    weights, _, _ = posterior_weights(prior, outcome.log_likelihood(counts))
    chance = weights @ np.asarray(met, float)
    return float(chance.mean()), _se(chance)


def _se(values: Sequence[float] | np.ndarray) -> float:
    values = np.asarray(values, float)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
