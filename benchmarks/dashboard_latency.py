"""Dashboard latency in a real browser, as a researcher meets it, on one or more warehouses.

Serves the dashboard (`tdw serve`) and drives it in headless Debian chromium (Playwright):

- page load: navigation to the first viewport painted (the loss curve drawn, the server idle);
- epoch change by the slider's keyboard handle, by a typed epoch and by a click on the loss curve:
  from the input to every visible view repainted (the server reports idle, two animation frames);
- with two variants or more, a switch between the first two (at the top of the Variant page);
- neuron click in the cluster map to the heatmap repainted;
- pair click in the graduation map to the Trace section repainted (the traced input's views), and
  where the run traces some inputs only (p > 64), clicks that go from a traced input to one that is
  not and back (the lens and frequency split change shape: each shape's figure is kept and shown),
  again once every open section is built (what the browser does page-wide grows with the page);
- the Compare page with every variant of the warehouse selected: load, its small multiples drawn
  on scroll (the screen's first, then all), and an epoch change with
  small multiples of an at-epoch view;
- five sessions open at once: epoch changes in turn, and in all five at the same moment.

Medians and 90th percentiles, and a breakdown of each epoch change: server time refreshing plots
(the server's own log), bytes the server sent over the websocket, and the rest (transport and the
browser's paint). The named baseline is main before the live-plot redesign (figures in the README).

    python benchmarks/dashboard_latency.py --db warehouse/tdw.duckdb
    python benchmarks/dashboard_latency.py --db /tmp/p113/warehouse/tdw.duckdb --db /tmp/study/warehouse/tdw.duckdb
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.pages.variant import section_css
from dashboards.views import all_views
from tdw.warehouse.query import query
from tests.dashboard_harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PAIR_CELL_JS,
    bokeh_views_js,
    pane_text,
    scroll_to_view,
    served,
)

REFRESH_LINE = re.compile(r"tdw\.dashboard\.timings refreshed (\d+) plots in ([\d.]+) ms")


class Session:
    """One browser page on the served app, counting what the server sends it."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1600, "height": 1000})
        self.url = url
        self.received = 0
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("websocket", lambda ws: ws.on("framereceived", self.count))

    def count(self, payload) -> None:
        self.received += len(payload)

    def status(self) -> str:
        return pane_text(self.page, "server-status")

    def wait_in_browser(self, condition: str, arg=None) -> None:
        """Wait, checking on every animation frame inside the browser (no round trip per check),
        until `condition` holds and the server says it is idle; then two frames for the paint."""
        self.page.evaluate(FINDER)
        self.page.wait_for_function(f"(arg) => ({condition}) && tdwText('server-status') === 'ready'", arg=arg,
                                    polling="raf", timeout=120000)
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def idle(self) -> None:
        self.page.wait_for_timeout(30)  # let a just-sent input reach the server and mark it busy
        self.wait_in_browser("true")

    def load(self, query_string: str = "", painted: str = ".view-loss_curves canvas") -> float:
        started = time.perf_counter()
        self.page.goto(self.url + query_string)
        self.page.locator(painted).first.wait_for(state="visible", timeout=120000)
        self.page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
        self.wait_in_browser("true")
        return (time.perf_counter() - started) * 1000

    def epoch(self) -> str:
        return self.page.locator(".epoch-input input").first.input_value()

    def timed(self, act, condition: str, arg=None) -> tuple[float, int]:
        """Milliseconds from `act()` to `condition` (JavaScript) holding with the server idle and
        the page painted; bytes the server sent meanwhile."""
        before = self.received
        started = time.perf_counter()
        act()
        self.wait_in_browser(condition, arg)
        return (time.perf_counter() - started) * 1000, self.received - before


