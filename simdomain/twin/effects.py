"""Touch effects from a brand's tests: uplift and fatigue per touch kind and content.

The engine's touch model (:class:`simdomain.scenario.model.TouchPolicy`): each view adds
``uplift`` to a person's engagement and ``fatigue`` to their fatigue, both decaying with
their half-lives; conversion rates (orders, stage upgrades) are multiplied by ``1 +
engagement`` and deletion by ``1 + sensitivity * max(0, fatigue - tolerance)``.

**Mean field of an arm.** A test's people are touched every day at the arm's mean rate:
``per_week / 7 * reach`` 1:1 messages, ``posts_per_day * view_rate`` views of group
posts (everyone in a group test's arms is in the groups; elsewhere the scenario's
``share_in_groups``) or moments posts; the untested touches run at the scenario's
levels alongside. Day ``d`` of the test carries engagement ``U * (1 - q**(d + 1)) / (1
- q) + U0 * q**(d + 1) / (1 - q)``, with ``U`` the daily uplift of all touches, ``q`` the
engagement's daily decay and ``U0`` the daily uplift before the test: the scenario's
levels for people ``settled`` under them, 0 for people new to touches; likewise
fatigue. An arm's expected
count is ``people * base * mean over the test's days of the multiplier``, with one
free ``base`` rate per test and outcome (orders and joins take ``1 + engagement``,
deletions the fatigue multiplier; adds are not modelled).

**Likelihood.** Counts are Poisson; profiling out each test's base leaves the
multinomial likelihood of how the test's total split between its arms, so a test
weighs by its size and its base level never matters. Weak normal priors (centred on
the scenario's values, sd :data:`PRIOR_SD`) keep directions no test informs at their
prior (reported as such). Draws: sampling-importance-resampling from a multivariate
t around the posterior mode (Laplace covariance), exact in the limit of many proposals.

**What is identified.** ``view_rate`` and ``reach`` are taken from the scenario: only
their product with the uplift per view is seen. Deletion identifies only
``sensitivity * fatigue``: the sensitivity is kept at the scenario's value (1 where
the scenario has none) and the fatigue per touch fitted; the tolerance is fixed at the
scenario's. A frequency test on posts identifies the mix's mean uplift per view; a
content-mix test the difference between the tested label and the rest; both together
identify each.

**Observational touch logs** give a confounded estimate (who is touched is chosen; see
:mod:`simdomain.twin.touchfit`); it enters only as a prior with its sd widened
:data:`OBS_WIDEN`-fold, so a test on the same kind dominates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from simdomain.scenario.model import Scenario

POST_KINDS = ("group", "moments")
TOUCH_KINDS = ("one_to_one", *POST_KINDS)
LIFT_OUTCOMES = ("orders", "joins")
PRIOR_SD = {"uplift": 0.5, "fatigue": 0.5}
"""Prior sd of an uplift or fatigue per touch: weak (typical values are 0.01 to 0.2)."""
OBS_WIDEN = 3.0
"""An observational estimate's sd is widened this much before it is used as a prior."""
LEVEL = 0.9
PROPOSALS = 4000
REST = "*"
"""Content label standing for every content of a post kind no test varied on its own."""


@dataclass(frozen=True)
class Arm:
    """One arm of a test: its level of the lever and who was in it."""

    name: str
    level: float
    people: float
    stage: str = ""


@dataclass(frozen=True)
class Design:
    """A touch test: which lever (``touch_frequency`` or ``content_mix``), which kind (a
    touch kind, or a content label, ``moments:label`` for moments), its days and arms,
    and whether its people were settled under the scenario's touches before it."""

    test_id: str
    lever: str
    kind: str
    days: int
    arms: tuple[Arm, ...]
    settled: bool = False
    """The people were settled under the scenario's touch policy when the test began
    (their engagement and fatigue at its levels, fading); else new to touches."""

    @property
    def post_kind(self) -> str:
        """The touch kind the test varied (for content tests, whose posts)."""
        if self.lever == "touch_frequency":
            return self.kind
        post, _, _ = self.kind.rpartition(":")
        return post or "group"

    @property
    def label(self) -> str | None:
        """The content label a content-mix test varied."""
        return self.kind.rpartition(":")[2] if self.lever == "content_mix" else None


