"""Targeted 1:1 messages: score everyone from the engine's arrays, message the best.

:func:`policies_for` builds the engine's 1:1 policy (see :mod:`simdomain.sim.policy`)
from a scenario whose ``touch_policy.one_to_one.targeting`` is set (see
:class:`simdomain.scenario.model.Targeting`); the engine then calls :func:`select` on each
1:1 day. People are described as they were at the
end of the previous day, with the same feature code as the training panel
(:func:`simdomain.models.panel.compute_features`), and scored in one vectorized call per
model. Touch counts over the last 7 days are exact (the counters are stored on each 1:1
day, and 1:1 days repeat weekly); over the last 30 days they are interpolated between
the counters stored on the 1:1 days around 30 days ago.

:func:`compare_targeting` answers the day-one what-if: the targeted policy against the
uniform one sending the same number of messages.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from simdomain.errors import InputError, Problem
from simdomain.models.panel import TOUCH_KINDS, WINDOWS, CampaignCalendar, compute_features
from simdomain.models.persist import MANIFEST_FILE, ModelBundle, load_models
from simdomain.scenario.model import STAGES, Scenario, Targeting
from simdomain.sim.policy import Policies, PolicyView, TouchSelector
from simdomain.sim.population import DELETED
from simdomain.simulation import SimulationResult, simulate

RANK_TARGETS = {"join": "join_30d", "order": "order_30d"}
CHURN = "churn_30d"

_bundles: dict[tuple[str, int, int], ModelBundle] = {}


class TargetingError(InputError):
    """An :class:`~simdomain.errors.InputError` raised inside the simulation.

    SimPy re-raises a process's exception as ``type(exc)(*exc.args)``; this error keeps
    its problems in ``args`` so that they survive the trip.
    """

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.args = (problems,)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def bundle_for(targeting: Targeting) -> ModelBundle:
    """The checked model bundle of a targeting spec (loaded once per file version)."""
    folder = Path(targeting.model).expanduser().resolve()
    manifest = folder / MANIFEST_FILE
    stat = manifest.stat() if manifest.is_file() else None
    key = (str(folder), stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)
    if key not in _bundles:
        where = f"touch_policy -> one_to_one -> targeting -> model ({folder})"
        try:
            bundle = load_models(folder)
        except InputError as exc:
            raise TargetingError(exc.problems) from None
        if bundle.kind != "simulation":
            raise TargetingError([Problem(where, (), f"a {bundle.kind!r} model cannot score the "
                                          "simulation's people; fit one with "
                                          "`simdomain fit SCENARIO`")])
        if targeting.estimator not in bundle.models:
            raise TargetingError([Problem(where, ("estimator",), f"{targeting.estimator!r} is not "
                                          f"in the folder; it has {list(bundle.models)}")])
        needed = {CHURN, RANK_TARGETS[targeting.rank_by]}
        missing = sorted(needed - set(bundle.targets))
        if missing:
            raise TargetingError([Problem(where, (), f"the models lack the targets {missing}")])
        _bundles[key] = bundle
    return _bundles[key]


@dataclass
class _History:
    """Touch counters at dawn of each 1:1 day (day 0's dawn is all zeros)."""

    days: list[int] = field(default_factory=lambda: [0])
    counters: list[dict[str, np.ndarray]] = field(
        default_factory=lambda: [{f"touches_{k}": np.zeros(0, np.int64) for k in TOUCH_KINDS}])
    calendar: CampaignCalendar | None = None


_histories: weakref.WeakKeyDictionary[PolicyView, _History] = weakref.WeakKeyDictionary()


def policies_for(scenario: Scenario) -> Policies:
    """The engine policies ``scenario`` asks for: its targeted 1:1 policy, if any.

    The targeting's model folder is checked here, before anything is simulated.
    """
    spec = scenario.touch_policy.one_to_one.targeting
    return Policies() if spec is None else Policies(one_to_one=touch_selector(spec))


def touch_selector(targeting: Targeting) -> TouchSelector:
    """The engine's 1:1 policy for ``targeting``: :func:`select` with that spec."""
    bundle_for(targeting)

    def choose(view: PolicyView, eligible: np.ndarray) -> np.ndarray:
        return select(view, targeting, eligible)

    return choose


def select(world: PolicyView, targeting: Targeting, eligible: np.ndarray) -> np.ndarray:
    """Who gets today's 1:1 message: a boolean mask over the population.

    ``eligible`` marks the people the uniform policy would message (the policy's stages,
    after its ``reach``). Among them, people whose churn risk exceeds
    ``max_churn_risk`` are skipped, and the ``top_share`` of the eligible with the
    highest ``rank_by`` propensity are chosen.
    """
    pop = world.pop
    today = len(world.daily_rows)  # the recorder closes one row per finished day
    history = _histories.get(world)
    if history is None:
        history = _histories[world] = _History(calendar=CampaignCalendar(world.scenario))
    now = {f"touches_{k}": getattr(pop, f"touches_{k}").astype(np.int64) for k in TOUCH_KINDS}
    if history.days[-1] != today:
        history.days.append(today)
        history.counters.append(now)
    _forget(history, today - 40)
    chosen = np.zeros(pop.n, dtype=bool)
    people = np.flatnonzero(eligible & (pop.stage != DELETED))
    quota = round(targeting.top_share * len(people))
    if quota == 0:
        return chosen
    rank = RANK_TARGETS[targeting.rank_by]
    if targeting.rank_by == "join":  # members and KOCs rank last: score them only if needed
        joined = pop.stage[people] >= STAGES.index("member")
        ranked, rest = people[~joined], people[joined]
    else:
        ranked, rest = people, people[:0]
    p = score_people(world, targeting, ranked, today - 1, history, [CHURN, rank])
    allowed = p[CHURN] <= targeting.max_churn_risk
    candidates, score = ranked[allowed], p[rank][allowed]
    if len(candidates) > quota:
        candidates = candidates[np.argpartition(-score, quota - 1)[:quota]]
    elif len(candidates) < quota and len(rest):
        risk = score_people(world, targeting, rest, today - 1, history, [CHURN])[CHURN]
        extra = rest[risk <= targeting.max_churn_risk]
        candidates = np.concatenate([candidates, extra[: quota - len(candidates)]])
    chosen[candidates] = True
    return chosen


def score_people(world: PolicyView, targeting: Targeting, people: np.ndarray, day: int,
                 history: _History, targets: list[str]) -> dict[str, np.ndarray]:
    """The ``targets``' probabilities for ``people`` as of the end of ``day``."""
    if len(people) == 0:
        return {t: np.zeros(0) for t in targets}
    pop, layout = world.pop, world.layout
    arrays = {name: pop.at(name, people) for name in (
        "stage", "segment", "source", "join_day", "fatigue", "orders", "gmv_cny",
        "last_order_day", "in_group", "invites", *(f"touches_{k}" for k in TOUCH_KINDS))}
    before = {w: _counters_at(history, day + 1 - w, people) for w in WINDOWS}
    features = compute_features(day, arrays, before, history.calendar,
                                segments=layout.segments, sources=layout.sources)
    model = bundle_for(targeting).models[targeting.estimator]
    p = model.predict_proba(features, targets=targets)
    return {t: p[t].to_numpy() for t in targets}


def _counters_at(history: _History, dawn: int, people: np.ndarray) -> dict[str, np.ndarray]:
    """Counters of ``people`` at dawn of day ``dawn``: stored, or interpolated between
    the stored days around it (0 before day 0)."""
    days = history.days
    if dawn <= 0:
        return {name: np.zeros(len(people), np.int64) for name in history.counters[0]}
    after = int(np.searchsorted(days, dawn))
    if after < len(days) and days[after] == dawn:
        return {name: _take(values, people) for name, values in history.counters[after].items()}
    lo, hi = max(after - 1, 0), min(after, len(days) - 1)
    weight = 0.0 if hi == lo else (dawn - days[lo]) / (days[hi] - days[lo])
    return {name: np.rint((1 - weight) * _take(history.counters[lo][name], people)
                          + weight * _take(history.counters[hi][name], people)).astype(np.int64)
            for name in history.counters[0]}


def _take(values: np.ndarray, people: np.ndarray) -> np.ndarray:
    out = np.zeros(len(people), dtype=np.int64)
    present = people < len(values)
    out[present] = values[people[present]]
    return out


def _forget(history: _History, before: int) -> None:
    """Drop stored days no window can need, keeping one at or before ``before``."""
    while len(history.days) > 2 and history.days[1] <= before:
        del history.days[0], history.counters[0]


# -- the what-if: targeted vs uniform at the same volume ---------------------------------

OUTCOMES = ("messages", "new_customers", "new_members", "new_kocs", "deletions", "orders",
            "gmv_cny", "pool_end")
POLICIES = ("uniform", "uniform_same_volume", "targeted")
COMPARISON_COLUMNS = ["policy", "kpi", "mean", "low", "high", "diff_mean", "diff_low", "diff_high"]


@dataclass
class TargetingComparison:
    """The targeted policy against the uniform one at the same message volume.

    Attributes
    ----------
    per_rep
        ``policy, rep`` and each outcome of :data:`OUTCOMES` over the horizon.
    table
        Per policy and outcome: mean and central interval over replications, and the
        mean paired difference to ``uniform_same_volume`` with its t interval.
    reach
        The uniform ``reach`` that sends as many messages as the targeted policy.
    """

    per_rep: pd.DataFrame
    table: pd.DataFrame
    reach: float
    level: float


def compare_targeting(scenario: Scenario, targeting: Targeting, *, seed: int = 0, reps: int = 3,
                      level: float = 0.9, progress: bool | None = False) -> TargetingComparison:
    """Simulate the uniform policy, the targeted one and the uniform one whose ``reach``
    sends the targeted policy's number of messages, all with the same seed.

    The matching reach is ``reach x targeted messages / uniform messages``; the messages
    each policy actually sent are reported (``messages``).
    """
    one = scenario.touch_policy.one_to_one
    uniform = _with_one_to_one(scenario, targeting=None)
    targeted = _with_one_to_one(scenario, targeting=targeting)
    runs = {"uniform": simulate(uniform, seed=seed, reps=reps, progress=progress),
            "targeted": simulate(targeted, seed=seed, reps=reps, progress=progress)}
    sent = {name: _outcomes(result)["messages"].mean() for name, result in runs.items()}
    reach = min(1.0, one.reach * sent["targeted"] / sent["uniform"]) if sent["uniform"] else 0.0
    matched = _with_one_to_one(scenario, targeting=None, reach=reach)
    runs["uniform_same_volume"] = simulate(matched, seed=seed, reps=reps, progress=progress)
    per_rep = pd.concat([_outcomes(runs[name]).assign(policy=name) for name in POLICIES],
                        ignore_index=True)[["policy", "rep", *OUTCOMES]]
    return TargetingComparison(per_rep, _table(per_rep, level), reach, level)


def _with_one_to_one(scenario: Scenario, **changes: object) -> Scenario:
    one = scenario.touch_policy.one_to_one.model_copy(update=changes)
    policy = scenario.touch_policy.model_copy(update={"one_to_one": one})
    return scenario.model_copy(update={"touch_policy": policy})


def _outcomes(result: SimulationResult) -> pd.DataFrame:
    daily = result.daily.groupby("rep")
    frame = daily[["new_customers", "new_members", "new_kocs", "deletions", "orders",
                   "gmv_cny"]].sum()
    frame["pool_end"] = daily["pool"].last()
    frame["messages"] = result.agents.groupby("rep")["touches_one_to_one"].sum()
    return frame.reset_index()


def _table(per_rep: pd.DataFrame, level: float) -> pd.DataFrame:
    base = per_rep[per_rep["policy"] == "uniform_same_volume"].set_index("rep")
    tail = (1 - level) / 2
    rows = []
    for policy in POLICIES:
        mine = per_rep[per_rep["policy"] == policy].set_index("rep")
        for kpi in OUTCOMES:
            values = mine[kpi].astype(float)
            diffs = (values - base[kpi].reindex(values.index)).dropna()
            mean = float(diffs.mean())
            half = 0.0
            if len(diffs) > 1 and diffs.std(ddof=1) > 0:
                half = float(stats.t.ppf(0.5 + level / 2, len(diffs) - 1)
                             * diffs.std(ddof=1) / np.sqrt(len(diffs)))
            rows.append([policy, kpi, float(values.mean()), float(values.quantile(tail)),
                         float(values.quantile(1 - tail)), mean, mean - half, mean + half])
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
