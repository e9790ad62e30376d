"""A real study for dashboard tests, and the served app driven by Playwright in Debian's chromium.

Nothing here downloads a browser: Playwright launches /usr/bin/chromium (`make test` installs it)
with the flags this closed network needs.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from dashboards.pages.variant import section_css
from dashboards.views import get_view
from tests.conftest import REPO, tdw_here, tiny_config

CHROMIUM = os.environ.get("TDW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


STUDY_VARIANTS = ("p13_seed3", "p13_seed4", "mlp_p13_seed5")  # what build_study makes, by p and seed


def build_study(root: Path, seeds=(3, 4), mlp_seed: int | None = 5) -> Path:
    """Tiny transformer variants and (with `mlp_seed`) one of the `mlp` family, trained, fully
    analyzed and indexed: a warehouse with every view's data, and views that do not apply."""
    results, db = root / "results", root / "warehouse" / "tdw.duckdb"
    if mlp_seed is not None:
        tdw_here("train", "--family", "mlp", "--p", "13", "--seed", str(mlp_seed), "--d-mlp", "32", "--epochs", "200",
                "--checkpoints", "0:200:25", "--results", str(results), "--quiet", check=True)
        tdw_here("analyze", str(results / "mlp" / f"mlp_p13_seed{mlp_seed}"), "--quiet", check=True)
    for seed in seeds:
        config = tiny_config(seed=seed, num_epochs=200)
        tdw_here("train", "--p", str(config.p), "--seed", str(seed), "--train-frac", "0.5", "--d-model", "32",
                "--n-heads", "2", "--d-head", "16", "--d-mlp", "64", "--lr", "3e-3", "--epochs", "200",
                "--checkpoints", "0:200:25", "--results", str(results), "--quiet", check=True)
        # the second seed traces half its inputs, so the Trace section meets pairs it has no trace for
        trace = [] if seed == seeds[0] else ["--trace", "a <= b", "--db", str(db)]
        tdw_here("analyze", str(results / "modular_addition" / config.name), *trace, "--quiet", check=True)
        if seed == seeds[0]:  # an intervention for the Trace section's map, and the opt-in LLC at three checkpoints
            tdw_here("intervene", str(results / "modular_addition" / config.name), "--epoch", "100,175",
                    "--ablate-head", "0", check=True)
            tdw_here("analyze", str(results / "modular_addition" / config.name), "--analyzers", "llc", "--epochs", "0,100,175",
                    "--quiet", check=True)
    if len(seeds) > 1:  # the transformer seeds in one trajectory basis, for the Compare page's overlay
        tdw_here("analyze", "--trajectory-basis", "seeds", "--variants", ",".join(tiny_config(seed=s).name for s in seeds),
                "--results", str(results), check=True)
    tdw_here("probe", "add", "low_sums", "(a + b) % p < 3", "--db", str(db), check=True)
    tdw_here("index", "--results", str(results), "--db", str(db), check=True)
    return db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# a tab closed while the server still sent it an update, or while its own last change was in flight
# (Bokeh then finds the connection's session gone: "assert self._session is not None", once in a CI
# run): the test's doing, excused here. The server logs none of the first kind that it knows
# (dashboards/closed_tabs.py); a test reloads a tab mid-update and checks that, strictly.
CLOSED_TAB = ("as connection was closed", "WebSocketClosedError", "assert self._session is not None")
# what Python's asyncio and Tornado print without a level when an exception escapes a task or a callback
UNCAUGHT = ("Traceback (most recent call last)", "Task exception was never retrieved", "Exception in callback")


def log_problems(log_path: Path) -> list[str]:
    """The server log's warnings and errors (each with the traceback lines below it): a callback's
    exception, a Bokeh validation warning, an exception no task retrieved. Not a change of a tab
    that closed while the change was in flight (`CLOSED_TAB`): that is the test's doing, not the app's."""
    entries: list[str] = []
    for line in log_path.read_text().splitlines():
        if entries and (line.startswith((" ", "Traceback", "During handling", "future:")) or not line.strip()
                        or not any(level in line for level in ("WARNING", "ERROR", "INFO", "DEBUG", "tdw ", *UNCAUGHT))):
            entries[-1] += "\n" + line
        else:
            entries.append(line)
    return [entry for entry in entries
            if ("WARNING" in entry.split("\n")[0] or "ERROR" in entry.split("\n")[0] or any(mark in entry for mark in UNCAUGHT))
            and not any(closed in entry for closed in CLOSED_TAB)]


@contextmanager
def served(db: Path, results: Path | None = None, timeout: float = 90, log_path: Path | None = None,
           env: dict | None = None, bundle: Path | None = None):
    """`tdw serve` in a subprocess (of `bundle` instead of `db` when given); yields its URL once it
    answers. When the block ends without an exception, the server must have logged no warning and
    no error meanwhile: an exception in a callback only reaches the log, not the page."""
    port = free_port()
    args = [sys.executable, "-m", "tdw.cli", "serve", "--port", str(port)]
    args += ["--bundle", str(bundle)] if bundle is not None else ["--db", str(db)]
    if results is not None:
        args += ["--results", str(results)]
    log_path = log_path or (db if bundle is None else bundle).parent / f"serve-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - open while the server runs, closed in `finally`
    process = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://localhost:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(url, timeout=30).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"tdw serve did not come up:\n{log_path.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    problems = log_problems(log_path)
    assert not problems, "tdw serve logged:\n" + "\n".join(problems)