@dataclass
class Effects:
    """Touch effects per kind: uplift and fatigue per 1:1 message, and per view of each
    content of group and moments posts (``REST`` for contents not tested on their own)."""

    values: dict[str, float]
    sensitivity: float
    tolerance: float

    @classmethod
    def of(cls, scenario: Scenario, keep: set[str] | None = None) -> Effects:
        """The effects a scenario states; contents of posts not in ``keep`` (``kind.label``;
        None: all) pooled into ``REST`` at their share-weighted mean."""
        policy = scenario.touch_policy
        values = {"one_to_one.uplift": policy.one_to_one.uplift,
                  "one_to_one.fatigue": policy.one_to_one.fatigue}
        for kind in POST_KINDS:
            content = getattr(policy, kind).content
            pooled = {k: c for k, c in content.items()
                      if keep is not None and f"{kind}.{k}" not in keep}
            for label, c in content.items():
                if label not in pooled:
                    values[f"{kind}.{label}.uplift"] = c.uplift
                    values[f"{kind}.{label}.fatigue"] = c.fatigue
            total = sum(c.share for c in pooled.values())
            for what in ("uplift", "fatigue"):
                values[f"{kind}.{REST}.{what}"] = (sum(c.share * getattr(c, what)
                                                       for c in pooled.values()) / total
                                                   if total else 0.0)
        return cls(values, policy.fatigue_sensitivity or 1.0, policy.fatigue_tolerance)

    def per_touch(self, kind: str, shares: dict[str, float]) -> tuple[float, float]:
        """Uplift and fatigue of one touch of ``kind`` with the content ``shares``."""
        if kind == "one_to_one":
            return self.values["one_to_one.uplift"], self.values["one_to_one.fatigue"]
        out = []
        for what in ("uplift", "fatigue"):
            rest = self.values.get(f"{kind}.{REST}.{what}", 0.0)
            out.append(sum(s * self.values.get(f"{kind}.{c}.{what}", rest)
                           for c, s in shares.items()) if shares else rest)
        return out[0], out[1]


def _shares(scenario: Scenario, kind: str, design: Design, arm: Arm) -> dict[str, float]:
    """The content mix of ``kind``'s posts in the arm, over the labels the fit knows:
    tested labels by name, the rest pooled as ``REST``."""
    if kind == "one_to_one":
        return {}
    content = {k: c.share for k, c in getattr(scenario.touch_policy, kind).content.items()}
    if design.lever == "content_mix" and design.post_kind == kind:
        label = design.label
        others = sum(s for k, s in content.items() if k != label)
        scale = (1 - arm.level) / others if others > 0 else 0.0
        content = {k: s * scale for k, s in content.items() if k != label}
        content[label] = arm.level
        if others <= 0:
            content[REST] = 1 - arm.level
    return content


def _daily_touches(scenario: Scenario, design: Design, arm: Arm) -> dict[str, float]:
    """Touches (1:1 messages, views of posts) per person and day in the arm."""
    policy = scenario.touch_policy
    one, group, moments = policy.one_to_one, policy.group, policy.moments
    tested = design.post_kind
    per_week = arm.level if design.lever == "touch_frequency" and tested == "one_to_one" \
        else one.per_week
    messaged = tested == "one_to_one" or not arm.stage or arm.stage in one.stages
    rates = {"one_to_one": per_week / 7 * one.reach if messaged else 0.0}
    for kind, spec in (("group", group), ("moments", moments)):
        posts = arm.level if design.lever == "touch_frequency" and tested == kind \
            else spec.posts_per_day
        seen = 1.0 if kind != "group" or tested == "group" else group.share_in_groups
        rates[kind] = posts * spec.view_rate * seen
    return rates


def _build_up(half_life: float, days: int) -> tuple[np.ndarray, np.ndarray]:
    """On each of a test's days: the level of a unit daily dose from nothing on day 0,
    and what is left of the settled level of a unit daily dose given before it."""
    keep = 0.5 ** (1 / half_life)
    left = keep ** (np.arange(days) + 1.0)
    return (1 - left) / (1 - keep), left / (1 - keep)