# Panel renders widgets and panes in shadow roots: find an element by class through all of them
# once, then read it directly on every frame.
FINDER = """() => {
  if (window.tdwText) return;
  const cache = new Map();
  const find = (cls) => {
    const hit = cache.get(cls);
    if (hit && hit.isConnected) return hit;
    const walk = (root) => {
      const found = root.querySelector('.' + cls);
      if (found) return found;
      for (const el of root.querySelectorAll('*')) {
        if (el.shadowRoot) { const inner = walk(el.shadowRoot); if (inner) return inner; }
      }
      return null;
    };
    const el = walk(document);
    if (el) cache.set(cls, el);
    return el;
  };
  window.tdwText = (cls) => { const el = find(cls); const div = el && (el.shadowRoot || el).querySelector('div');
                              return div ? div.textContent.trim() : null; };
  window.tdwValue = (cls) => { const el = find(cls); const input = el && (el.shadowRoot || el).querySelector('input');
                               return input ? input.value : null; };
}"""


# The bottom edge on screen of every compared variant's small multiple that exists in the browser
# as a laid-out Bokeh figure titled with its name (`wanted`: the variants, in the caller's scope).
DRAWN_MULTIPLES = bokeh_views_js("""
    if (model.type === 'Figure' && model.title && wanted.has(model.title.text) && view.frame
        && view.frame.bbox.width > 0) found.push(view.el.getBoundingClientRect().bottom);""")
# How far the small multiples are drawn: `all` when every variant's figure is; `screen` when the drawn
# ones already fill the viewport down to its bottom edge (or all are drawn): what a researcher sees first.
SMALL_MULTIPLES_PROGRESS = f"""(variants) => {{
  const wanted = new Set(variants);
  const bottoms = ({DRAWN_MULTIPLES})();
  const all = bottoms.length >= wanted.size;
  return {{all, screen: all || (bottoms.length > 0 && Math.max(...bottoms) >= window.innerHeight)}};
}}"""
SMALL_MULTIPLES_DRAWN = f"(variants) => ({SMALL_MULTIPLES_PROGRESS})(variants).all"
FIRST_SCREEN_DRAWN = f"(variants) => ({SMALL_MULTIPLES_PROGRESS})(variants).screen"


def epoch_by_key(session: Session, i: int) -> tuple[float, int]:
    handle = session.page.locator(".epoch-slider .noUi-handle").first
    return session.timed(lambda: handle.press("ArrowLeft" if i % 2 == 0 else "ArrowRight"),
                         "tdwValue('epoch-input') !== arg", session.epoch())


