"""Parsing a table's cells into typed columns; every cell that cannot be read is a reject.

Times: ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYYMMDD``, ``YYYY年MM月DD日``, each optionally
followed by ``HH:MM[:SS]`` (a space or ``T`` between), other ISO 8601 forms (fractions
of a second; a UTC offset is dropped, keeping the local time), and unix times as whole
numbers (9-10 digits: seconds, 12-13: milliseconds), converted to China Standard Time
(UTC+8, :data:`UNIX_OFFSET`) as the WeCom API's ``createtime`` is meant. Times are kept,
tz-naive, in local time; a time zone stored in a Parquet column is dropped the same way. A time
outside the plausible window (before 2000, or more than :data:`MAX_YEARS_AHEAD` years
after today) is a reject. Money: a number, optionally with thousands separators or a
leading ``¥``; counts: whole numbers 0 or more.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from simdomain.data.columns import TABLES
from simdomain.data.read import RawTable

EARLIEST = pd.Timestamp("2000-01-01")
UNIX_OFFSET = 8 * 3600 * 1_000_000_000
"""Unix times are UTC; the brand's local time (China Standard Time, no daylight saving)."""
MAX_YEARS_AHEAD = 3
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d",
            "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y%m%d",
            "%Y年%m月%d日", "%Y年%m月%d日 %H:%M:%S")
_DELETED_BY = {"customer": "customer", "staff": "staff", "del_follow_user": "customer",
               "del_external_contact": "staff", "客户": "customer", "员工": "staff",
               "客户删除": "customer", "员工删除": "staff"}
_TOUCH_KIND = {"one_to_one": "one_to_one", "1v1": "one_to_one", "1:1": "one_to_one",
               "one-to-one": "one_to_one", "private": "one_to_one", "私聊": "one_to_one",
               "group": "group", "群": "group", "群发": "group", "社群": "group",
               "moments": "moments", "朋友圈": "moments"}
REJECT_COLUMNS = ("file", "row", "column", "value", "reason")


def latest_plausible() -> pd.Timestamp:
    """The last plausible event time: :data:`MAX_YEARS_AHEAD` years after today."""
    today = dt.date.today()
    return pd.Timestamp(today.replace(year=today.year + MAX_YEARS_AHEAD, day=min(today.day, 28)))


