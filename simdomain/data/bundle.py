"""A brand's data bundle loaded, checked and cleaned: :func:`load_bundle` -> :class:`Bundle`.

The bundle is a folder of CSV or Parquet files, one per table (see ``docs/data.md``).
Loading reads every table column by column, parses each cell (a cell that cannot be
read is an error naming file, row and column, or with ``skip_bad_rows`` a reject),
gives every customer id one shared set of categories, cuts at ``as_of`` and cleans
(counted warnings in :class:`~simdomain.data.report.CleaningReport`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from simdomain.data import clean as rules
from simdomain.data.columns import TABLES, read_mapping
from simdomain.data.cut import count_future, cut, cut_end, span_of
from simdomain.data.orders import clean_orders
from simdomain.data.parse import Rejects, parse_table
from simdomain.data.read import find_tables, read_table
from simdomain.data.report import CleaningReport
from simdomain.data.tests_table import clean_tests
from simdomain.errors import InputError, Problem

MAX_SHOWN = 10
"""Bad cells listed in an error before the rest are only counted."""

ID_COLUMNS = {"orders": ("customer_id",), "contacts": ("customer_id",),
              "members": ("customer_id",), "referrals": ("referrer_id", "referred_id"),
              "touches": ("customer_id",)}


@dataclass(frozen=True, eq=False)
class Bundle:
    """A brand's clean data.

    Attributes
    ----------
    orders
        One row per order, sorted by time: ``customer_id`` (categorical), ``ordered_at``
        (datetime64[ns]), ``amount`` (float64 yuan, > 0 except kept 0-yuan orders),
        ``order_id`` (string, missing for rows without one), ``channel`` (categorical,
        missing if not given), ``items`` (Int64, missing if not given).
    contacts
        One row per person, sorted by add time: ``customer_id``, ``added_at``,
        ``channel`` (``unknown`` if empty), ``staff_id``, ``deleted_at`` (NaT if still a
        contact), ``deleted_by`` (``customer``/``staff``), ``n_staff``. None without a
        contacts file.
    members
        ``customer_id``, ``joined_at``, ``tier``: one row per member. None if absent.
    referrals
        ``referrer_id``, ``referred_id``, ``at``. None if absent.
    touches
        ``customer_id`` (missing for brand-wide counts), ``at``, ``kind``
        (one_to_one/group/moments), ``count`` (1 per event row). None if absent.
    spend
        ``month`` (``YYYY-MM``), ``channel``, ``spend_cny``, ``contacts``. None if absent.
    tests
        One row per arm of a test (see :mod:`simdomain.data.tests_table`): ``test_id,
        arm, lever, kind, level, start, end, people, adds, orders, deletions, joins``
        (Int64, missing where not measured), ``stage`` (empty: everyone), ``control`` and
        ``settled`` (boolean, missing if not given). None if absent.
    report
        The counted warnings, row counts and money accounting.
    rejects
        Rows dropped with ``skip_bad_rows`` (file, row, column, value, reason), or None.
    span
        The first and last event time (orders, adds, deletions, joins, referrals,
        touches).
    as_of
        The day (or instant) the data was cut at, included, or None.

    Every customer-id column is a categorical over the same categories,
    :attr:`customers`, so ``.cat.codes`` index people across tables.
    """

    orders: pd.DataFrame
    contacts: pd.DataFrame | None
    members: pd.DataFrame | None
    referrals: pd.DataFrame | None
    touches: pd.DataFrame | None
    spend: pd.DataFrame | None
    report: CleaningReport
    rejects: pd.DataFrame | None
    span: tuple[pd.Timestamp, pd.Timestamp]
    as_of: pd.Timestamp | None
    source: str
    _end: pd.Timestamp | None = field(repr=False)
    tests: pd.DataFrame | None = None
    _options: dict = field(default_factory=dict, repr=False)

    @property
    def customers(self) -> pd.Index:
        """Every customer id in the bundle (the shared categories)."""
        return self.orders["customer_id"].cat.categories

    def until(self, date: dt.date | dt.datetime | str) -> Bundle:
        """The bundle as it was known at ``date`` (that whole day included), for backtests.

        Everything after it is removed before cleaning (so a later refund does not
        reduce an earlier order), deletions after it undone, spend months after it
        removed, tests not over by then removed: the folder is read again with
        ``as_of=date`` and the same options
        (never beyond this bundle's own ``as_of``), so a large bundle holds no second
        copy of its data.
        """
        at = date
        if self._end is not None and self._end < cut_end(date):
            at = self.as_of
        return load_bundle(self.source, as_of=at, **self._options)


def load_bundle(folder: str | Path, *, as_of: dt.date | dt.datetime | str | None = None,
                columns: dict | None = None, skip_bad_rows: bool = False,
                aggregate_duplicates: bool = False, progress: bool = False) -> Bundle:
    """Load, check and clean a brand's data bundle.

    Parameters
    ----------
    folder
        The bundle: ``orders`` (required), ``contacts``, ``members``, ``referrals``,
        ``touches``, ``spend``, ``tests`` as ``.csv``, ``.csv.gz`` or ``.parquet``, and optionally
        ``columns.yaml`` mapping the brand's column names to ours.
    as_of
        Cut the data at this date (included): later events are dropped, later
        deletions undone (counted). Without it nothing is cut and events after today
        are counted as ``future_dates``.
    columns
        A column mapping ``{table: {their_name: our_name}}`` (or ``{their_name:
        our_name}`` for every table), over ``columns.yaml``.
    skip_bad_rows
        Drop rows with a cell that cannot be read and return them in ``rejects``
        instead of raising.
    aggregate_duplicates
        Merge rows without an order id that repeat customer, time and amount into one
        order (summing) instead of keeping them as separate orders.
    progress
        Show a progress bar over the tables (quiet when not on a terminal).

    Raises
    ------
    InputError
        Naming file, row and column: a missing required column or orders file, an
        unreadable file, a cell that cannot be read (the first few, then a count).
    """
    folder = Path(folder)
    end = cut_end(as_of) if as_of is not None else None
    mapping = read_mapping(folder, columns)
    files = find_tables(folder)
    rejects = Rejects()
    parsed: dict[str, pd.DataFrame] = {}
    dictionaries: dict[str, dict[str, pa.Array]] = {}
    problems: list[Problem] = []
    rows: dict[str, dict[str, int]] = {}
    names = [t for t in TABLES if t in files]
    for table in tqdm(names, desc="reading", unit="table", disable=not progress):
        try:
            raw = read_table(files[table], table, mapping[table])
        except InputError as exc:
            problems += exc.problems
            continue
        for row, reason, text in raw.bad_lines:
            rejects.parts.append(pd.DataFrame({"file": [raw.source], "row": [row],
                                               "column": [""], "value": [text],
                                               "reason": [reason]}))
        frame, dictionaries[table] = parse_table(raw, rejects)
        _row_checks(frame, table, raw, rejects)
        parsed[table] = frame
        rows[table] = {"read": raw.rows + len(raw.bad_lines)}
    if problems:
        raise InputError(problems)
    bad = rejects.frame()
    if len(bad) and not skip_bad_rows:
        raise InputError(_bad_cell_problems(bad, folder))
    skipped = []
    for table, frame in parsed.items():
        dropped = int(frame["_bad"].sum())
        lines = int((bad["file"] == files[table].name).sum() - dropped) if len(bad) else 0
        rows[table]["rejected"] = dropped + max(lines, 0)
        if dropped or lines > 0:
            mine = bad[bad["file"] == files[table].name].drop_duplicates("row").head(3)
            skipped.append({"table": table, "kind": "bad_rows_skipped",
                            "count": dropped + max(lines, 0), "examples": [
                                f"row {r.row}: {r.column or 'line'}={r.value}"
                                for r in mine.itertuples()]})
        parsed[table] = (frame[~frame["_bad"].to_numpy()] if dropped else frame).drop(
            columns="_bad")
    if parsed["orders"].empty:
        raise InputError([Problem(files["orders"].name, (), "no usable orders: every row "
                                  "has a cell that cannot be read")])
    _share_ids(parsed, dictionaries)
    options = {"columns": columns, "skip_bad_rows": skip_bad_rows,
               "aggregate_duplicates": aggregate_duplicates, "progress": progress}
    return _build(parsed, end=end, as_of=_stamp(as_of),
                  options=options, names={t: files[t].name for t in files},
                  source=str(folder),
                  rejects=bad if skip_bad_rows else None, rows=rows, skipped=skipped)


def _row_checks(frame: pd.DataFrame, table: str, raw, rejects: Rejects) -> None:
    """A rule on a whole row: touch events (rows without a count) name their customer."""
    if table == "touches" and "count" not in frame:
        if "customer_id" not in frame:
            raise InputError([Problem(raw.source, ("columns",), "touch events need "
                                      "customer_id (or a count column for totals)")])
        empty = (frame["customer_id"].to_numpy() < 0) & ~frame["_bad"].to_numpy()
        rejects.add(raw, np.flatnonzero(empty), "customer_id",
                    np.full(int(empty.sum()), None), "is empty (a touch event names its "
                    "customer; use a count column for totals)")
        frame["_bad"] |= empty


def _bad_cell_problems(bad: pd.DataFrame, folder: Path) -> list[Problem]:
    problems = []
    for cell in bad.head(MAX_SHOWN).itertuples(index=False):
        if not cell.column:
            problems.append(Problem(cell.file, (f"row {cell.row}",),
                                    f"{cell.reason}: {cell.value!r}"))
            continue
        value = "" if cell.reason.startswith("is empty") else f"{cell.value!r} "
        problems.append(Problem(cell.file, (f"row {cell.row}", cell.column),
                                f"{value}{cell.reason}"))
    if len(bad) > MAX_SHOWN:
        rows = bad.drop_duplicates(["file", "row"]).shape[0]
        problems.append(Problem(str(folder), (), (
            f"... and {len(bad) - MAX_SHOWN:,} more bad cells ({len(bad):,} in {rows:,} rows); "
            "skip_bad_rows=True (--skip-bad-rows) drops those rows and lists them as rejects")))
    return problems


def _share_ids(parsed: dict[str, pd.DataFrame],
               dictionaries: dict[str, dict[str, pa.Array]]) -> None:
    """Turn every customer-id column's codes into one categorical over the same
    categories (in order of first appearance, the orders' ids first)."""
    pairs = [(t, c) for t, cols in ID_COLUMNS.items() if t in parsed for c in cols
             if c in parsed[t]]
    chunks = [dictionaries[t][c].cast(pa.string()) for t, c in pairs]
    shared = pc.unique(pa.chunked_array(chunks, type=pa.string()))
    categories = pd.Index(shared.to_pandas(), dtype="str")
    try:  # pc.unique's values are unique: skip pandas' slow check of millions of ids
        dtype = pd.CategoricalDtype._from_fastpath(categories, ordered=False)
    except AttributeError:
        dtype = pd.CategoricalDtype(categories)
    for (table, column), dictionary in zip(pairs, chunks):
        codes = parsed[table][column].to_numpy(np.int32)
        if not shared.slice(0, len(dictionary)).equals(dictionary):
            mapping = np.asarray(pc.index_in(dictionary, value_set=shared), dtype=np.int32)
            codes = np.where(codes >= 0, mapping[np.maximum(codes, 0)], -1)
        parsed[table][column] = pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _stamp(at) -> pd.Timestamp | None:
    if at is None:
        return None
    stamp = pd.Timestamp(at).tz_localize(None)
    return stamp if isinstance(at, dt.datetime) else stamp.normalize()


def _build(parsed: dict[str, pd.DataFrame], *, end: pd.Timestamp | None,
           as_of: pd.Timestamp | None, options: dict, names: dict[str, str],
           source: str, rejects: pd.DataFrame | None, rows: dict[str, dict[str, int]],
           skipped: list[dict]) -> Bundle:
    report = CleaningReport(entries=skipped, rows=rows)
    if end is not None:
        cut(parsed, end, report)
    else:
        count_future(parsed, report)
    tables = parsed
    clean = {
        "orders": clean_orders(tables["orders"], report,
                                     aggregate_duplicates=options["aggregate_duplicates"]),
        "contacts": rules.clean_contacts(tables["contacts"], report)
        if "contacts" in tables else None,
        "members": rules.clean_members(tables["members"], report)
        if "members" in tables else None,
        "referrals": rules.clean_referrals(tables["referrals"], report)
        if "referrals" in tables else None,
        "touches": rules.clean_touches(tables["touches"], report)
        if "touches" in tables else None,
        "spend": rules.clean_spend(tables["spend"], report) if "spend" in tables else None,
    }
    rules.cross_check(clean["orders"], clean["contacts"], report)
    span = span_of(clean)
    if "tests" in tables:
        channels = None
        if clean["contacts"] is not None or clean["spend"] is not None:
            channels = {str(c) for t in ("contacts", "spend") if clean[t] is not None
                        for c in clean[t]["channel"].dropna().unique()}
        known = span if end is None else (span[0], end - pd.Timedelta(1, "ns"))
        clean["tests"] = clean_tests(tables["tests"], names["tests"], report,
                                     channels=channels, span=known)
    for table, frame in clean.items():
        if frame is not None:
            report.rows.setdefault(table, {"read": len(frame)})["kept"] = len(frame)
            clean[table] = frame.drop(columns="_row")
    return Bundle(**clean, report=report, rejects=rejects,
                  span=span, as_of=as_of, source=source, _end=end,
                  _options=options)

