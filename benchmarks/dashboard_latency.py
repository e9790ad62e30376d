"""Dashboard latency in a real browser: time from an epoch change to every visible plot updated.

Serves the dashboard (`tdw serve`) on a warehouse, opens it in headless Debian chromium, and
moves the epoch with the slider's keyboard handle N times. One measurement is from the key press
to the server reporting idle again with every Bokeh view re-painted (the sidebar's status reads
"ready" and no Bokeh view is pending). Reports the median and the 90th percentile, with the page
scrolled to the top (what a researcher sees first) and with only the Neurons section open.

    python benchmarks/dashboard_latency.py --db warehouse/tdw.duckdb
    python benchmarks/dashboard_latency.py --db /tmp/study/warehouse/tdw.duckdb   # warehouse_scale --keep
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.dashboard_harness import browser_page, pane_text, served, wait_idle  # noqa: E402


def epoch_change_ms(page, key: str) -> float:
    handle = page.locator(".epoch-slider .noUi-handle").first
    before = page.locator(".epoch-input input").first.input_value()
    started = time.perf_counter()
    handle.press(key)
    while page.locator(".epoch-input input").first.input_value() == before:  # the server accepted it
        page.wait_for_timeout(5)
    while pane_text(page, "server-status") != "ready":
        page.wait_for_timeout(5)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")  # painted
    return (time.perf_counter() - started) * 1000


def measure(page, repeats: int) -> list[float]:
    handle = page.locator(".epoch-slider .noUi-handle").first
    handle.focus()
    times = []
    for i in range(repeats):
        times.append(epoch_change_ms(page, "ArrowLeft" if i % 2 == 0 else "ArrowRight"))
    return times


def report(label: str, times: list[float]) -> None:
    times = sorted(times)
    p90 = times[int(0.9 * (len(times) - 1))]
    print(f"  {label:44s} median {statistics.median(times):7.0f} ms   p90 {p90:7.0f} ms   (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("warehouse/tdw.duckdb"))
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with served(args.db) as url, browser_page() as page:
        page.goto(url)
        wait_idle(page, 1000)
        print(f"warehouse {args.db}: epoch change to all views updated")
        report("whole Variant page open", measure(page, args.repeats))
        for section in page.locator("[class*=section-] .card-header").all():
            section.click()  # close every section ...
        wait_idle(page)
        page.locator(".section-neurons .card-header").first.click()  # ... but Neurons
        wait_idle(page)
        report("only the Neurons section open", measure(page, args.repeats))
        if page.errors:
            print("browser errors:", *page.errors, sep="\n  ")


if __name__ == "__main__":
    main()