def epoch_by_typing(session: Session, epochs: list[int], i: int) -> tuple[float, int]:
    target = epochs[(len(epochs) // 3 + 7 * i) % len(epochs)]
    if str(target) == session.epoch():
        target = epochs[(len(epochs) // 3 + 7 * i + 1) % len(epochs)]
    box = session.page.locator(".epoch-input input").first

    def act():
        box.fill(str(target))
        box.press("Enter")

    # every over-epochs figure's epoch marker (a Bokeh Span) at the typed checkpoint
    return session.timed(act, "[...Bokeh.documents[0].all_models].some(m => m.type === 'Span' && m.location === arg)", target)


def epoch_by_click(session: Session, i: int) -> tuple[float, int]:
    canvas = session.page.locator(".view-loss_curves canvas").first
    box = canvas.bounding_box()
    # from the last epoch (set before the series), alternate far apart: every click moves the epoch
    x = box["x"] + box["width"] * (0.25 if i % 2 == 0 else 0.7)
    session.page.wait_for_timeout(400)  # two clicks within ~300 ms would be one double tap
    return session.timed(lambda: session.page.mouse.click(x, box["y"] + box["height"] * 0.5),
                         "tdwValue('epoch-input') !== arg", session.epoch())


def neuron_by_click(session: Session, i: int) -> tuple[float, int]:
    canvas = session.page.locator(".view-neuron_clusters canvas").first
    box = canvas.bounding_box()
    before = session.page.locator(".neuron-input input").first.input_value()
    y = box["y"] + box["height"] * (0.15 + 0.07 * (i % 10))
    session.page.wait_for_timeout(400)  # two clicks within ~300 ms would be one double tap
    return session.timed(lambda: session.page.mouse.click(box["x"] + box["width"] * 0.4, y),
                         "tdwValue('neuron-input') !== arg && (tdwText('caption-neuron_heatmap') || '')"
                         ".startsWith('Neuron ' + tdwValue('neuron-input') + ' ')", before)


def pair_by_click(session: Session, i: int) -> tuple[float, int]:
    """A click on the graduation map traces that input: to the Trace section's views repainted
    (with the map's row and column moving by one cell or more each time, every click is a new pair)."""
    session.page.wait_for_timeout(400)  # two clicks within ~300 ms would be one double tap
    canvas = session.page.locator(".view-graduation_map canvas").first
    canvas.scroll_into_view_if_needed()  # sections built above it since may have pushed it off screen
    box = canvas.bounding_box()
    before = session.page.evaluate("() => tdwText('caption-pair_trace')")
    x = box["x"] + box["width"] * (0.2 + 0.045 * (i % 12))
    y = box["y"] + box["height"] * (0.2 + 0.035 * ((7 * i) % 16))
    return session.timed(lambda: session.page.mouse.click(x, y),
                         "(tdwText('caption-pair_trace') || arg) !== arg", before)


def traced_and_untraced(db: Path, variant: str, count: int) -> list[tuple[int, int]]:
    """`count` inputs of `variant` from the middle of its map, every other one traced (in its
    logit_lens) and the next one along its row not: each click crosses the boundary. Empty when
    the run traces every input or none."""
    traced = query(f"select distinct a, b from logit_lens where variant = '{variant}' order by a, b", db)
    p = int(query(f"select p from variants where variant = '{variant}'", db)["p"][0])
    if traced.height in (0, p * p):
        return []
    done = set(zip(traced["a"].to_list(), traced["b"].to_list(), strict=True))
    middle = [(a, b) for a, b in sorted(done) if p // 4 <= a < 3 * p // 4 and p // 4 <= b < 3 * p // 4 and (a, b + 1) not in done]
    return [pair for a, b in middle[:(count + 1) // 2] for pair in ((a, b), (a, b + 1))][:count]


def pair_across_trace(session: Session, pairs: list[tuple[int, int]], i: int) -> tuple[float, int]:
    """A click on the graduation map on the i-th of `pairs` (traced and untraced in turn): to the
    logit lens's caption naming it and the Trace section repainted."""
    session.page.wait_for_timeout(400)  # two clicks within ~300 ms would be one double tap
    a, b = pairs[i % len(pairs)]
    x, y = session.page.evaluate(PAIR_CELL_JS, [a, b])
    return session.timed(lambda: session.page.mouse.click(x, y),
                         "(tdwText('caption-pair_logit_lens') || '').split(/[ :]/).includes(arg)", f"{a}+{b}")


def build_every_section(session: Session) -> None:
    """Scroll to each open section of the Variant page, so that each is built (a section is built
    when first open and on screen), and let the page settle: the steps after this meet the page with
    every figure in it, the worst case for what the browser does page-wide."""
    for group in dict.fromkeys(view.group for view in all_views().values()):
        session.page.locator(f".{section_css(group)}").first.scroll_into_view_if_needed()
        session.page.wait_for_timeout(800)
        session.idle()


def variant_switch(session: Session, log: Path, variants: list[str], i: int) -> tuple[float, int]:
    """Switch the Variant page to the other of the first two variants: from the choice to the
    last of what it set off (a switch can be two batches: the variant's plots, then its epoch's),
    taken as the last server log line or websocket frame before 300 ms with neither (the paint
    after it is not counted). The bytes are all the server sent meanwhile."""
    before, (_, lines) = session.received, server_refresh_ms(log, 0)
    started = time.perf_counter()
    session.page.locator(".variant-select select").first.select_option(variants[(i + 1) % 2])
    last_activity, seen = started, (session.received, lines)
    while time.perf_counter() - last_activity < 0.3 or seen[1] == lines:
        session.page.wait_for_timeout(10)
        now = (session.received, server_refresh_ms(log, 0)[1])
        if now != seen:
            last_activity, seen = time.perf_counter(), now
    return (last_activity - started) * 1000, session.received - before


def server_refresh_ms(log: Path, seen: int) -> tuple[list[float], int]:
    lines = REFRESH_LINE.findall(log.read_text())
    return [float(ms) for _, ms in lines[seen:]], len(lines)


def report(label: str, samples: list[tuple[float, int]] | list[float], server: list[float] | None = None) -> None:
    times = sorted(s[0] if isinstance(s, tuple) else s for s in samples)
    p90 = times[int(0.9 * (len(times) - 1))]
    line = f"  {label:46s} median {statistics.median(times):6.0f} ms   p90 {p90:6.0f} ms   (n={len(times)})"
    if samples and isinstance(samples[0], tuple):
        line += f"   sent {statistics.median(s[1] for s in samples) / 1000:6.1f} kB"
    if server:
        line += f"   server refresh {statistics.median(server):5.0f} ms"
    print(line, flush=True)


def measure(log: Path, label: str, action, repeats: int) -> None:
    _, seen = server_refresh_ms(log, 0)
    samples = [action(i) for i in range(repeats)]
    server, _ = server_refresh_ms(log, seen)
    report(label, samples, server)


def bench(db: Path, repeats: int, sessions: int, browser) -> None:
    variants = query("select variant from variants order by p, seed, variant", db)["variant"].to_list()
    variant = variants[0]
    epochs = query(f"select epoch from checkpoints where variant = '{variant}' order by epoch", db)["epoch"].to_list()
    counts = query(f"select count(*) as n from checkpoints where variant = '{variant}'", db)["n"][0]
    print(f"\nwarehouse {db}: {len(variants)} variants; {variant} has {counts} checkpoints", flush=True)
    log = Path(tempfile.mkdtemp(prefix="tdw-dashboard-bench-")) / "serve.log"
    with served(db, log_path=log, env={"TDW_DASHBOARD_TIMINGS": "1"}) as url, ExitStack() as pages:
        first = Session(browser, url)
        pages.callback(first.page.close)
        loads = [first.load()]
        for _ in range(2):
            loads.append(first.load())
        report("page load: navigation to first viewport", loads)
        # sections near the viewport are built once their position settles (150 ms): let that
        # happen before the epoch changes, or its log lines count as their server refresh
        first.page.wait_for_timeout(500)
        first.idle()
        handle = first.page.locator(".epoch-slider .noUi-handle").first
        handle.focus()
        measure(log, "epoch change: slider key (top of page)", lambda i: epoch_by_key(first, i), repeats)
        measure(log, "epoch change: typed epoch", lambda i: epoch_by_typing(first, epochs, i), repeats)
        if len(variants) > 1:  # each run's first frame takes its own ranges; patched, or a new figure per run
            measure(log, f"variant switch: {variants[0]} <-> {variants[1]} (top of page)",
                    lambda i: variant_switch(first, log, variants, i), repeats + repeats % 2)
        handle.press("End")
        first.idle()
        first.page.locator(".view-loss_curves canvas").first.scroll_into_view_if_needed()
        measure(log, "epoch change: click on the loss curve", lambda i: epoch_by_click(first, i), repeats)
        scroll_to_view(first.page, "neuron_clusters")
        first.page.locator(".view-neuron_clusters canvas").first.wait_for(state="visible", timeout=60000)
        first.idle()
        measure(log, "neuron click: clusters to heatmap", lambda i: neuron_by_click(first, i), repeats)
        handle.focus()
        measure(log, "epoch change: slider key (Neurons in view)", lambda i: epoch_by_key(first, i), repeats)
        scroll_to_view(first.page, "graduation_map")
        first.page.locator(".view-graduation_map canvas").first.wait_for(state="visible", timeout=60000)
        first.idle()
        measure(log, "pair click: graduation map to the trace", lambda i: pair_by_click(first, i), repeats)
        crossing = traced_and_untraced(db, variant, repeats + repeats % 2)
        if crossing:
            measure(log, "pair click: traced <-> untraced input", lambda i: pair_across_trace(first, crossing, i), len(crossing))
            build_every_section(first)
            measure(log, "pair click: traced <-> untraced, every open section built",
                    lambda i: pair_across_trace(first, crossing, i), len(crossing))
        else:
            print("  pair click: traced <-> untraced input         (every input traced, or none: no boundary to cross)")

        chosen = "[" + ",".join(f'"{v}"' for v in variants) + "]"
        compare = Session(browser, url)
        pages.callback(compare.page.close)
        loaded = [compare.load(f"?page=Compare&compare={chosen}", painted=".variant-summary")]
        for _ in range(2):
            loaded.append(compare.load(f"?page=Compare&compare={chosen}", painted=".variant-summary"))
        report(f"Compare page, {len(variants)} variants: load", loaded)
        compare.page.locator(".multiple-view select").first.select_option("frequencies_at_epoch")
        compare.idle()
        # the grid's top at the top of the viewport: as many small multiples on screen as fit (the worst case)
        started = time.perf_counter()
        compare.page.locator(".small-multiples").first.evaluate("el => el.scrollIntoView({block: 'start'})")
        compare.page.wait_for_function(FIRST_SCREEN_DRAWN, arg=variants, polling="raf", timeout=300000)
        screen_ms = (time.perf_counter() - started) * 1000
        compare.page.wait_for_function(SMALL_MULTIPLES_DRAWN, arg=variants, polling="raf", timeout=300000)
        compare.idle()
        drawn_ms = (time.perf_counter() - started) * 1000
        # drawn, the grid is taller: scroll its top to the viewport's top again
        compare.page.locator(".small-multiples").first.evaluate("el => el.scrollIntoView({block: 'start'})")
        compare.idle()
        report("Compare page: small multiples, the screen's drawn on scroll", [screen_ms])
        report(f"Compare page: small multiples, all drawn on scroll ({len(variants)})", [drawn_ms])
        compare.page.locator(".epoch-slider .noUi-handle").first.focus()
        measure(log, "Compare page: epoch change (small multiples)", lambda i: epoch_by_key(compare, i), repeats)

        crowd = [first]
        for _ in range(sessions - 1):
            session = Session(browser, url)
            pages.callback(session.page.close)
            session.load()
            crowd.append(session)
        for session in crowd:
            session.page.locator(".epoch-slider .noUi-handle").first.focus()
        measure(log, f"{sessions} sessions open: epoch change, in turn",
                lambda i: epoch_by_key(crowd[i % len(crowd)], i // len(crowd)), repeats)
        together = []
        for i in range(max(3, repeats // 3)):
            started = time.perf_counter()
            for session in crowd:
                session.page.locator(".epoch-slider .noUi-handle").first.press("ArrowLeft" if i % 2 == 0 else "ArrowRight")
            for session in crowd:
                session.idle()
            together.append((time.perf_counter() - started) * 1000)
        report(f"{sessions} sessions: all change at once, last done", together)
        errors = [e for s in [*crowd, compare] for e in s.errors]
        if errors:
            print("  browser errors:", *errors[:5], sep="\n    ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", help="warehouse file (repeat for several)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sessions", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for db in args.db or [Path("warehouse/tdw.duckdb")]:
                bench(db, args.repeats, args.sessions, browser)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
