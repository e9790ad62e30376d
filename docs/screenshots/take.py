"""Take the README's dashboard screenshots from a warehouse, as a researcher sees the pages: the
dashboard served by `tdw serve`, driven in headless Debian chromium at 1400 x 900 (the test
harness's own serving and waiting), each page once the server is idle.

Usage: python docs/screenshots/take.py --db /tmp/p113/warehouse/tdw.duckdb --results /tmp/p113/results

The README's set was taken on the published run (`../shared/runs/p113_seed999`, analyzed and
indexed), so the pages show a real grokking run rather than the demo's small one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.dashboard_harness import browser_page, scroll_to_view, served, wait_idle

HERE = Path(__file__).resolve().parent
VIEWPORT = {"width": 1400, "height": 900}


def open_page(page, url: str, name: str) -> None:
    page.goto(url)
    wait_idle(page, 1500)
    if name != "Variant":
        page.locator(".page-nav").get_by_text(name, exact=True).click()
        wait_idle(page, 2000)


def take(db: Path, results: Path | None, out: Path) -> list[Path]:
    written = []
    with served(db, results=results) as url, browser_page(VIEWPORT) as page:
        for name, file in [("Variant", "variant"), ("Compare", "compare"), ("SQL", "sql"), ("Reports", "reports"),
                           ("Train", "train"), ("Analyze", "analyze")]:
            open_page(page, url, name)
            written.append(out / f"{file}.png")
            page.screenshot(path=str(written[-1]))
        open_page(page, url, "Variant")
        scroll_to_view(page, "neuron_clusters")  # the Neurons section: clusters, heatmap, coarseness
        wait_idle(page, 2000)
        written.append(out / "variant-neurons.png")
        page.screenshot(path=str(written[-1]))
        if page.errors:
            raise SystemExit(f"the browser reported errors: {page.errors}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("warehouse/tdw.duckdb"))
    parser.add_argument("--results", type=Path, default=None, help="the runs' folder, for the Train and Analyze pages")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    if not args.db.is_file():
        raise SystemExit(f"--db {args.db}: no warehouse there; run `tdw index` first")
    for path in take(args.db.resolve(), args.results.resolve() if args.results else None, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
