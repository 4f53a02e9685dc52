"""One reading path for every text input: size limit, encoding detection, clear refusals.

Spreadsheet tools on Chinese Windows save GBK (GB18030) or UTF-16 by default, so a
file is read as UTF-8 (with or without a byte-order mark), UTF-16/32 with a byte-order
mark, or GB18030 when it is not valid UTF-8 and a detector (charset-normalizer) finds
it to be Chinese text. Anything else is refused with what it looks like and what to do.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from simdomain.errors import InputError, Problem

MAX_TEXT_BYTES = 64 * 1024 * 1024
"""Largest text file (scenario, experiment) read whole; data files stream instead."""

_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHINESE = {"gb18030", "gbk", "gb2312", "hz", "big5", "big5hkscs", "cp950"}
_SAMPLE_BYTES = 1 << 20


def detect_encoding(data: bytes, source: str) -> str:
    """The Python codec name to decode ``data`` with.

    Parameters
    ----------
    data
        The file's bytes, or its first megabyte or so (a cut multi-byte character at
        the end is tolerated).
    source
        The file's name, for the message.

    Raises
    ------
    InputError
        When the bytes are not text in a supported encoding.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    if b"\x00" in data[:_SAMPLE_BYTES]:
        raise InputError([Problem(source, (), "cannot read the file as text (it looks like "
                                  "binary data); save it as UTF-8 text")])
    try:
        data[:_SAMPLE_BYTES].decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(data[:_SAMPLE_BYTES]) - 3 and len(data) > _SAMPLE_BYTES:
            return "utf-8"  # a character cut by the sample's end
    guess = _guess(data[:_SAMPLE_BYTES])
    if guess in _CHINESE:
        return "big5" if guess.startswith("big5") or guess == "cp950" else "gb18030"
    looks = f"it looks like {guess}" if guess else "its encoding is not recognised"
    raise InputError([Problem(source, (), f"cannot read the file as text ({looks}); "
                              "save it as UTF-8")])


def _guess(sample: bytes) -> str | None:
    from charset_normalizer import from_bytes  # imported only for non-UTF-8 files

    best = from_bytes(sample).best()
    return None if best is None else best.encoding.lower().replace("_", "")


def read_text(path: str | Path, *, limit: int = MAX_TEXT_BYTES) -> str:
    """Read a whole text file in whatever supported encoding it was saved in.

    Raises
    ------
    InputError
        Naming the file: unreadable, larger than ``limit`` bytes, or not text.
    """
    source = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise InputError([Problem(source, (), "is a folder, expected a file")]) from None
    except OSError as exc:
        raise InputError([Problem(source, (), f"cannot read the file: {exc.strerror}")]) from None
    if len(data) > limit:
        raise InputError([Problem(source, (), f"the file is larger than the limit of "
                                  f"{limit / 2**20:.0f} MiB")])
    encoding = detect_encoding(data, source)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError([Problem(source, (), f"cannot read the file as {encoding} text "
                                  f"(bad bytes at line {line}); save it as UTF-8")]) from None
    return text.lstrip("\ufeff")
