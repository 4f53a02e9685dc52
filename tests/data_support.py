"""Writing small hand-made data bundles for the data tests."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "bundles"


def bundle(folder: Path, encoding: str = "utf-8", **tables: str) -> Path:
    """Write each table's CSV text (leading spaces on each line removed) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        lines = [line.strip() for line in text.strip().splitlines()]
        target = folder / (name if "." in name else f"{name}.csv")
        target.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return folder
