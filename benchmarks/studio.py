"""Studio benchmark: server start to first page, and a lever change to the first chart update.

On the shipped social e-commerce scenario, in headless Chromium (Debian's
``chromium``), ``--repeat`` times each:

- start: ``simdomain studio`` launched -> the page shows its levers; beside it, the
  reference: ``simdomain --version`` (the CLI's own start, the same imports), so the
  studio's cost shows as a ratio to what every command pays;
- run: a channel's spend changed and Run pressed -> the progress bar moves (the first
  simulated day reported) -> the charts show the new result::

    python benchmarks/studio.py [--repeat 3] [--reps 2]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "social_ecommerce.yaml"
SPEND = "channels.sms_short_link.monthly_spend_cny"
POSITIVE = re.compile(r"^(0\.0*[1-9]|1)")
"""A progress fraction above zero."""
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def cli_start() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simdomain.cli", "--version"], check=True,
                   capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reps", type=int, default=2, help="replications of each run")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    starts, references, progress, charts = [], [], [], []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as out:
        browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
        for i in range(args.repeat):
            references.append(cli_start())
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            started = time.perf_counter()
            server = subprocess.Popen(
                [sys.executable, "-m", "simdomain.cli", "studio", str(SCENARIO), "--port", "0",
                 "--out", str(Path(out) / str(i))], stdout=subprocess.PIPE, text=True)
            try:
                url = server.stdout.readline().split()[3]
                page.goto(url)
                page.wait_for_selector(f"input[type=number][data-path='{SPEND}']")
                starts.append(time.perf_counter() - started)
                page.fill("#reps", str(args.reps))
                time.sleep(2)  # let the fork server finish warming up, as a user would
                for value in ("150000", "60000"):
                    page.locator(f"input[type=range][data-path='{SPEND}']").fill(value)
                    before = page.get_attribute("#run-view", "data-run") or "none"
                    pressed = time.perf_counter()
                    page.click("#run")
                    expect(page.locator("#progress")).to_have_attribute(
                        "data-progress", POSITIVE, timeout=30_000)
                    progress.append(time.perf_counter() - pressed)
                    expect(page.locator("#run-view")).not_to_have_attribute(
                        "data-run", before, timeout=300_000)
                    expect(page.locator("#kpi-figures .js-plotly-plot")).to_have_count(6, timeout=60_000)
                    charts.append(time.perf_counter() - pressed)
            finally:
                server.terminate()
                server.wait(30)
                page.close()
        browser.close()
    print(f"social_ecommerce ({args.reps} replications a run), median of {len(starts)}:")
    print(f"  start to first page  {statistics.median(starts):6.2f} s"
          f"   (CLI start alone {statistics.median(references):.2f} s, ratio "
          f"{statistics.median(starts) / statistics.median(references):.2f})")
    print(f"  run to progress      {statistics.median(progress):6.2f} s")
    print(f"  run to new charts    {statistics.median(charts):6.2f} s")

if __name__ == "__main__":
    main()
