"""A twin's folder: its scenario, people, parameter draws and estimates."""

from __future__ import annotations

from pathlib import Path

from simdomain.twin.acquisition import curve_frame
from simdomain.twin.annotate import dump_annotated
from simdomain.twin.calibrate import Twin

HEADER = """A twin calibrated by `simdomain calibrate` from the brand's own data.
Each number says where it came from: "fitted" (estimate, 90% interval, what it rests
on), "data" (read off the data), or "assumed, not fitted" (from the base scenario).
population.parquet holds the people known on the as-of date; parameters.parquet the
draws each replication picks from (`simdomain run --parameters posterior|point`)."""


def write_twin(twin: Twin, folder: Path) -> list[str]:
    """Write ``scenario.yaml``, ``population.parquet``, ``parameters.parquet``,
    ``estimates.csv`` and, where there are any, ``curves.csv`` (each channel's fitted
    response curve) and ``channel_values.csv`` (what an add is worth, by channel) into
    ``folder``; return the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(
        dump_annotated(twin.scenario, twin.notes, header=HEADER), encoding="utf-8")
    twin.population.to_parquet(folder / "population.parquet", index=False)
    twin.parameters.to_parquet(folder / "parameters.parquet", index=False)
    twin.estimates.to_csv(folder / "estimates.csv", index=False)
    files = ["scenario.yaml", "population.parquet", "parameters.parquet", "estimates.csv"]
    if twin.curves:
        curve_frame(twin.curves).to_csv(folder / "curves.csv", index=False)
        files.append("curves.csv")
    if twin.channel_values is not None and len(twin.channel_values):
        twin.channel_values.to_csv(folder / "channel_values.csv", index=False)
        files.append("channel_values.csv")
    return files