def _before(scenario: Scenario, design: Design) -> Design:
    """The design with every arm at the scenario's level of the lever (what its people
    had before the test)."""
    policy = scenario.touch_policy
    if design.lever == "touch_frequency":
        level = (policy.one_to_one.per_week if design.kind == "one_to_one"
                 else getattr(policy, design.kind).posts_per_day)
    else:
        content = getattr(policy, design.post_kind).content
        level = content[design.label].share if design.label in content else 0.0
    return replace(design, arms=tuple(replace(a, level=float(level)) for a in design.arms))


def _loads(scenario: Scenario, design: Design, effects: Effects) -> np.ndarray:
    """``(arms, 4)``: each arm's daily uplift and fatigue from all its touches during the
    test, and before it (0 unless the design's people were settled)."""
    out = np.zeros((len(design.arms), 4))
    phases = [(0, design)] + ([(2, _before(scenario, design))] if design.settled else [])
    for column, phase in phases:
        for i, arm in enumerate(phase.arms):
            for kind, rate in _daily_touches(scenario, phase, arm).items():
                if rate:
                    out[i, column:column + 2] += rate * np.array(effects.per_touch(
                        kind, _shares(scenario, kind, phase, arm)))
    return out


def _response(scenario: Scenario, days: int, loads: np.ndarray, sensitivity: float,
              tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean lift and deletion multipliers over ``days`` of ``loads`` (``(..., 4)``, see
    :func:`_loads`)."""
    policy = scenario.touch_policy
    grow, fade = _build_up(policy.engagement_half_life_days, days)
    lift = 1 + loads[..., 0] * grow.mean() + loads[..., 2] * fade.mean()
    grow, fade = _build_up(policy.fatigue_half_life_days, days)
    level = np.maximum(loads[..., 1, None] * grow + loads[..., 3, None] * fade, 0.0)
    deletion = 1 + sensitivity * np.maximum(level - tolerance, 0.0).mean(axis=-1)
    return lift, deletion


def multipliers(scenario: Scenario, design: Design, effects: Effects) -> pd.DataFrame:
    """Each arm's mean multiplier over the test's days: ``lift`` (orders, joins) and
    ``deletion``."""
    lift, deletion = _response(scenario, design.days, _loads(scenario, design, effects),
                               effects.sensitivity, effects.tolerance)
    return pd.DataFrame({"arm": [a.name for a in design.arms], "lift": lift,
                         "deletion": deletion})


def base_rates(scenario: Scenario, stage: str = "") -> dict[str, float]:
    """Daily orders, joins and deletions per person of ``stage`` with no touches, from
    the scenario's lifecycle and segments (everyone: the initial pool's mix, else
    customers)."""
    life = scenario.lifecycle
    segments = scenario.segments.values()
    share = np.array([s.share for s in segments])
    share = share / share.sum()

    def mean(name: str) -> float:
        return float(share @ np.array([getattr(s.propensity, name) for s in segments]))

    per_stage = {
        "fan": (life.first_order * mean("first_order"), 0.0, life.deletion["fan"]),
        "customer": (life.repeat_order * mean("repeat_order"), life.join * mean("join"),
                     life.deletion["customer"]),
        "member": (life.repeat_order * life.member_order_multiplier * mean("repeat_order"),
                   0.0, life.deletion["member"]),
        "koc": (life.repeat_order * life.member_order_multiplier * mean("repeat_order"), 0.0,
                life.deletion["koc"]),
    }
    if stage:
        weights = {stage: 1.0}
    else:
        pool = scenario.initial_pool.model_dump()
        total = sum(pool.values())
        weights = {k: v / total for k, v in pool.items()} if total else {"customer": 1.0}
    out = np.zeros(3)
    for s, w in weights.items():
        out += w * np.array(per_stage[s])
    deletion = out[2] * mean("deletion")
    return {"orders": float(out[0]), "joins": float(out[1]), "deletions": float(deletion)}


def arm_means(scenario: Scenario, design: Design,
              base: dict[str, float] | None = None) -> pd.DataFrame:
    """Expected orders, joins and deletions of each arm under the scenario's effects.

    Parameters
    ----------
    scenario
        Its touch policy gives the effects and the untested touches; its lifecycle the
        base rates (see :func:`base_rates`) unless ``base`` is given.
    design
        The test.
    base
        Daily rates per person with no touches (``orders``, ``joins``, ``deletions``).

    Returns
    -------
    One row per arm: ``arm, people, orders, joins, deletions`` (expected counts over the
    test's days; deletions ignore the shrinking of the arm, a small error for rare
    deletion).
    """
    effects = Effects.of(scenario)
    m = multipliers(scenario, design, effects)
    rows = []
    for arm, (_, mult) in zip(design.arms, m.iterrows()):
        rates = base if base is not None else base_rates(scenario, arm.stage)
        exposure = arm.people * design.days
        rows.append({"arm": arm.name, "people": arm.people,
                     "orders": exposure * rates["orders"] * mult["lift"],
                     "joins": exposure * rates["joins"] * mult["lift"],
                     "deletions": exposure * rates["deletions"] * mult["deletion"]})
    return pd.DataFrame(rows)


def tests_table(design: Design, counts: pd.DataFrame,
                start: str = "2000-01-01") -> pd.DataFrame:
    """A bundle-shaped ``tests`` table of one design and its arms' ``counts`` (columns
    ``orders``, ``joins``, ``deletions``; missing ones not measured), e.g. counts drawn
    around :func:`arm_means` of a parameter draw, to refit (the inverse of
    :func:`designs_of`)."""
    first = pd.Timestamp(start)
    n = len(design.arms)
    table = pd.DataFrame({
        "test_id": design.test_id, "arm": [a.name for a in design.arms],
        "lever": design.lever, "kind": design.kind, "level": [a.level for a in design.arms],
        "start": first, "end": first + pd.Timedelta(days=design.days - 1),
        "people": pd.array(np.round([a.people for a in design.arms]), dtype="Int64"),
        "adds": pd.array([pd.NA] * n, dtype="Int64")})
    for outcome in ("orders", "deletions", "joins"):
        values = counts[outcome] if outcome in counts else [pd.NA] * n
        table[outcome] = pd.array(pd.Series(values, dtype="Float64").round(), dtype="Int64")
    table["stage"] = [a.stage for a in design.arms]
    table["control"] = pd.array([pd.NA] * n, dtype="boolean")
    table["settled"] = pd.array([design.settled] * n, dtype="boolean")
    return table


def designs_of(tests: pd.DataFrame) -> list[tuple[Design, pd.DataFrame]]:
    """The touch tests of a bundle's ``tests`` table, each with its arms' counts (channel
    spend and reward tests are left to their own fits). A test is ``settled`` unless its
    ``settled`` cells say no."""
    out = []
    touch = tests[tests["lever"].isin(["touch_frequency", "content_mix"])]
    for test_id, rows in touch.groupby("test_id", sort=False):
        days = int((rows["end"].max().normalize() - rows["start"].min().normalize()).days) + 1
        arms = tuple(Arm(str(r.arm), float(r.level), float(r.people), str(r.stage or ""))
                     for r in rows.itertuples())
        first = rows.iloc[0]
        counts = rows[["arm", "people", "orders", "joins", "deletions"]].reset_index(drop=True)
        settled = bool(rows["settled"].fillna(True).all()) if "settled" in rows else True
        out.append((Design(str(test_id), str(first["lever"]), str(first["kind"]), days, arms,
                           settled), counts))
    return out


@dataclass(frozen=True)
class Prior:
    """A normal prior on one effect (``mean``, ``sd``) and where it comes from."""

    mean: float
    sd: float
    basis: str


@dataclass
class EffectsFit:
    """Touch effects fitted from tests.

    Attributes
    ----------
    names
        The fitted effects (``one_to_one.uplift``, ``group.promo.uplift``,
        ``group.*.fatigue``, ...).
    estimate, draws
        Posterior mode and ``(n, len(names))`` posterior draws.
    identified
        Per name: whether the tests inform it (posterior sd under half the prior's).
    sensitivity, tolerance
        The fixed fatigue sensitivity and tolerance the fatigues are measured with.
    arms
        One row per arm and outcome: observed count, expected at the mode, the arm's
        multiplier, the test's ``moved`` (effect of the arm's level over the lowest
        arm's, in % of the outcome, with its 90% interval).
    priors
        The priors used, by name.
    ess
        Effective sample size of the importance draws.
    """

    names: list[str]
    estimate: np.ndarray
    draws: np.ndarray
    identified: dict[str, bool]
    sensitivity: float
    tolerance: float
    arms: pd.DataFrame
    priors: dict[str, Prior]
    ess: float
    messages: list[str] = field(default_factory=list)

    def interval(self, name: str) -> tuple[float, float]:
        """The 90% interval of one effect."""
        column = self.draws[:, self.names.index(name)]
        low, high = np.quantile(column, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        return float(low), float(high)


def _free_names(designs: list[tuple[Design, pd.DataFrame]]) -> list[str]:
    names: list[str] = []
    for design, counts in designs:
        kind = design.post_kind
        label = "" if kind == "one_to_one" else f".{design.label or REST}"
        measured = [o for o in ("orders", "joins", "deletions") if counts[o].notna().any()]
        whats = (["uplift"] if set(measured) & set(LIFT_OUTCOMES) else []) + (
            ["fatigue"] if "deletions" in measured else [])
        for what in whats:
            names.append(f"{kind}{label}.{what}")
            if design.lever == "content_mix":  # the rest of the mix moves against the label
                names.append(f"{kind}.{REST}.{what}")
    return list(dict.fromkeys(names))


def _bounds(name: str) -> tuple[float, float]:
    if name.endswith(".uplift") or name == "one_to_one.fatigue":
        return 0.0, 10.0
    return -1.0, 10.0


class _Posterior:
    """Log posterior of the free effects given the tests' arm counts.

    An arm's daily uplift and fatigue are linear in the effects, so they are kept as
    ``load = constant + matrix @ theta`` per test and evaluated for many ``theta`` at once.
    """

    def __init__(self, scenario: Scenario, designs: list[tuple[Design, pd.DataFrame]],
                 names: list[str], priors: dict[str, Prior]) -> None:
        self.scenario = scenario
        self.designs = designs
        self.names = names
        self.priors = priors
        tested = {n.rsplit(".", 1)[0] for n in names if n.count(".") == 2}
        self.fixed = Effects.of(scenario, keep={t for t in tested if not t.endswith(REST)})
        self.bounds = np.array([_bounds(n) for n in names])
        self.prior_mean = np.array([priors[n].mean for n in names])
        self.prior_sd = np.array([priors[n].sd for n in names])
        self.linear = []
        for design, counts in designs:
            base = _loads(scenario, design, self.effects(np.zeros(len(names))))
            matrix = np.stack([_loads(scenario, design, self.effects(np.eye(len(names))[j]))
                               - base for j in range(len(names))], axis=-1)
            outcomes = []
            for outcome in ("orders", "joins", "deletions"):
                y = counts[outcome].to_numpy(dtype=float, na_value=np.nan)
                keep = ~np.isnan(y)
                if keep.sum() >= 2 and y[keep].sum() > 0:
                    outcomes.append((outcome, keep, y[keep]))
            self.linear.append((design, base, matrix, counts["people"].to_numpy(float),
                                outcomes))

    def effects(self, theta: np.ndarray) -> Effects:
        values = dict(self.fixed.values)
        values.update(zip(self.names, map(float, theta)))
        return Effects(values, self.fixed.sensitivity, self.fixed.tolerance)

    def terms(self, theta: np.ndarray) -> list[tuple[str, str, np.ndarray, np.ndarray,
                                                     np.ndarray]]:
        """Per test and outcome, for ``theta`` of shape ``(m, P)``: (test, outcome, counts,
        expected ``(m, arms)``, log likelihood ``(m,)``)."""
        out = []
        for design, base, matrix, people, outcomes in self.linear:
            loads = base + np.einsum("akp,mp->mak", matrix, theta)
            lift, deletion = _response(self.scenario, design.days, loads,
                                       self.fixed.sensitivity, self.fixed.tolerance)
            for outcome, keep, y in outcomes:
                weight = (deletion if outcome == "deletions" else lift)[:, keep] * people[keep]
                p = weight / weight.sum(axis=1, keepdims=True)
                out.append((design.test_id, outcome, y, p * y.sum(),
                            np.sum(special.xlogy(y, p), axis=1)))
        return out

    def batch(self, theta: np.ndarray) -> np.ndarray:
        """Log posterior of each row of ``theta`` (``-inf`` outside the bounds)."""
        theta = np.atleast_2d(theta)
        inside = np.all((theta >= self.bounds[:, 0]) & (theta <= self.bounds[:, 1]), axis=1)
        logp = stats.norm.logpdf(theta, self.prior_mean, self.prior_sd).sum(axis=1)
        for *_, ll in self.terms(theta):
            logp = logp + ll
        return np.where(inside, np.nan_to_num(logp, nan=-np.inf), -np.inf)

    def __call__(self, theta: np.ndarray) -> float:
        return float(self.batch(theta)[0])


def _hessian(f, x: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x``."""
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * step[i], np.eye(n)[j] * step[j]
            value = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * step[i] * step[j])
            h[i, j] = h[j, i] = value
    return h