class Rejects:
    """Cells that cannot be read, collected as (file, row, column, value, reason)."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, raw: RawTable, index: np.ndarray, column: str, values, reason) -> None:
        if len(index) == 0:
            return
        self.parts.append(pd.DataFrame({
            "file": raw.source, "row": index.astype(np.int64) + raw.first_row,
            "column": column, "value": pd.Series(values, dtype=object).astype(str).to_numpy(),
            "reason": reason}))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_COLUMNS})
        return pd.concat(self.parts, ignore_index=True).sort_values(
            ["file", "row"], kind="stable", ignore_index=True)


def parse_table(raw: RawTable, rejects: Rejects) -> tuple[pd.DataFrame, dict[str, pa.Array]]:
    """The table's columns parsed to their contract types, with ``_row`` (its number
    as a spreadsheet shows it) and ``_bad`` (some cell of the row is a reject).

    Identifier columns hold int32 codes (-1: empty) into the dictionary returned
    beside the frame, by column.
    """
    n = raw.rows
    bad = np.zeros(n, dtype=bool)
    out: dict[str, object] = {}
    for column in TABLES[raw.table]:
        if column.name not in raw.columns:
            continue
        array = raw.columns.pop(column.name)  # freed once parsed
        parser = _PARSERS[column.kind]
        values, failed, reason = parser(array)  # reason: text, or one per failed cell
        own = failed
        if column.required and column.kind not in ("id", "category"):
            failed = failed | np.asarray(array.is_null(), dtype=bool)
        if not column.required and column.kind == "id":
            failed = None
        if failed is not None and failed.any():
            index = np.flatnonzero(failed)
            if isinstance(reason, np.ndarray):
                per_cell = np.full(len(index), "", dtype=object)
                per_cell[own[index]] = reason
                reason = per_cell
            shown = take_text(array, index)
            reasons = np.where(pd.isna(shown), "is empty", reason)
            rejects.add(raw, index, column.name, shown, reasons)
            bad |= failed
        out[column.name] = values
    ids = {name: out.pop(name) for name in list(out) if isinstance(out[name], Ids)}
    frame = pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)
    for name, value in ids.items():
        frame[name] = value.codes
    frame["_row"] = np.arange(n, dtype=np.int64) + raw.first_row
    frame["_bad"] = bad
    return frame, {name: value.dictionary for name, value in ids.items()}


def take_text(array: pa.ChunkedArray, index: np.ndarray) -> np.ndarray:
    taken = array.take(pa.array(index))
    if pa.types.is_dictionary(taken.type):
        taken = taken.cast(taken.type.value_type)
    return np.asarray(taken.to_pandas(), dtype=object)


def _as_string(array: pa.ChunkedArray, *, trim: bool = True) -> pa.ChunkedArray:
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    return pc.utf8_trim_whitespace(array) if trim else array


def parse_id(array: pa.ChunkedArray):
    """Identifiers as ``(codes, dictionary)``: int32 codes (-1 where empty) into a
    pyarrow string array; an empty cell is a reject. The bundle turns the codes into
    one categorical shared by every table. Spaces around an id are trimmed (in the
    dictionary: ids repeat, so that is the cheap place)."""
    if pa.types.is_floating(array.type):  # ids saved as numbers by a spreadsheet
        array = pc.cast(array, pa.int64(), safe=False)
    encoded = pc.dictionary_encode(_as_string(array, trim=False).combine_chunks())
    codes = np.asarray(encoded.indices.fill_null(-1), dtype=np.int32)
    dictionary = pc.utf8_trim_whitespace(encoded.dictionary)
    if not dictionary.equals(encoded.dictionary):  # " c1" and "c1" are one id
        again = pc.dictionary_encode(dictionary)
        remap = np.asarray(again.indices, dtype=np.int32)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1).astype(np.int32)
        dictionary = again.dictionary
    blank = np.asarray(pc.equal(dictionary, ""), dtype=bool)
    if blank.any():  # an empty id is no id
        remap = np.where(blank, -1, np.cumsum(~blank) - 1).astype(np.int32)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1).astype(np.int32)
        dictionary = dictionary.filter(pa.array(~blank))
    return Ids(codes, dictionary), codes < 0, "is empty (a customer id is required)"


class Ids:
    """Identifier codes into a dictionary, until the bundle shares the categories."""

    def __init__(self, codes: np.ndarray, dictionary: pa.Array) -> None:
        self.codes = codes
        self.dictionary = dictionary


def parse_category(array: pa.ChunkedArray):
    """Short codes (channel, staff, tier) as a categorical; empty stays missing."""
    ids, _, _ = parse_id(array)
    categories = pd.Index(ids.dictionary.to_pandas(), dtype="str")
    return pd.Categorical.from_codes(ids.codes, categories=categories), None, ""


def parse_text(array: pa.ChunkedArray):
    """Text kept as is (trimmed), as pyarrow-backed strings; empty is missing."""
    text = _as_string(array)
    text = pc.if_else(pc.equal(text, ""), None, text)
    return pd.Series(pd.arrays.ArrowStringArray(text.combine_chunks())), None, ""


def parse_money(array: pa.ChunkedArray):
    """Amounts in yuan as float64; text that is not a finite number is a reject."""
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or \
            pa.types.is_decimal(array.type):
        values = np.asarray(pc.cast(array, pa.float64()).to_numpy(), dtype=float)
        return values, ~np.isfinite(values) & np.asarray(array.is_valid()), "is not a number"
    text = _as_string(array, trim=False)
    try:
        values = np.asarray(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False),
                            dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        cleaned = pc.replace_substring_regex(pc.utf8_trim_whitespace(text), r"^[¥￥]|,", "")
        values = pd.to_numeric(pd.Series(cleaned.to_pandas()), errors="coerce").to_numpy(float)
    failed = ~np.isfinite(values) & np.asarray(text.is_valid())
    return values, failed, "is not a number of yuan"


def parse_spend(array: pa.ChunkedArray):
    """Spend in yuan as float64: 0 or more."""
    values, failed, reason = parse_money(array)
    negative = np.nan_to_num(values) < 0
    failed = failed | negative
    return values, failed, np.where(negative[failed], "is negative (spend is 0 or more)",
                                    reason)


def parse_count(array: pa.ChunkedArray):
    """Whole numbers 0 or more as nullable Int64; anything else is a reject."""
    values, failed, _ = parse_money(array)
    failed = failed | (np.isfinite(values) & ((values < 0) | (values != np.round(values))))
    ints = pd.array(np.where(np.isfinite(values), values, 0).astype(np.int64), dtype="Int64")
    ints[~np.isfinite(values)] = pd.NA
    return ints, failed, "is not a whole number 0 or more"


def parse_time(array: pa.ChunkedArray):
    """Times as datetime64[ns] (see the module docstring); NaT where missing."""
    valid = np.asarray(array.is_valid(), dtype=bool)
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        if pa.types.is_timestamp(array.type) and array.type.tz is not None:
            array = pc.local_timestamp(array)
        ns = pc.cast(pc.cast(array, pa.timestamp("ns")), pa.int64()).to_numpy(
            zero_copy_only=False)
        ns = np.where(valid, np.nan_to_num(ns).astype(np.int64), np.iinfo(np.int64).min)
    elif pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        ns = _unix(np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)))
    else:
        ns = _parse_text_times(_as_string(array, trim=False).combine_chunks())
    values = ns.view("datetime64[ns]")
    nat = np.isnat(values)
    failed = valid & (nat | (values < EARLIEST.to_datetime64())
                      | (values > latest_plausible().to_datetime64()))
    values = np.where(failed, np.datetime64("NaT"), values).astype("datetime64[ns]")
    reason = np.where(nat[failed], "is not a date or time (expected YYYY-MM-DD [HH:MM:SS], "
                      "YYYY/MM/DD or unix seconds)", f"is outside the plausible dates "
                      f"{EARLIEST:%Y-%m-%d} to {latest_plausible():%Y-%m-%d}")
    return values, failed, reason


def _unix(numbers: np.ndarray) -> np.ndarray:
    """Unix seconds or milliseconds (by magnitude) as int64 nanoseconds; NaT elsewhere."""
    out = np.full(len(numbers), np.iinfo(np.int64).min, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        seconds = (numbers >= 1e8) & (numbers < 1e11)
        millis = (numbers >= 1e11) & (numbers < 1e14)
    out[seconds] = np.round(numbers[seconds]).astype(np.int64) * 1_000_000_000 + UNIX_OFFSET
    out[millis] = np.round(numbers[millis]).astype(np.int64) * 1_000_000 + UNIX_OFFSET
    return out


def _parse_text_times(text: pa.Array, *, trimmed: bool = False) -> np.ndarray:
    n = len(text)
    out = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    todo = np.flatnonzero(np.asarray(text.is_valid(), dtype=bool) &
                          np.asarray(pc.fill_null(pc.not_equal(text, ""), False), dtype=bool))
    for fmt in _ordered_formats(text, todo):
        if len(todo) == 0:
            return out
        part = text if len(todo) == n else text.take(pa.array(todo))
        parsed = pc.strptime(part, format=fmt, unit="s", error_is_null=True)
        ok = np.asarray(parsed.is_valid(), dtype=bool)
        if ok.any():
            seconds = pc.cast(parsed, pa.int64()).to_numpy(zero_copy_only=False)
            out[todo[ok]] = seconds[ok].astype(np.int64) * 1_000_000_000
            todo = todo[~ok]
    if len(todo) and not trimmed:  # the rest again without spaces around
        out[todo] = _parse_text_times(pc.utf8_trim_whitespace(text.take(pa.array(todo))),
                                      trimmed=True)
    elif len(todo):
        part = pd.Series(text.take(pa.array(todo)).to_pandas(), dtype=object)
        digits = part.str.fullmatch(r"\d{9,13}(\.\d+)?").fillna(False).to_numpy(bool)
        numbers = pd.to_numeric(part.where(digits), errors="coerce").to_numpy(float)
        unix = _unix(numbers)
        got = unix != np.iinfo(np.int64).min
        out[todo[got]] = unix[got]
        rest = ~got & ~digits
        if rest.any():
            out[todo[rest]] = _iso(part[rest])
    return out


def _ordered_formats(text: pa.Array, todo: np.ndarray) -> list[str]:
    """The formats, those matching the first filled cells first (most files use one)."""
    sample = text.take(pa.array(todo[:200]))
    formats = list(_FORMATS)
    hits = [int(pc.sum(pc.strptime(sample, format=f, unit="s", error_is_null=True).is_valid())
                .as_py() or 0) for f in formats]
    return [f for _, f in sorted(zip(hits, formats), key=lambda p: -p[0])]


def _iso(part: pd.Series) -> np.ndarray:
    parsed = pd.to_datetime(part, format="ISO8601", errors="coerce", utc=True)
    offsets = pd.Series(part).str.extract(r"([+-]\d{2}):?(\d{2})$|(Z)$")
    hours = pd.to_numeric(offsets[0], errors="coerce").fillna(0).to_numpy()
    minutes = pd.to_numeric(offsets[1], errors="coerce").fillna(0).to_numpy()
    sign = np.where(pd.Series(part).str.contains(r"-\d{2}:?\d{2}$").to_numpy(bool), -1, 1)
    local = parsed.dt.tz_localize(None) + pd.to_timedelta(sign * (hours * 60 + minutes), "min")
    return local.to_numpy("datetime64[ns]").view(np.int64)


def parse_month(array: pa.ChunkedArray):
    """Months as ``YYYY-MM`` strings, from ``YYYY-MM``, ``YYYY/MM``, ``YYYYMM`` or a date."""
    text = _as_string(array)
    norm = pc.replace_substring_regex(text, r"^(\d{4})[-/年]?(\d{1,2})月?$", r"\1-\2-01")
    ns = _parse_text_times(pc.if_else(pc.equal(norm, text), text, norm).combine_chunks()
                           if len(text) else pa.array([], pa.string()))
    values = ns.view("datetime64[ns]")
    valid = np.asarray(text.is_valid(), dtype=bool)
    failed = valid & (np.isnat(values) | (values < EARLIEST.to_datetime64()) |
                      (values > latest_plausible().to_datetime64()))
    months = pd.Series(values).dt.strftime("%Y-%m").where(~failed & valid).astype("str")
    return months.to_numpy(), failed, "is not a month (YYYY-MM)"


_FLAG = {"true": True, "false": False, "yes": True, "no": False, "y": True, "n": False,
         "1": True, "0": False, "1.0": True, "0.0": False, "是": True, "否": False}


def parse_flag(array: pa.ChunkedArray):
    """Yes/no cells (true/false, yes/no, 1/0, 是/否) as a nullable boolean."""
    if pa.types.is_boolean(array.type):
        return pd.array(array.to_pandas(), dtype="boolean"), None, ""
    text = pd.Series(_as_string(array).to_pandas(), dtype=object).str.lower()
    values = text.map(_FLAG)
    failed = (text.notna() & (text != "") & values.isna()).to_numpy(bool)
    return pd.array(values.where(values.notna(), None), dtype="boolean"), failed, \
        "is not yes or no (true/false, 1/0)"


def parse_enum(mapping: dict[str, str], expected: str):
    def parse(array: pa.ChunkedArray):
        text = pd.Series(_as_string(array).to_pandas(), dtype=object).str.lower()
        values = text.map(mapping)
        failed = (text.notna() & values.isna()).to_numpy(bool)
        return pd.Categorical(values, categories=sorted(set(mapping.values()))), failed, \
            f"is not {expected}"
    return parse


_PARSERS = {"id": parse_id, "category": parse_category, "text": parse_text,
            "money": parse_money, "spend": parse_spend, "count": parse_count, "time": parse_time,
            "month": parse_month, "flag": parse_flag,
            "deleted_by": parse_enum(_DELETED_BY, "customer or staff"),
            "touch_kind": parse_enum(_TOUCH_KIND, "one_to_one, group or moments")}
