"""Touch effects into a twin: from the brand's tests, and from its touch log.

Tests (:func:`simdomain.twin.effects.fit_effects`) are randomised: their effects are
effects. A touch log is not: staff message the people likely to buy, groups gather the
keen, so orders per touch in a log are an association that overstates (or, when staff
chase the people about to leave, understates) what a touch does.
:func:`observational` reads it anyway, by a Poisson regression of each contact's order
days and deletion on their touches per day; the result is used only

- as a prior, its sd widened :data:`~simdomain.twin.effects.OBS_WIDEN`-fold, for an
  effect a test informs (the test dominates), or
- as the estimate of an effect no test informs, marked *observational, confounded*.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from simdomain.scenario.model import Scenario
from simdomain.twin.effects import (
    LEVEL,
    REST,
    TOUCH_KINDS,
    EffectsFit,
    Prior,
    fit_effects,
)
from simdomain.twin.history import History

MIN_EVENTS = 20
"""Fewest order days (or deletions) over the log's days to read an effect off it."""
CONFOUNDED = ("observational (touch log): confounded, who is touched is chosen "
              "(staff message the people likely to act), so this is an association")


def observational(history: History, touches: pd.DataFrame, scenario: Scenario
                  ) -> tuple[dict[str, Prior], list[str]]:
    """Uplift and fatigue per touch kind from a per-person touch log, and messages.

    Over the log's days (its first touch to the as-of date), each contact's touches of
    each kind per day (a group or moments touch counts as a post delivered, seen with the
    scenario's view rate) make their settled engagement and fatigue per unit effect,
    ``rate / (1 - q)``. Order days are Poisson with a base per stage at the log's start
    (fan, customer) times ``1 + sum_k uplift_k x_k``; the deletion likewise with the
    fatigue multiplier (sensitivity as in the scenario, 1 where none). Fitted by maximum
    likelihood; the sd from the curvature.
    """
    messages: list[str] = []
    log = touches[touches["customer_id"].notna()]
    if len(log) < len(touches):
        messages.append(f"touch log: {len(touches) - len(log):,} rows without a customer "
                        "(brand-wide counts) cannot be matched to people; left out")
    if log.empty:
        return {}, messages
    end = pd.Timestamp(history.as_of) + pd.Timedelta(days=1)
    people = history.people
    day = ((log["at"] - end) / pd.Timedelta(days=1)).to_numpy(float)
    start = float(np.floor(day.min()))
    contact = people["contact"].to_numpy(bool)
    added = people["add_day"].to_numpy(float)
    gone = people["deletion_day"].to_numpy(float)
    t0 = np.maximum(added, start)
    t1 = np.where(np.isnan(gone), 0.0, np.minimum(gone, 0.0))
    exposed = contact & (t1 - t0 >= 1)
    index = np.flatnonzero(exposed)
    exposure = (t1 - t0)[index]
    who = people.index.get_indexer(log["customer_id"].astype(str))
    row = np.full(len(people), -1)
    row[index] = np.arange(len(index))
    inside = (who >= 0) & (row[np.maximum(who, 0)] >= 0)
    kinds = [k for k in TOUCH_KINDS if (log["kind"].astype(str).to_numpy()[inside] == k).any()]
    if not kinds:
        return {}, messages
    policy = scenario.touch_policy
    q_e = 0.5 ** (1 / policy.engagement_half_life_days)
    q_f = 0.5 ** (1 / policy.fatigue_half_life_days)
    x = np.zeros((len(index), len(kinds)))
    counts = log["count"].to_numpy(float)
    kind_of = log["kind"].astype(str).to_numpy()
    for j, kind in enumerate(kinds):
        mine = inside & (kind_of == kind)
        seen = 1.0 if kind == "one_to_one" else getattr(policy, kind).view_rate
        x[:, j] = np.bincount(row[who[mine]], weights=counts[mine] * seen,
                              minlength=len(index)) / exposure
    days = history.days
    d = days["day"].to_numpy(float)
    person_row = row[days["person"].to_numpy()]
    counted = (person_row >= 0) & (d >= t0[days["person"].to_numpy()]) & (d < 0)
    orders = np.bincount(person_row[counted], minlength=len(index)).astype(float)
    deleted = (~np.isnan(gone[index]) & (gone[index] >= t0[index])).astype(float)
    stage = (people["first_order_day"].to_numpy(float)[index] < t0[index]).astype(int)
    sensitivity = policy.fatigue_sensitivity or 1.0
    out: dict[str, Prior] = {}
    n = len(index)
    for what, y, settle in (("uplift", orders, 1 / (1 - q_e)),
                            ("fatigue", deleted, sensitivity / (1 - q_f))):
        if y.sum() < MIN_EVENTS:
            messages.append(f"touch log: {int(y.sum())} "
                            f"{'order days' if what == 'uplift' else 'deletions'} over its "
                            f"days; too few to read a {what} per touch")
            continue
        estimate, sd = _poisson_fit(y, exposure, stage, x * settle)
        for j, kind in enumerate(kinds):
            name = f"{kind}.{what}" if kind == "one_to_one" else f"{kind}.{REST}.{what}"
            out[name] = Prior(float(estimate[j]), float(sd[j]),
                              f"{CONFOUNDED}; {int(y.sum()):,} "
                              f"{'order days' if what == 'uplift' else 'deletions'} of "
                              f"{n:,} contacts over {-start:.0f} days")
    messages.append(f"touch effects from the touch log ({', '.join(kinds)}): {CONFOUNDED}; "
                    "tests outweigh them")
    return out, messages