def fit_effects(tests: pd.DataFrame, scenario: Scenario, *, draws: int = 200,
                rng: np.random.Generator, observational: dict[str, Prior] | None = None
                ) -> EffectsFit | None:
    """Fit the touch effects the tests inform.

    Parameters
    ----------
    tests
        A bundle's ``tests`` table (:attr:`simdomain.data.Bundle.tests`).
    scenario
        The scenario whose touch policy runs alongside the tests and whose effects are
        the priors' centres (and stay fixed where no test informs them).
    draws
        Posterior draws to return.
    rng
        The generator of the draws.
    observational
        Priors from observational touch logs, by effect name: used with their sd
        widened :data:`OBS_WIDEN`-fold (a test outweighs them).

    Returns
    -------
    The fit, or None when no test varies a touch.
    """
    designs = designs_of(tests)
    messages: list[str] = []
    usable = []
    for design, counts in designs:
        kind = design.post_kind
        if kind in POST_KINDS and design.lever == "content_mix" and \
                getattr(scenario.touch_policy, kind).posts_per_day == 0:
            messages.append(f"test {design.test_id}: a content mix of {kind} posts, but the "
                            f"scenario posts none (posts_per_day 0); give a base scenario "
                            "with the posting rate during the test. Not used")
            continue
        usable.append((design, counts))
    names = _free_names(usable)
    if not names:
        return None
    tested = {n.rsplit(".", 1)[0] for n in names if n.count(".") == 2}
    start = Effects.of(scenario, keep={t for t in tested if not t.endswith(REST)})
    priors = {n: Prior(start.values.get(n, 0.0), PRIOR_SD[n.rsplit(".", 1)[1]],
                       "weak prior around the scenario's value") for n in names}
    for name, obs in (observational or {}).items():
        if name in priors:
            priors[name] = Prior(obs.mean, obs.sd * OBS_WIDEN,
                                 f"{obs.basis}; sd widened {OBS_WIDEN:g}x")
    post = _Posterior(scenario, usable, names, priors)
    theta = _mode(post, np.array([max(start.values.get(n, 0.0), 0.0) for n in names]))
    sample, ess = _sample(post, theta, draws, rng)
    prior_sd = np.array([priors[n].sd for n in names])
    identified = dict(zip(names, (sample.std(axis=0) < 0.5 * prior_sd).tolist()))
    for name, ok in identified.items():
        if not ok:
            messages.append(f"touch effect {name}: the tests barely inform it; its interval "
                            "is mostly the prior's")
    if ess < draws:
        messages.append(f"touch effects: only {ess:.0f} effective importance draws for "
                        f"{draws}; intervals are rough")
    fit = EffectsFit(names, theta, sample, identified, start.sensitivity, start.tolerance,
                     pd.DataFrame(), priors, ess, messages)
    fit.arms = _arm_table(post, fit)
    return fit


