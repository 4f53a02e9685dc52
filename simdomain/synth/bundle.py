"""A brand data bundle in memory, and writing it to a folder all at once.

The bundle's column contract (shared with the loader): ``orders`` (customer_id,
ordered_at, amount, order_id, channel, items), ``contacts`` (customer_id, added_at,
channel, staff_id, deleted_at, deleted_by), ``members`` (customer_id, joined_at, tier),
``referrals`` (referrer_id, referred_id, at), ``spend`` (month, channel, spend_cny,
contacts) and optionally ``touches`` (customer_id, at, kind, count) and ``tests`` (one
row per arm, see :mod:`simdomain.synth.tests`). Times are written as
``YYYY-MM-DD HH:MM:SS``, months as ``YYYY-MM``, money in yuan, and ``truth.json`` holds
the generating process, its parameters, the seed and the counts. Per-person latent
truth (rates, dropout), if any, goes to ``truth/customers.parquet``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from simdomain.errors import InputError, Problem
from simdomain.outfolder import open_folder

COLUMNS: dict[str, list[str]] = {
    "orders": ["customer_id", "ordered_at", "amount", "order_id", "channel", "items"],
    "contacts": ["customer_id", "added_at", "channel", "staff_id", "deleted_at", "deleted_by"],
    "members": ["customer_id", "joined_at", "tier"],
    "referrals": ["referrer_id", "referred_id", "at"],
    "spend": ["month", "channel", "spend_cny", "contacts"],
    "touches": ["customer_id", "at", "kind", "count"],
    "tests": ["test_id", "arm", "lever", "kind", "level", "start", "end", "people", "adds",
              "orders", "deletions", "joins", "stage", "control", "settled"],
}
"""Columns of each bundle file, in the order written."""

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SECONDS_PER_DAY = 86_400
Format = Literal["csv", "parquet"]


@dataclass
class Bundle:
    """The files of a data bundle as frames, plus ``truth.json`` as a dict.

    Time columns hold strings (``YYYY-MM-DD HH:MM:SS``; empty when there is no event), so
    what is written is exactly what is held, dirt included.
    """

    orders: pd.DataFrame
    contacts: pd.DataFrame
    members: pd.DataFrame
    referrals: pd.DataFrame
    spend: pd.DataFrame
    truth: dict[str, Any]
    touches: pd.DataFrame | None = None
    tests: pd.DataFrame | None = None
    latent: pd.DataFrame | None = field(default=None, repr=False)
    """One row per generated person with their latent truth (rates, dropout)."""

    def tables(self) -> dict[str, pd.DataFrame]:
        """The bundle's files by name (``touches`` and ``tests`` only when present)."""
        tables = {"orders": self.orders, "contacts": self.contacts, "members": self.members,
                  "referrals": self.referrals, "spend": self.spend}
        if self.touches is not None:
            tables["touches"] = self.touches
        if self.tests is not None:
            tables["tests"] = self.tests
        return tables


def timestamps(start: dt.date, days: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` strings of times ``days`` (float days since ``start``).

    Times are floored to the second; ``NaN`` becomes an empty string.
    """
    days = np.asarray(days, dtype=np.float64)
    out = np.full(days.shape, "", dtype=object)
    known = np.isfinite(days)
    if not known.any():
        return out
    seconds = np.floor(days[known] * SECONDS_PER_DAY).astype("int64")
    base = np.datetime64(start, "s")
    stamps = base + seconds.astype("timedelta64[s]")
    out[known] = np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ")
    return out


def month_labels(start: dt.date, days: np.ndarray) -> np.ndarray:
    """``YYYY-MM`` of each (float) day since ``start``."""
    base = np.datetime64(start, "D")
    dates = base + np.floor(np.asarray(days, dtype=np.float64)).astype("timedelta64[D]")
    return np.datetime_as_string(dates.astype("datetime64[M]"), unit="M")


def write_bundle(bundle: Bundle, out: str | Path, *, format: Format = "csv") -> list[str]:
    """Write ``bundle`` to the folder ``out`` all at once; return the file names.

    Through :mod:`simdomain.outfolder`, like every other output: the folder is locked,
    staged and swapped in whole, so an interrupted write leaves nothing half-written,
    and a folder holding files simdomain did not write is refused.

    Raises
    ------
    InputError
        If ``out`` cannot be written or holds other files, or ``format`` is unknown.
    """
    if format not in ("csv", "parquet"):
        raise InputError([Problem("--format", (), f"expected csv or parquet, got {format!r}")])
    with open_folder(out, "synth") as folder, folder.stage() as scratch:
        return _write_files(bundle, scratch, format)


def _write_files(bundle: Bundle, folder: Path, format: Format) -> list[str]:
    names = []
    for name, frame in bundle.tables().items():
        frame = frame[[c for c in COLUMNS[name] if c in frame.columns]]
        if format == "parquet":
            frame = _parquet_ready(frame)
        file = f"{name}.{format}"
        if format == "csv":
            frame.to_csv(folder / file, index=False, encoding="utf-8", lineterminator="\n")
        else:
            frame.to_parquet(folder / file, index=False, compression="zstd")
        names.append(file)
    if bundle.latent is not None:
        (folder / "truth").mkdir()
        bundle.latent.to_parquet(folder / "truth" / "customers.parquet", index=False,
                                 compression="zstd")
        names.append("truth/customers.parquet")
    text = json.dumps(bundle.truth, indent=2, ensure_ascii=False, default=_plain)
    (folder / "truth.json").write_text(text + "\n", encoding="utf-8")
    names.append("truth.json")
    return names


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Parquet holds them: an empty cell is null (as a CSV reader reads
    it), and a column with dirt in it (numbers and text) is text."""
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    out = frame.copy()
    for column in text:
        values = out[column].to_numpy(dtype=object)
        values = np.where(pd.isna(values), None, values)
        kinds = {type(v) for v in values if v is not None}
        if kinds - {str}:
            values = np.array([v if v is None else str(v) for v in values], dtype=object)
        values[values == ""] = None
        out[column] = pd.array(values, dtype="string")
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (dt.date, np.ndarray)):
        return str(value) if isinstance(value, dt.date) else value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