def _poisson_fit(y: np.ndarray, exposure: np.ndarray, group: np.ndarray,
                 x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum likelihood of ``y ~ Poisson(exposure * b[group] * (1 + x @ beta))`` with
    ``beta >= 0`` for the uplift and fatigue alike; the slopes and their sds (from the
    expected information)."""
    present, group = np.unique(group, return_inverse=True)
    groups = len(present)
    k = x.shape[1]

    def nll(theta: np.ndarray) -> float:
        b = np.exp(theta[:groups])[group]
        mu = exposure * b * np.maximum(1 + x @ theta[groups:], 1e-12)
        return float(np.sum(mu - y * np.log(mu)))

    rates = [max(y[group == g].sum(), 0.5) / exposure[group == g].sum() for g in range(groups)]
    start = np.concatenate([np.log(rates), np.zeros(k)])
    bounds = [(None, None)] * groups + [(0.0, None)] * k
    res = optimize.minimize(nll, start, method="L-BFGS-B", bounds=bounds)
    theta = res.x
    # the expected information of a Poisson model: sum of mu * grad log mu grad log mu^T
    mu = exposure * np.exp(theta[:groups])[group] * (1 + x @ theta[groups:])
    grad = np.hstack([np.eye(groups)[group], x / (1 + x @ theta[groups:])[:, None]])
    info = (grad * mu[:, None]).T @ grad
    try:
        sd = np.sqrt(np.maximum(np.diag(np.linalg.inv(info)), 0.0))
    except np.linalg.LinAlgError:
        sd = np.full(len(theta), np.inf)
    return theta[groups:], sd[groups:]


def scenario_paths(name: str, scenario: dict, names: list[str]) -> list[tuple[str, ...]]:
    """The scenario paths an effect is written to: ``one_to_one.uplift`` to
    ``touch_policy.one_to_one.uplift``; a content's to that content (if ``scenario`` has
    it); ``REST`` to each of the kind's contents without an effect of its own in ``names``."""
    parts = name.split(".")
    if parts[0] == "one_to_one":
        return [("touch_policy", "one_to_one", parts[1])]
    kind, label, what = parts
    content = scenario.get("touch_policy", {}).get(kind, {}).get("content", {})
    if label != REST:
        return [("touch_policy", kind, "content", label, what)] if label in content else []
    own = {n.split(".")[1] for n in names if n.startswith(f"{kind}.")}
    return [("touch_policy", kind, "content", c, what) for c in content if c not in own]