def _mode(post: _Posterior, x0: np.ndarray) -> np.ndarray:
    """The posterior mode (L-BFGS-B from the scenario's values and from small effects;
    the gradient by forward differences, all in one batch)."""
    lower, upper = post.bounds[:, 0], post.bounds[:, 1]
    step = 1e-7

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        points = np.vstack([theta, theta + step * np.eye(len(theta))])
        points[1:] = np.minimum(points[1:], upper)  # stays inside at the upper bound
        values = -post.batch(points)
        delta = np.maximum(np.diag(points[1:] - theta), 1e-300)
        return float(values[0]), (values[1:] - values[0]) / delta

    best = None
    for start in (x0, np.full(len(x0), 0.05)):
        start = np.clip(start, lower + 1e-9, upper - 1e-9)
        res = optimize.minimize(value_and_grad, start, jac=True, method="L-BFGS-B",
                                bounds=list(map(tuple, post.bounds)))
        if best is None or res.fun < best.fun:
            best = res
    return best.x


def _sample(post: _Posterior, mode: np.ndarray, n: int,
            rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Posterior draws by sampling-importance-resampling from a multivariate t(4)."""
    step = np.maximum(np.abs(mode) * 1e-3, 1e-4)
    h = -_hessian(post, np.clip(mode, post.bounds[:, 0] + 2 * step, None), step)
    prior_var = np.array([post.priors[k].sd for k in post.names]) ** 2
    try:
        cov = np.linalg.inv(h + np.diag(1e-9 / prior_var))
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        cov = np.diag(prior_var)
    cov = 1.5 * (cov + cov.T) / 2  # a wider proposal keeps the weights tame
    proposal = stats.multivariate_t(loc=mode, shape=cov, df=4, seed=rng)
    x = proposal.rvs(PROPOSALS).reshape(PROPOSALS, -1)
    logq = proposal.logpdf(x)
    logp = post.batch(x)
    logw = logp - logq
    logw[~np.isfinite(logw)] = -np.inf
    w = np.exp(logw - logw.max())
    w /= w.sum()
    ess = 1.0 / float(np.sum(w**2))
    pick = rng.choice(PROPOSALS, size=n, replace=True, p=w)
    return x[pick], ess


def _arm_table(post: _Posterior, fit: EffectsFit) -> pd.DataFrame:
    """Observed and fitted counts per arm and outcome, and what each arm's level moved
    (its rate over the lowest level's, in %, with a 90% interval over the draws)."""
    rows = []
    at_mode = {(t, o): e[0] for t, o, _, e, _ in post.terms(fit.estimate[None, :])}
    for design, base, matrix, people, outcomes in post.linear:
        low = int(np.argmin([a.level for a in design.arms]))
        responses = {}
        for key, theta in (("mode", fit.estimate[None, :]), ("draws", fit.draws)):
            loads = base + np.einsum("akp,mp->mak", matrix, theta)
            responses[key] = _response(post.scenario, design.days, loads,
                                       post.fixed.sensitivity, post.fixed.tolerance)
        for outcome, keep, y in outcomes:
            which = 1 if outcome == "deletions" else 0
            mode = responses["mode"][which][0]
            moved = responses["draws"][which] / responses["draws"][which][:, [low]] - 1
            lo, hi = np.quantile(moved, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
            observed = np.full(len(design.arms), np.nan)
            fitted = np.full(len(design.arms), np.nan)
            observed[keep], fitted[keep] = y, at_mode[(design.test_id, outcome)]
            for i, arm in enumerate(design.arms):
                rows.append({"test_id": design.test_id, "lever": design.lever,
                             "kind": design.kind, "arm": arm.name, "level": arm.level,
                             "people": arm.people, "outcome": outcome,
                             "observed": observed[i], "fitted": fitted[i],
                             "moved_pct": 100 * (mode[i] / mode[low] - 1),
                             "moved_low_pct": 100 * lo[i], "moved_high_pct": 100 * hi[i]})
    return pd.DataFrame(rows)


def lack_of_fit(fit_arms: pd.DataFrame) -> pd.DataFrame:
    """Per test and outcome: Pearson's chi-square of the arms' counts against the fitted
    split, and its p-value on ``arms - 1`` degrees of freedom (an upper bound on the
    p-value: fitted effects use some of them). A small p-value says the mean-field
    response does not describe the arms (e.g. a response that saturates)."""
    rows = []
    for (test, outcome), part in fit_arms.dropna(subset=["observed"]).groupby(
            ["test_id", "outcome"], sort=False):
        chi2 = float((((part["observed"] - part["fitted"]) ** 2) / part["fitted"]).sum())
        dof = len(part) - 1
        rows.append({"test_id": test, "outcome": outcome, "chi2": chi2, "dof": dof,
                     "p_value": float(stats.chi2.sf(chi2, dof)) if dof else math.nan})
    return pd.DataFrame(rows)
