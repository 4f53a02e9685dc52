"""Every consumer's state, one numpy array per attribute, one slot per person."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FAN, CUSTOMER, MEMBER, KOC, DELETED = range(5)
STAGE_NAMES = ("fan", "customer", "member", "koc", "deleted")
NEVER = -1
"""Day value of an event that has not happened (and join day of the initial pool)."""

# name -> (dtype, value of a new slot)
FIELDS: dict[str, tuple[Any, Any]] = {
    "stage": (np.int8, FAN),
    "segment": (np.int16, 0),
    "key": (np.int32, 0),  # row of the rate tables, kept in step by World.move

    "source": (np.int16, 0),
    "join_day": (np.int32, NEVER),
    "referrer": (np.int64, NEVER),
    "dormant": (np.bool_, False),
    "in_group": (np.bool_, False),
    "engagement": (np.float32, 0.0),
    "fatigue": (np.float32, 0.0),
    "touches_one_to_one": (np.int32, 0),
    "touches_group": (np.int32, 0),
    "touches_moments": (np.int32, 0),
    "orders": (np.int32, 0),
    "gmv_cny": (np.float64, 0.0),
    "first_order_day": (np.int32, NEVER),
    "last_order_day": (np.int32, NEVER),
    "member_day": (np.int32, NEVER),
    "koc_day": (np.int32, NEVER),
    "deletion_day": (np.int32, NEVER),
    "invites": (np.int32, 0),
}


class Population:
    """Agents as columns; ``n`` slots are in use and appended in order of joining.

    Parameters
    ----------
    capacity
        Slots to allocate up front; the arrays grow (doubling) when more join.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self._capacity = max(int(capacity), 1)
        self._arrays = {
            name: np.full(self._capacity, fill, dtype=dtype) for name, (dtype, fill) in FIELDS.items()
        }

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("_arrays")
        if arrays is None or name not in arrays:
            raise AttributeError(name)
        return arrays[name][: self.n]

    def __setattr__(self, name: str, value: Any) -> None:
        arrays = self.__dict__.get("_arrays")
        if arrays is None or name not in arrays:
            super().__setattr__(name, value)
        elif getattr(value, "base", None) is not arrays[name]:
            arrays[name][: self.n] = value  # an in-place update (``pop.x += y``) is already there

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
        referrer: int | np.ndarray = NEVER,
    ) -> slice:
        """Append ``count`` people who joined on ``day``; return their slots."""
        start, stop = self.n, self.n + count
        if stop > self._capacity:
            self._grow(stop)
        arrays = self._arrays
        arrays["segment"][start:stop] = segment
        arrays["source"][start:stop] = source
        arrays["join_day"][start:stop] = day
        arrays["in_group"][start:stop] = in_group
        arrays["stage"][start:stop] = stage
        arrays["referrer"][start:stop] = referrer
        self.n = stop
        return slice(start, stop)

    def _grow(self, needed: int) -> None:
        capacity = max(needed, self._capacity + self._capacity // 2)
        for name, (dtype, fill) in FIELDS.items():
            grown = np.full(capacity, fill, dtype=dtype)
            grown[: self.n] = self._arrays[name][: self.n]
            self._arrays[name] = grown
        self._capacity = capacity

    def stage_counts(self) -> np.ndarray:
        """People per stage, deleted last."""
        return np.bincount(self.stage, minlength=len(STAGE_NAMES))

    def to_frame(self, segments: list[str], sources: list[str]) -> pd.DataFrame:
        """One row per agent, with readable stage, segment and source labels."""
        columns: dict[str, Any] = {"agent": np.arange(self.n)}
        for name in FIELDS:
            if name != "key":
                columns[name] = getattr(self, name).copy()
        frame = pd.DataFrame(columns)
        frame["stage"] = pd.Categorical.from_codes(frame["stage"], categories=list(STAGE_NAMES))
        frame["segment"] = pd.Categorical.from_codes(frame["segment"], categories=segments)
        frame["source"] = pd.Categorical.from_codes(frame["source"], categories=sources)
        return frame