@contextmanager
def browser_page(viewport: dict[str, int] | None = None):
    """A Playwright page in headless Debian chromium (1600x1000 unless `viewport` says otherwise);
    collects JavaScript errors in page.errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=viewport or {"width": 1600, "height": 1000})
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(f"pageerror: {error}"))
        page.on("console", lambda msg: page.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        try:
            yield page
        finally:
            browser.close()


def pane_text(page, css: str) -> str:
    """Text of a Panel pane (its content lives in the element's shadow root)."""
    return page.locator(f".{css} div").first.inner_text()


def wait_idle(page, settle_ms: int = 300, timeout_ms: int = 60000) -> None:
    """Wait until the server says it is idle (the sidebar's status), then let Bokeh paint."""
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=timeout_ms)
    page.wait_for_timeout(200)  # let a just-sent event reach the server and mark it busy
    poll(lambda: pane_text(page, "server-status") == "ready", timeout_ms / 1000, page)
    page.wait_for_timeout(settle_ms)


def poll(condition, timeout_s: float = 30, page=None, message: str = ""):
    """Wait until condition() is truthy; the browser keeps working meanwhile."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message or condition}")
        if page is not None:
            page.wait_for_timeout(100)
        else:
            time.sleep(0.1)


# --- reading the page ----------------------------------------------------------------------
def text(page, css: str) -> str:
    return pane_text(page, css)


def scroll_to_view(page, view: str) -> None:
    """Scroll the view's card into view; on the Variant page a section is built only once it is on
    screen, so its card may first need the section scrolled to."""
    card = page.locator(f".card-{view}")
    if card.count() == 0:
        page.locator(f".{section_css(get_view(view).group)}").first.scroll_into_view_if_needed()
        poll(lambda: card.count() > 0, 30, page, f"the {view} section built")
    card.first.scroll_into_view_if_needed()


def caption(page, view: str) -> str:
    """The view's caption, once its section has been scrolled to and drawn (sections draw lazily)."""
    scroll_to_view(page, view)
    return poll(lambda: text(page, f"caption-{view}"), 30, page, f"the {view} caption")


def caption_when(page, view: str, condition, message: str, timeout_s: float = 30) -> str:
    """The view's caption once `condition(caption)` holds (a guard against a hang, not a speed
    check: speed is measured in benchmarks/)."""
    return poll(lambda: (line if condition(line := caption(page, view)) else None), timeout_s, page, message)


def bokeh_views_js(collect: str, result: str = "found") -> str:
    """A page function walking every Bokeh view on the page once: `collect` runs for each with
    `view`, `model` and the array `found` in scope; the function returns `result` (e.g. a sort)."""
    return ("() => {\n  const found = [];\n  const seen = new Set();\n  const walk = (view) => {\n"
            "    if (!view || seen.has(view)) return;\n    seen.add(view);\n    const model = view.model;\n"
            f"{collect}\n    for (const child of (view.child_views || [])) walk(child);\n  }};\n"
            f"  Object.values(Bokeh.index).forEach(walk);\n  return {result};\n}}")


def hover_tooltip(page, x: float, y: float, has_text: str) -> str:
    """The text of the Bokeh tooltip that the pointer at page pixel (x, y) shows, whitespace
    collapsed. `has_text` picks it among the page's tooltips (the sidebar's "?" are tooltips too);
    its table sits in a shadow root, which `inner_text` leaves out."""
    page.mouse.move(x, y)
    tooltip = page.locator(".bk-Tooltip", has_text=has_text).first
    tooltip.wait_for(state="visible", timeout=10000)
    shown = tooltip.evaluate("el => el.shadowRoot.querySelector('.bk-tooltip-content').textContent")
    return re.sub(r"\s+", " ", shown).strip()


def figure_lines_js(figure_test: str) -> str:
    """A page function returning, for each Bokeh figure for which `figure_test` (JavaScript over
    `model`) holds, its title, its x scale's type and the x values of each of its lines."""
    return bokeh_views_js(f"""
    if (model.type === 'Figure' && ({figure_test})) {{
      const lines = model.renderers.filter(r => r.glyph && r.glyph.type === 'Line')
                                   .map(r => Array.from(r.data_source.data[r.glyph.x.field || 'x'], Number));
      found.push({{title: model.title ? model.title.text : null, scale: model.x_scale.type, lines: lines}});
    }}""")


# The page position of the centre of cell (a, b) in the displayed graduation map, scrolled into view
PAIR_CELL_JS = bokeh_views_js("""
    if (model.type === 'Figure' && model.name === 'tdw-view-graduation_map') {
      view.canvas_view.el.scrollIntoView({block: 'center'});
      const box = view.canvas_view.el.getBoundingClientRect();
      found.push([box.left + view.frame.x_scale.compute(arg[1] + 0.5), box.top + view.frame.y_scale.compute(arg[0] + 0.5)]);
    }""", "found[0]").replace("() =>", "(arg) =>", 1)


def click_pair(page, a: int, b: int) -> None:
    """Click the cell of input a+b on the graduation map (row a, column b), found through the
    figure's own scales: at p=113 a cell is two pixels wide, too narrow to aim at by fractions of
    the canvas."""
    page.locator(".view-graduation_map canvas").first.wait_for(state="visible", timeout=60000)
    x, y = page.evaluate(PAIR_CELL_JS, [a, b])
    page.mouse.click(x, y)
