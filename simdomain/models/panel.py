"""Training panels: what was known about each person on a day, and what came next.

A panel row is one person in the pool (not deleted) at the end of an observation day
``d`` of one replication. Its **features** use only the state at the end of ``d``, the
touch counters at the ends of ``d - 7`` and ``d - 30`` and the campaign calendar up to
``d``; its **labels** look at the window after ``d``:

================  ==========================================  ========================
label             1 when                                      at risk (else missing)
================  ==========================================  ========================
``churn_30d``     deleted the brand in days ``d+1 .. d+30``   everyone in the pool
``join_30d``      joined the membership in ``d+1 .. d+30``    fans and customers
``order_30d``     ordered at least once in ``d+1 .. d+30``    everyone in the pool
``koc_90d``       became a KOC in ``d+1 .. d+90``             fans, customers, members
================  ==========================================  ========================

A label is missing (NaN) when the person is not at risk or its window runs past the
last simulated day (censored). The feature definitions live in one place,
:func:`compute_features`, used both here and when the engine scores people for a
targeted policy (:mod:`simdomain.models.targeting`), so training and scoring agree.

The brand does not see a fake (fraud) account for what it is: its segment reads
``"unknown"``. Initial-pool people joined before the start date: their tenure is at
least ``d + 1`` days and ``tenure_known`` is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simdomain.scenario.model import STAGES, Scenario
from simdomain.sim.population import DELETED
from simdomain.sim.rates import FRAUD, Layout
from simdomain.simulation import SimulationResult, simulate

UNKNOWN = "unknown"
"""Segment label of people whose segment the brand cannot know (fake accounts)."""

TOUCH_KINDS = ("one_to_one", "group", "moments")
WINDOWS = (7, 30)
"""Touches are counted over the last 7 and 30 days."""

CATEGORICAL = ("stage", "segment", "source")
NUMERIC = (
    "tenure_days", "tenure_known",
    *(f"touches_{kind}_{w}d" for kind in TOUCH_KINDS for w in WINDOWS),
    "fatigue", "orders", "gmv_cny", "recency_days",
    "referred", "in_group", "invites",
    "campaign_days_30d", "campaign_days_total", "in_campaign", "days_since_campaign",
)
FEATURES = (*CATEGORICAL, *NUMERIC)
"""Feature columns of a simulation panel, categorical first."""

KEYS = ("rep", "agent", "day")
OUTCOMES = ("orders_next_30d", "gmv_next_30d_cny")
"""Not labels of a model: what the next 30 days brought (for the channel value model)."""


@dataclass(frozen=True)
class Target:
    """A label: an event within ``horizon_days`` after the observation day."""

    name: str
    horizon_days: int
    stages: tuple[str, ...]
    description: str


TARGETS = {
    t.name: t for t in (
        Target("churn_30d", 30, STAGES, "deletes the brand within 30 days"),
        Target("join_30d", 30, ("fan", "customer"), "joins the membership within 30 days"),
        Target("order_30d", 30, STAGES, "orders within 30 days"),
        Target("koc_90d", 90, ("fan", "customer", "member"), "becomes a KOC within 90 days"),
    )
}
LABELS = tuple(TARGETS)


def default_days(horizon_days: int, count: int = 4) -> list[int]:
    """``count`` observation days spread over the horizon.

    They start at day 30 (a month of touch history) and end early enough for the
    90-day KOC window to close; short horizons fall back to the 30-day windows, then to
    whatever fits.
    """
    last = horizon_days - 1
    first = min(30, last // 2)
    for label_days in (90, 30, 1):
        end = last - label_days
        if end >= first:
            break
    else:
        end = first
    days = np.unique(np.linspace(first, end, count).round().astype(int))
    return [int(d) for d in days]


def required_days(days: Sequence[int], horizon_days: int) -> list[int]:
    """Every day whose snapshot a panel on ``days`` needs: ``d``, ``d - 7``, ``d - 30``
    (for the touch windows) and ``d + 30`` (for the 30-day orders), within the horizon."""
    needed = {d + shift for d in days for shift in (-30, -7, 0, 30)}
    return sorted(d for d in needed if 0 <= d < horizon_days)


def simulate_panel(
    scenario: Scenario,
    *,
    seed: int = 0,
    reps: int = 1,
    days: Sequence[int] | None = None,
    progress: bool | None = False,
) -> tuple[SimulationResult, pd.DataFrame]:
    """Simulate with the snapshots a panel needs and build the panel."""
    days = default_days(scenario.horizon_days) if days is None else list(days)
    result = simulate(scenario, seed=seed, reps=reps, keep_agents=True,
                      observe_days=required_days(days, scenario.horizon_days),
                      progress=progress)
    return result, build_panel(result, days)


class CampaignCalendar:
    """Which days a campaign runs, as prefix sums for fast window counts."""

    def __init__(self, scenario: Scenario) -> None:
        running = np.zeros(scenario.horizon_days, dtype=bool)
        for campaign in scenario.campaigns:
            start = (campaign.start - scenario.start_date).days
            running[max(start, 0): start + campaign.days] = True
        self.running = running
        self.prefix = np.concatenate([[0], np.cumsum(running)])
        last = np.where(running, np.arange(len(running)), -1)
        self.last_running = np.maximum.accumulate(last) if len(last) else last

    def days_running(self, first: np.ndarray, day: int) -> np.ndarray:
        """Campaign days in ``first .. day`` (inclusive), per person."""
        first = np.clip(first, 0, day + 1)
        return self.prefix[day + 1] - self.prefix[first]


def compute_features(
    day: int,
    now: Mapping[str, np.ndarray],
    touches_before: Mapping[int, Mapping[str, np.ndarray]],
    calendar: CampaignCalendar,
    *,
    segments: Sequence[str],
    sources: Sequence[str],
) -> pd.DataFrame:
    """The feature frame of people as they were at the end of ``day``.

    Parameters
    ----------
    now
        Population arrays (see :data:`simdomain.sim.population.FIELDS`) of the people to
        describe, at the end of ``day``: ``stage`` (codes; nobody deleted), ``segment``,
        ``source``, ``join_day``, ``fatigue``, ``orders``, ``gmv_cny``,
        ``last_order_day``, ``in_group``, ``invites`` and the ``touches_*`` counters.
    touches_before
        For each window ``w`` (7 and 30), the ``touches_*`` counters of the same people
        at the end of ``day - w`` (0 for those not yet in the pool).
    segments, sources
        Names behind the segment and source codes (the engine's layout).
    """
    join_day = now["join_day"].astype(np.int64)
    known = join_day >= 0
    columns: dict[str, object] = {}
    segment_names = [UNKNOWN if s == FRAUD else s for s in segments]
    categories = list(dict.fromkeys([*segment_names, UNKNOWN]))
    segment_codes = np.array([categories.index(s) for s in segment_names])[now["segment"]]
    columns["stage"] = pd.Categorical.from_codes(now["stage"].astype(np.int8),
                                                 categories=list(STAGES))
    columns["segment"] = pd.Categorical.from_codes(segment_codes, categories=categories)
    columns["source"] = pd.Categorical.from_codes(now["source"].astype(np.int16),
                                                  categories=list(sources))
    columns["tenure_days"] = np.where(known, np.maximum(day - join_day, 0),
                                      day + 1).astype(np.float32)
    columns["tenure_known"] = known.astype(np.float32)
    for kind in TOUCH_KINDS:
        current = now[f"touches_{kind}"].astype(np.int64)
        for w in WINDOWS:
            columns[f"touches_{kind}_{w}d"] = (
                current - touches_before[w][f"touches_{kind}"]).astype(np.float32)
    columns["fatigue"] = now["fatigue"].astype(np.float32)
    columns["orders"] = now["orders"].astype(np.float32)
    columns["gmv_cny"] = now["gmv_cny"].astype(np.float32)
    last_order = now["last_order_day"].astype(np.int64)
    columns["recency_days"] = np.where(last_order >= 0, day - last_order, np.nan).astype(np.float32)
    columns["referred"] = (np.asarray(sources)[now["source"]] == "referral").astype(np.float32)
    columns["in_group"] = now["in_group"].astype(np.float32)
    columns["invites"] = now["invites"].astype(np.float32)
    columns["campaign_days_30d"] = calendar.days_running(
        np.maximum(join_day, day - 29), day).astype(np.float32)
    columns["campaign_days_total"] = calendar.days_running(
        np.maximum(join_day, 0), day).astype(np.float32)
    in_horizon = 0 <= day < len(calendar.running)
    n = len(join_day)
    columns["in_campaign"] = np.full(n, float(in_horizon and calendar.running[day]), np.float32)
    last_running = calendar.last_running[min(day, len(calendar.running) - 1)] if day >= 0 else -1
    since = np.nan if last_running < 0 else float(day - last_running)
    columns["days_since_campaign"] = np.full(n, since, dtype=np.float32)
    return pd.DataFrame(columns)[list(FEATURES)]


def build_panel(result: SimulationResult, days: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per replication, observation day and person in the pool that day.

    Columns: ``rep, agent, day``, the :data:`FEATURES`, the :data:`LABELS` (float: 1, 0
    or NaN when not at risk or censored) and the :data:`OUTCOMES`.

    Raises
    ------
    ValueError
        If the result lacks the agents or a snapshot the panel needs (simulate with
        ``observe_days=required_days(days, horizon)``, or use :func:`simulate_panel`).
    """
    scenario = result.scenario
    horizon = scenario.horizon_days
    days = default_days(horizon) if days is None else sorted({int(d) for d in days})
    if result.agents is None:
        raise ValueError("the panel needs the agents: simulate with keep_agents=True")
    bad = [d for d in days if not 0 <= d < horizon]
    if bad:
        raise ValueError(f"observation days must lie in 0..{horizon - 1}, got {bad}")
    snapshots = result.snapshots
    have = set() if snapshots is None else set(snapshots["day"].unique().tolist())
    missing = sorted(set(required_days(days, horizon)) - have)
    if missing:
        raise ValueError(f"the panel needs snapshots at days {missing}: simulate with "
                         f"observe_days=required_days({days}, {horizon})")
    layout = Layout.of(scenario)
    calendar = CampaignCalendar(scenario)
    by_day = _split(snapshots, ["rep", "day"])
    finals = _split(result.agents, ["rep"])
    frames = []
    for rep in range(result.reps):
        final = finals[(rep,)]
        for day in days:
            frames.append(_panel_rows(rep, day, by_day, final, calendar, layout, horizon))
    return pd.concat(frames, ignore_index=True)


FIELDS_USED = ("stage", "segment", "source", "join_day", "fatigue", "orders", "gmv_cny",
               "last_order_day", "in_group", "invites",
               *(f"touches_{k}" for k in TOUCH_KINDS))
EVENTS = ("first_order_day", "member_day", "koc_day", "deletion_day")
EVENT_OF_LABEL = {"churn_30d": "deletion_day", "join_30d": "member_day", "koc_90d": "koc_day"}
"""Labels read from the final event days (``order_30d`` compares two snapshots)."""


def _split(frame: pd.DataFrame, by: list[str]) -> dict[tuple[int, ...], dict[str, np.ndarray]]:
    """Plain arrays (categorical columns as codes) per group, in agent order."""
    arrays: dict[str, np.ndarray] = {}
    for name in ("agent", *FIELDS_USED, *EVENTS):
        if name not in frame:
            continue
        column = frame[name]
        arrays[name] = (column.cat.codes.to_numpy() if isinstance(column.dtype, pd.CategoricalDtype)
                        else column.to_numpy())
    groups = {}
    for key, positions in frame.groupby(by, sort=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        positions = positions[np.argsort(arrays["agent"][positions], kind="stable")]
        groups[tuple(int(k) for k in key)] = {n: a[positions] for n, a in arrays.items()}
    return groups


def _panel_rows(rep: int, day: int, by_day: dict, final: dict[str, np.ndarray],
                calendar: CampaignCalendar, layout: Layout, horizon: int) -> pd.DataFrame:
    now = by_day[(rep, day)]
    alive = np.flatnonzero(now["stage"] != DELETED)
    people = {name: values[alive] for name, values in now.items()}
    before = {w: _counters_at(by_day.get((rep, day - w)), alive) for w in WINDOWS}
    frame = compute_features(day, people, before, calendar,
                             segments=layout.segments, sources=layout.sources)
    frame.insert(0, "rep", np.int32(rep))
    frame.insert(1, "agent", alive.astype(np.int64))
    frame.insert(2, "day", np.int32(day))
    last = horizon - 1
    stage = people["stage"]
    for name, event in EVENT_OF_LABEL.items():
        target = TARGETS[name]
        event_day = final[event][alive]
        label = ((event_day > day) & (event_day <= day + target.horizon_days)).astype(np.float32)
        label[~np.isin(stage, [STAGES.index(s) for s in target.stages])] = np.nan
        if day + target.horizon_days > last:
            label[:] = np.nan
        frame[name] = label
    later = by_day.get((rep, day + 30))
    if later is None:
        frame["order_30d"] = np.float32(np.nan)
        frame["orders_next_30d"] = np.float32(np.nan)
        frame["gmv_next_30d_cny"] = np.float32(np.nan)
    else:
        orders = (later["orders"][alive] - people["orders"]).astype(np.float32)
        frame["order_30d"] = (orders > 0).astype(np.float32)
        frame["orders_next_30d"] = orders
        frame["gmv_next_30d_cny"] = (later["gmv_cny"][alive] - people["gmv_cny"]).astype(np.float32)
    return frame[[*KEYS, *FEATURES, *LABELS, *OUTCOMES]]


def _counters_at(snapshot: dict[str, np.ndarray] | None, agents: np.ndarray) -> dict[str, np.ndarray]:
    """Touch counters of ``agents`` in an earlier snapshot (0 before they joined, or
    before day 0 when there is no snapshot)."""
    counters = {}
    for kind in TOUCH_KINDS:
        name = f"touches_{kind}"
        values = np.zeros(len(agents), dtype=np.int64)
        if snapshot is not None:
            present = agents < len(snapshot[name])
            values[present] = snapshot[name][agents[present]]
        counters[name] = values
    return counters
