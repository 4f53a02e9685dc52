"""Finding a bundle's files and reading them column by column (pyarrow).

A table is one file named by its stem: ``orders.csv``, ``orders.csv.gz`` or
``orders.parquet``. CSV files are read as text in whatever encoding the brand's tools
saved (:func:`simdomain.textio.detect_encoding`: UTF-8 with or without a byte-order
mark, UTF-16, GB18030), only the columns the contract maps, every cell as a string
(empty cells, ``NULL`` and ``\\N`` as missing); the cells are parsed afterwards so that a
bad one can be named by row and column. Parquet columns keep their types.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from simdomain.data.columns import TABLES, resolve
from simdomain.errors import InputError, Problem
from simdomain.textio import detect_encoding

SUFFIXES = (".csv", ".csv.gz", ".parquet")
NULLS = ["", "NULL", "null", "\\N", "NaN", "nan", "None", "#N/A"]
_BLOCK = 16 << 20


@dataclass(frozen=True)
class RawTable:
    """A table's mapped columns as read, before any cell is parsed.

    ``first_row`` is the row number a spreadsheet gives the first data row (2 for a
    CSV file, whose header is row 1; 1 for Parquet). ``bad_lines`` are the (row, reason,
    text) of lines skipped for having the wrong number of cells.
    """

    table: str
    source: str
    columns: dict[str, pa.ChunkedArray]
    rows: int
    first_row: int
    bad_lines: tuple[tuple[int, str, str], ...] = ()


def find_tables(folder: Path) -> dict[str, Path]:
    """The bundle's files by table name.

    Raises
    ------
    InputError
        When the folder does not exist, holds two files for one table, or has no orders.
    """
    if not folder.is_dir():
        what = "is a file, expected a folder" if folder.exists() else "no such folder"
        raise InputError([Problem(str(folder), (), what)])
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        name = path.name.lower()
        for suffix in SUFFIXES:
            stem = name[: -len(suffix)]
            if name.endswith(suffix) and stem in TABLES and path.is_file():
                found.setdefault(stem, []).append(path)
    problems = [Problem(str(folder), (), f"two files for the {table} table: "
                        f"{', '.join(p.name for p in paths)}; keep one")
                for table, paths in found.items() if len(paths) > 1]
    for path in sorted(folder.iterdir()):
        stem, _, suffix = path.name.lower().partition(".")
        if stem in TABLES and stem not in found and suffix in ("xlsx", "xls", "txt", "json"):
            problems.append(Problem(path.name, (), "save it as CSV (UTF-8) or Parquet: "
                                    f"{stem}.csv, {stem}.csv.gz or {stem}.parquet"))
    if "orders" not in found and not problems:
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        problems.append(Problem(str(folder), (), "no orders file (orders.csv, orders.csv.gz "
                                f"or orders.parquet); the folder holds {present}"))
    if problems:
        raise InputError(problems)
    return {table: paths[0] for table, paths in found.items()}


def read_table(path: Path, table: str, explicit: dict[str, str]) -> RawTable:
    """Read the contract's columns of one file.

    Raises
    ------
    InputError
        When the file cannot be read, is not text, or lacks a required column.
    """
    source = path.name
    try:
        if path.name.lower().endswith(".parquet"):
            return _read_parquet(path, table, explicit, source)
        return _read_csv(path, table, explicit, source)
    except OSError as exc:
        raise InputError([Problem(source, (), f"cannot read the file: {exc}")]) from None


def _read_parquet(path: Path, table: str, explicit: dict[str, str], source: str) -> RawTable:
    try:
        schema = pq.read_schema(path)
        mapping = resolve(list(schema.names), table, explicit, source)
        data = pq.read_table(path, columns=list(mapping))
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        raise InputError([Problem(source, (), f"cannot read it as Parquet: {exc}")]) from None
    columns = {mapping[name]: data.column(name) for name in mapping}
    return RawTable(table, source, columns, data.num_rows, 1)


def _head(path: Path) -> bytes:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(1 << 20)
    except (gzip.BadGzipFile, EOFError) as exc:
        raise InputError([Problem(path.name, (), f"cannot decompress it: {exc}")]) from None


def _read_csv(path: Path, table: str, explicit: dict[str, str], source: str) -> RawTable:
    head = _head(path)
    encoding = detect_encoding(head, source)
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff")
    if not text.strip():
        if table == "orders":
            _empty(source)
        return RawTable(table, source, {c.name: pa.chunked_array([], pa.string())
                                        for c in TABLES[table] if c.required}, 0, 2)
    header = next(csv.reader(io.StringIO(text.splitlines()[0])), [])
    mapping = resolve(header, table, explicit, source)
    bad_lines: list[tuple[int, int, str]] = []

    def invalid(row: pcsv.InvalidRow) -> str:
        bad_lines.append((row.actual_columns, row.expected_columns, row.text))
        return "skip"

    # one column each: an identical name twice would make pyarrow refuse the header
    read = pcsv.ReadOptions(encoding=_arrow_codec(encoding), block_size=_BLOCK,
                            column_names=_unique(header), skip_rows=1)
    convert = pcsv.ConvertOptions(
        column_types={_unique(header)[header.index(n)]: pa.string() for n in mapping},
        include_columns=[_unique(header)[header.index(n)] for n in mapping],
        strings_can_be_null=True, null_values=NULLS, quoted_strings_can_be_null=True)
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            data = pcsv.read_csv(stream, read_options=read, convert_options=convert,
                                 parse_options=pcsv.ParseOptions(invalid_row_handler=invalid))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputError([Problem(source, (), f"cannot read it as CSV ({encoding}): "
                                  f"{str(exc).splitlines()[0]}")]) from None
    columns = {mapping[name]: data.column(_unique(header)[header.index(name)])
               for name in mapping}
    if table == "orders" and data.num_rows == 0:
        return _empty(source)
    return RawTable(table, source, columns, data.num_rows, 2,
                    _locate(path, encoding, bad_lines) if bad_lines else ())


def _locate(path: Path, encoding: str,
            bad: list[tuple[int, int, str]]) -> tuple[tuple[int, str, str], ...]:
    """(row, reason, text) of lines with the wrong number of cells, found again by their
    text to give their row numbers (rare, so read line by line)."""
    wanted = {text: (actual, expected) for actual, expected, text in bad}
    found = []
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if text in wanted:
                actual, expected = wanted[text]
                found.append((number, f"has {actual} cells where the header has {expected}",
                              text[:60]))
    return tuple(found)


def _empty(source: str) -> RawTable:
    raise InputError([Problem(source, (), "has no orders (the file is empty or only a "
                              "header); the orders table is required")])


def _unique(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}.{seen[name]}")
    return out


def _arrow_codec(encoding: str) -> str:
    return {"utf-8-sig": "utf8", "utf-8": "utf8"}.get(encoding, encoding)
