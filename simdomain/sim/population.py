"""Every consumer's state, one numpy array per attribute, one slot per person."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simdomain.errors import InputError, Problem

FAN, CUSTOMER, MEMBER, KOC, DELETED = range(5)
STAGE_NAMES = ("fan", "customer", "member", "koc", "deleted")
NEVER = int(np.iinfo(np.int32).min)
"""Day of an order, upgrade or deletion that has not happened: below every real day, since
the days of people known before the start are negative (-1 = the day before it)."""
NEVER16 = int(np.iinfo(np.int16).min)
""":data:`NEVER` in a day field held in int16 (see ``narrow`` in :class:`Population`)."""
BEFORE_START = -1
"""Join day of the scenario's initial pool (in the domain since some day before the start)."""
NOT_DELETED = -1
"""Deletion day of people not deleted (deletions fall in the simulation only, on days >= 0)."""
NOBODY = -1
"""Referrer of people nobody referred."""
MULTIPLIERS = ("order_multiplier", "dormancy_multiplier", "deletion_multiplier")
"""A person's own multipliers on repeat orders, active -> dormant and deletion."""
HISTORY_DAYS = ("first_order_day", "last_order_day", "member_day", "koc_day")
"""Days of events that may not have happened (:data:`NEVER`)."""
DECAYING = ("engagement", "fatigue")
"""Touch effects that fade by a half-life, kept lazily (see :meth:`Population.decay`)."""
LATE = ("referrer",)
"""Fields stored only from the first person given a value other than their fill on: the
people placed before (the known people, or the initial pool) take no memory for them."""
RESCALE_BELOW = 2.0**-60
"""A decaying field's scale under which its stored values are brought back to scale 1.
Stored values are at most ``2 ** 60`` times their true value, far inside float32."""

# name -> (dtype, value of a new slot). Sized to their ranges: people number under 2**31
# (int32 referrers and invites), 1:1 messages are at most one a day and deletion days fall
# in the horizon (<= 3,660 days: int16); posts may reach 24 a day (int32 counters); days of
# history reach back without bound (int32); engagement and fatigue are float32, like the
# multipliers (touch effects and rates of a few significant digits; sums of money are
# float64, and so are the tallies summed from them).
FIELDS: dict[str, tuple[Any, Any]] = {
    "stage": (np.int8, FAN),
    "segment": (np.int16, 0),
    "key": (np.int32, 0),  # row of the rate tables, kept in step by World.move

    "source": (np.int16, 0),
    "join_day": (np.int32, BEFORE_START),
    "referrer": (np.int32, NOBODY),
    "dormant": (np.bool_, False),
    "in_group": (np.bool_, False),
    "engagement": (np.float32, 0.0),
    "fatigue": (np.float32, 0.0),
    "touches_one_to_one": (np.int16, 0),
    "touches_group": (np.int32, 0),
    "touches_moments": (np.int32, 0),
    "orders": (np.int32, 0),
    "gmv_cny": (np.float64, 0.0),
    "first_order_day": (np.int32, NEVER),
    "last_order_day": (np.int32, NEVER),
    "member_day": (np.int32, NEVER),
    "koc_day": (np.int32, NEVER),
    "deletion_day": (np.int16, NOT_DELETED),
    "invites": (np.int32, 0),
    **dict.fromkeys(MULTIPLIERS, (np.float32, 1.0)),
}
FRAME_DTYPES = {"referrer": np.int64, "touches_one_to_one": np.int32, "deletion_day": np.int32}
"""Dtypes of the agents frame's columns wider than their storage (the frame's schema
predates the compact storage); the others are as in :data:`FIELDS`."""