def calibrate_effects(builder: Any, raw: dict, messages: list[str], *,
                      tests: pd.DataFrame | None = None, history: History | None = None,
                      touches: pd.DataFrame | None = None
                      ) -> tuple[EffectsFit | None, pd.DataFrame | None]:
    """Fit the touch effects of a twin from its tests and touch log; put them into it.

    ``builder`` is the calibration's collector (``fitted``, ``fixed``, ``rows``, ``n``,
    ``rng``: see :mod:`simdomain.twin.calibrate`); ``raw`` the twin's scenario as a
    mapping, whose touch policy (the base's, or none) runs alongside the tests. Each
    effect goes to its scenario paths with its draws; one with no path in the scenario
    (a content the twin's posts do not have) to the estimates only.

    Returns
    -------
    The tests' fit (or None) and the observational estimates as a table (or None).
    """
    scenario = Scenario.model_validate(raw)
    observed: dict[str, Prior] = {}
    if touches is not None and len(touches) and history is not None:
        observed, notes = observational(history, touches, scenario)
        messages.extend(notes)
    fit = None
    if tests is not None and len(tests):
        fit = fit_effects(tests, scenario, draws=builder.n, rng=builder.rng,
                          observational=observed)
    names: list[str] = []
    if fit is not None:
        messages.extend(fit.messages)
        names = list(fit.names)
        sizes = tests.groupby("test_id")["people"].sum()
        for j, name in enumerate(fit.names):
            used = sorted({t for t, lever, kind in zip(fit.arms["test_id"], fit.arms["lever"],
                                                       fit.arms["kind"])
                           if _post_kind(lever, kind) == name.split(".")[0]})
            basis = (f"tests {', '.join(used)} ({int(sizes.reindex(used).sum()):,} people), "
                     "mean field of each arm")
            if name in observed:
                basis += "; the touch log's estimate only as a wide prior"
            if name.endswith("fatigue"):
                basis += f"; only sensitivity x fatigue is seen: sensitivity {fit.sensitivity:g}"
            if not fit.identified[name]:
                basis += "; barely informed, mostly the prior"
            _record(builder, raw, name, float(fit.estimate[j]), fit.draws[:, j], basis,
                    names)
    for name, prior in observed.items():
        if name in names:
            continue
        low = 0.0 if name.endswith("uplift") or name == "one_to_one.fatigue" else -1.0
        draws = np.maximum(prior.mean + prior.sd * builder.rng.standard_normal(builder.n), low)
        _record(builder, raw, name, prior.mean, draws, prior.basis + "; no test covers it",
                names + list(observed))
    if (fit is not None or observed) and not raw["touch_policy"].get("fatigue_sensitivity") \
            and any(n.endswith("fatigue") for n in [*names, *observed]):
        sensitivity = scenario.touch_policy.fatigue_sensitivity or 1.0
        builder.fixed(("touch_policy", "fatigue_sensitivity"), sensitivity,
                      "fixed: tests and logs see only sensitivity x fatigue per touch")
        _set_path(raw, ("touch_policy", "fatigue_sensitivity"), sensitivity)
    table = None
    if observed:
        z = 1.6448536269514722  # the normal's 95% point: a 90% interval
        table = pd.DataFrame([{"effect": n, "estimate": p.mean, "low": p.mean - z * p.sd,
                               "high": p.mean + z * p.sd,
                               "used as": "a wide prior under the tests" if n in names
                               else "the estimate (no test covers it)", "basis": p.basis}
                              for n, p in observed.items()])
    return fit, table


def _record(builder: Any, raw: dict, name: str, point: float, draws: np.ndarray, basis: str,
            names: list[str]) -> None:
    paths = scenario_paths(name, raw, names)
    for path in paths:
        builder.fitted(path, point, draws, basis)
        _set_path(raw, path, point)
    if not paths:
        low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        builder.rows.append({"parameter": f"touch.{name}", "estimate": point,
                             "low": float(low), "high": float(high),
                             "basis": basis + " (not in the twin's touch policy)"})


def _post_kind(lever: str, kind: str) -> str:
    return kind if lever == "touch_frequency" else (kind.rpartition(":")[0] or "group")


def _set_path(raw: dict, path: tuple[str, ...], value: float) -> None:
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value