class Population:
    """Agents as columns; ``n`` slots are in use and appended in order of joining.

    Parameters
    ----------
    capacity
        Slots to allocate up front; the arrays grow (by half) when more join. Slots are
        written only when people take them, so the spare ones cost address space only.
    multipliers
        The :data:`MULTIPLIERS` kept per person; the others read as 1 and take no memory.
    narrow
        Smaller dtypes than :data:`FIELDS` gives for some fields, where the run's values
        are known to fit them (see :func:`simdomain.sim.world.narrow_dtypes`).
    derived
        Fields not stored but read from each person's ``key`` through a table (the key
        encodes them, see :func:`simdomain.sim.rates.state_key`): their values given to
        :meth:`add` must be the key's, which its caller sets.


    The :data:`DECAYING` fields fade every day by their half-life. Rather than a pass over
    everyone each day, each is stored divided by a common ``scale`` (the product of the
    daily decay factors since the last rescaling): fading is one multiplication of the
    scale (:meth:`decay`), a touch adds its effect divided by the scale
    (:meth:`stored`), and reading ``pop.engagement`` gives the true values (stored times
    scale, a copy). This is the closed form ``e_t = e_s * 2 ** (-(t - s) / half_life)``
    with a day ``s`` common to everyone, so no per-person day is kept.
    """

    def __init__(self, capacity: int = 1024, multipliers: Collection[str] = MULTIPLIERS,
                 narrow: Mapping[str, Any] | None = None,
                 derived: Mapping[str, np.ndarray] | None = None) -> None:
        self.n = 0
        self._capacity = max(int(capacity), 1)
        narrow = narrow or {}
        self._derived = dict(derived or {})
        self._fields = {name: (narrow.get(name, dtype), NEVER16 if fill == NEVER and name in
                               narrow else fill) for name, (dtype, fill) in FIELDS.items()
                        if (name not in MULTIPLIERS or name in multipliers)
                        and name not in self._derived}
        self._never16 = {name for name in HISTORY_DAYS if name in narrow}
        self._arrays = {name: np.empty(self._capacity, dtype=dtype)
                        for name, (dtype, _) in self._fields.items() if name not in LATE}
        self._base: dict[str, int | None] = dict.fromkeys(LATE)
        """The first slot stored of each :data:`LATE` field (None: none yet)."""
        self.scale = dict.fromkeys(DECAYING, 1.0)
        self.peak = dict.fromkeys(DECAYING, 0.0)
        """An upper bound on each :data:`DECAYING` field's stored values (kept by whoever
        raises them), so that the largest true value is known without a pass."""

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("_arrays")
        if arrays is None:
            raise AttributeError(name)
        if name in self._derived or name in DECAYING or name in self._never16:
            return self.at(name, slice(None))  # a copy: read otherwise than stored
        if name in LATE:  # a copy, the fill before the first stored
            dtype, fill = self._fields[name]
            values = np.full(self.n, fill, dtype=dtype)
            base = self._base[name]
            if base is not None:
                values[base:] = arrays[name][: self.n - base]
            return values
        if name not in arrays:
            if name in MULTIPLIERS:
                return np.ones(self.n, dtype=np.float32)  # not kept: 1 for everyone
            raise AttributeError(name)
        return arrays[name][: self.n]

    def __setattr__(self, name: str, value: Any) -> None:
        arrays = self.__dict__.get("_arrays")
        if arrays is not None and name in LATE:
            raise AttributeError(f"{name} is set when people are added only")
        if arrays is not None and name in self._derived:
            raise AttributeError(f"{name} is read from the key: change the key")
        if arrays is None or name not in arrays:
            super().__setattr__(name, value)
        elif name in DECAYING or name in self._never16:  # stored otherwise than read
            self.put(name, slice(None), value)
        elif getattr(value, "base", None) is not arrays[name]:
            arrays[name][: self.n] = value  # an in-place update (``pop.x += y``) is already there

    def at(self, name: str, index: slice | np.ndarray) -> np.ndarray:
        """``pop.<name>[index]``, without first reading everyone's value of a field that
        is read otherwise than stored (derived, decaying or held in int16)."""
        if name in self._derived:
            return self._derived[name][self._arrays["key"][: self.n][index]]
        if name in DECAYING:
            return self._arrays[name][: self.n][index] * np.float32(self.scale[name])
        if name in self._never16:
            return _wide_days(self._arrays[name][: self.n][index])
        return getattr(self, name)[index]

    def stored(self, name: str) -> np.ndarray:
        """A field as stored, a view to update in place: a :data:`DECAYING` field holds
        true values over ``scale[name]``, and a day field held in int16 has
        :data:`NEVER16` for :data:`NEVER` (reading ``pop.<name>`` gives the true values,
        as a copy, for both)."""
        return self._arrays[name][: self.n]

    def put(self, name: str, index: slice | np.ndarray, values: Any) -> None:
        """Set ``pop.<name>[index] = values`` for any field (:data:`NEVER` included)."""
        if name in self._never16:
            values = np.asarray(values)
            values = np.where(values == NEVER, NEVER16, values)
        elif name in DECAYING:
            values = np.asarray(values, dtype=np.float64) / self.scale[name]
            if np.size(values):
                self.peak[name] = max(self.peak[name], float(np.max(values)))
        self._arrays[name][: self.n][index] = values

    def widen(self, name: str, dtype: type) -> None:
        """Hold the field ``name`` in ``dtype`` (a wider one) from now on: for a narrow
        field whose values are about to outgrow it."""
        fill = self._fields[name][1]
        self._fields[name] = (dtype, fill)
        wide = np.empty(self._capacity, dtype=dtype)  # spare slots stay unwritten
        wide[: self.n] = self._arrays[name][: self.n]
        self._arrays[name] = wide

    def decay(self, name: str, factor: float) -> None:
        """Multiply every true value of a :data:`DECAYING` field by ``factor`` (in (0, 1]):
        the scale only, unless it falls below :data:`RESCALE_BELOW` (a rare pass)."""
        self.scale[name] *= factor
        if self.scale[name] < RESCALE_BELOW:
            values = self._arrays[name][: self.n]
            values *= np.float32(self.scale[name])
            self.peak[name] *= self.scale[name]
            self.scale[name] = 1.0

    def largest(self, name: str) -> float:
        """An upper bound on the true values of a :data:`DECAYING` field (0 if none is
        positive), with room for float32 rounding of stored value times scale."""
        return max(self.peak[name] * self.scale[name] * (1 + 2.0**-20), 0.0)

    @property
    def capacity(self) -> int:
        """Slots allocated (``n`` of them in use)."""
        return self._capacity

    def add(
        self,
        count: int,
        *,
        day: int,
        segment: np.ndarray,
        source: int | np.ndarray,
        in_group: np.ndarray,
        stage: int | np.ndarray = FAN,
        referrer: int | np.ndarray = NOBODY,
        dormant: bool | np.ndarray = False,
    ) -> slice:
        """Append ``count`` people who joined on ``day``; return their slots."""
        start, stop = self.n, self.n + count
        if stop > self._capacity:
            self._grow(stop)
        given = {"segment": segment, "source": source, "join_day": day, "in_group": in_group,
                 "stage": stage, "referrer": referrer, "dormant": dormant}
        for name, (dtype, fill) in self._fields.items():
            value = given.get(name, fill)
            if name in LATE:
                base = self._base[name]
                if base is None and np.any(np.asarray(value) != fill):
                    base = self._base[name] = start
                    self._arrays[name] = np.empty(self._capacity - start, dtype=dtype)
                if base is not None:
                    self._arrays[name][start - base: stop - base] = value
                continue
            self._arrays[name][start:stop] = value
        self.n = stop
        return slice(start, stop)

    def _grow(self, needed: int) -> None:
        capacity = max(needed, self._capacity + self._capacity // 2)
        for name, (dtype, _) in self._fields.items():
            base = self._base.get(name) or 0
            if name in self._arrays:
                grown = np.empty(capacity - base, dtype=dtype)
                grown[: self.n - base] = self._arrays[name][: self.n - base]
                self._arrays[name] = grown
        self._capacity = capacity

    def stage_counts(self) -> np.ndarray:
        """People per stage, deleted last."""
        return np.bincount(self.stage, minlength=len(STAGE_NAMES))

    def to_frame(self, segments: list[str], sources: list[str],
                 multipliers: bool = False) -> pd.DataFrame:
        """One row per agent, with readable stage, segment and source labels, and their
        own rate multipliers if ``multipliers``."""
        columns: dict[str, Any] = {"agent": np.arange(self.n)}
        for name in FIELDS:
            if name != "key" and (multipliers or name not in MULTIPLIERS):
                columns[name] = getattr(self, name).astype(FRAME_DTYPES.get(name,
                                                                            FIELDS[name][0]))
        frame = pd.DataFrame(columns)
        frame["stage"] = pd.Categorical.from_codes(frame["stage"], categories=list(STAGE_NAMES))
        frame["segment"] = pd.Categorical.from_codes(frame["segment"], categories=segments)
        frame["source"] = pd.Categorical.from_codes(frame["source"], categories=sources)
        return frame



@dataclass(frozen=True)
class InitialPeople:
    """People known on the start date, with their history: they replace the scenario's
    ``initial_pool`` counts (which are then ignored).

    Every field is an array with one element per person (or ``None`` for its default).
    Days count from the start date, so days before it are negative: ``join_day`` must be
    ``<= -1`` and so must the history days, which are :data:`NEVER` (or NaN in a float
    array) where the event has not happened. The history is carried into the agents
    frame and counted on (``orders``, ``gmv_cny``); what the simulation draws depends only
    on ``stage``, ``segment``, ``source``, ``dormant``, ``in_group`` and the multipliers
    (tenure matters for nothing today: known people never get the new-user push).

    Attributes
    ----------
    stage
        ``fan``, ``customer``, ``member`` or ``koc``, as names or codes 0..3.
    segment
        A scenario segment, as names or codes (their order in the scenario).
    source
        A scenario channel, ``initial``, ``organic`` or ``referral``, as names.
        Names may come as an array or a ``pandas.Categorical`` (the quickest).
    join_day
        Day the person was added (<= -1).
    orders, gmv_cny
        Orders and spend so far (default 0).
    first_order_day, last_order_day, member_day, koc_day
        Days of those events (<= -1), or :data:`NEVER` / NaN (the default).
    dormant
        Known to have stopped buying (default False). With ``wake = 0`` they stay so.
    in_group
        In a WeCom group; default: drawn with the touch policy's ``share_in_groups``.
    order_multiplier, dormancy_multiplier, deletion_multiplier
        The person's own multipliers (>= 0) on repeat orders, active -> dormant and
        deletion; default: drawn from the scenario's ``lifecycle.heterogeneity`` (1 where
        it sets no shape). Given, they are used as they are, in every replication.
    """

    stage: np.ndarray
    segment: np.ndarray
    source: np.ndarray
    join_day: np.ndarray
    orders: np.ndarray | None = None
    gmv_cny: np.ndarray | None = None
    first_order_day: np.ndarray | None = None
    last_order_day: np.ndarray | None = None
    member_day: np.ndarray | None = None
    koc_day: np.ndarray | None = None
    dormant: np.ndarray | None = None
    in_group: np.ndarray | None = None
    order_multiplier: np.ndarray | None = None
    dormancy_multiplier: np.ndarray | None = None
    deletion_multiplier: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.stage)

    def resolve(self, segments: list[str], sources: list[str]) -> dict[str, np.ndarray]:
        """The fields as the engine stores them: codes (stage, segment, source), int32
        days, and only the fields given (besides those four and ``join_day``).

        ``segments`` are the scenario's segments and ``sources`` the engine's names
        behind the source codes.

        Raises
        ------
        InputError
            Naming each bad field, its first bad rows and how many there are.
        """
        n = len(self.stage)
        problems: list[Problem] = []
        out: dict[str, np.ndarray] = {}

        def bad(name: str, wrong: np.ndarray, message: str) -> None:
            rows = np.flatnonzero(wrong)
            if len(rows):
                shown = ", ".join(str(r) for r in rows[:5])
                more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
                problems.append(Problem("initial people", (name,),
                                        f"rows {shown}{more}: {message}"))

        for name in InitialPeople.__dataclass_fields__:
            value = getattr(self, name)
            if value is not None and len(value) != n:
                problems.append(Problem("initial people", (name,),
                                        f"has {len(value)} rows, stage has {n}"))
        if problems:
            raise InputError(problems)
        stages = list(STAGE_NAMES[:DELETED])
        for name, names in (("stage", stages), ("segment", segments), ("source", sources)):
            value = getattr(self, name)
            out[name], wrong = _codes(value if isinstance(value, pd.Categorical)
                                      else np.asarray(value), names)
            bad(name, wrong, f"expected one of {names}")
        out["join_day"] = _days(self.join_day, never=False)
        bad("join_day", out["join_day"] > -1, "expected a day before the start (<= -1)")
        for name in HISTORY_DAYS:
            if getattr(self, name) is not None:
                out[name] = _days(getattr(self, name), never=True)
                bad(name, (out[name] > -1) | ((out[name] < -(2**30)) & (out[name] != NEVER)),
                    "expected a day before the start (<= -1), NEVER or NaN")
        for name in ("orders", "gmv_cny", *MULTIPLIERS):
            value = getattr(self, name)
            if value is not None:
                out[name] = np.asarray(value, dtype=FIELDS[name][0])
                bad(name, ~(np.isfinite(out[name]) & (out[name] >= 0)), "expected >= 0")
        for name in ("dormant", "in_group"):
            if getattr(self, name) is not None:
                out[name] = np.asarray(getattr(self, name), dtype=np.bool_)
        if problems:
            raise InputError(problems)
        return out


def _wide_days(days: np.ndarray) -> np.ndarray:
    """Int32 days from int16 ones, :data:`NEVER16` as :data:`NEVER`."""
    wide = days.astype(np.int32)
    wide[days == NEVER16] = NEVER
    return wide


def _codes(values: Any, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Int16 codes of names (an array or a pandas Categorical) or codes checked against
    their range, and which are unknown."""
    if isinstance(values, pd.Categorical):
        lookup = np.append(pd.Index(names).get_indexer(values.categories), -1).astype(np.int16)
        codes = lookup[values.codes]  # code -1 (missing) -> -1
    elif values.dtype.kind in "OUS":
        codes = pd.Index(names).get_indexer(values).astype(np.int16)  # -1: unknown
    else:
        codes = values
    wrong = (codes < 0) | (codes >= len(names))
    return np.where(wrong, 0, codes).astype(np.int16), wrong


def _days(values: np.ndarray, never: bool) -> np.ndarray:
    """Int32 days; NaN (if ``never``) as :data:`NEVER`. Non-integral days are an error of
    their own (left as 0, which no check accepts)."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        missing = np.isnan(values)
        whole = np.where(missing | (values != np.round(values)), 0, values)
        days = np.where(missing, NEVER if never else 0, whole)
        return days.astype(np.int64).clip(NEVER, None).astype(np.int32)
    if values.dtype.kind in "iu" and values.dtype.itemsize < 4 or values.dtype == np.int32:
        return values.astype(np.int32, copy=False)  # in range already: no int64 copy
    return values.astype(np.int64).clip(NEVER, np.iinfo(np.int32).max).astype(np.int32)
