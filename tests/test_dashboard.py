"""The dashboard as a person uses it: the served app in headless Debian chromium (Playwright), on a
real warehouse of two tiny trained and analyzed variants. Plus figure export without a browser."""

from __future__ import annotations

import io
import re
import shutil
import statistics

import pytest
from PIL import Image

from dashboards.comparisons import event_order_table
from dashboards.store import WarehouseStore
from tdw.warehouse.query import query
from tests.conftest import run_tdw, tiny_config
from tests.dashboard_harness import browser_page, pane_text, poll, served, wait_idle

VARIANTS = ("p13_seed3", "p13_seed4", "mlp_p13_seed5")  # the study (tests/dashboard_harness.py), by p and seed


@pytest.fixture(scope="module")
def app_url(study):
    with served(study) as url:
        yield url


def text(page, css: str) -> str:
    return pane_text(page, css)


def caption(page, view: str) -> str:
    """The view's caption, once its section has been scrolled to and drawn (sections draw lazily)."""
    page.locator(f".card-{view}").first.scroll_into_view_if_needed()
    return poll(lambda: text(page, f"caption-{view}"), 30, page, f"the {view} caption")


def caption_when(page, view: str, condition, message: str) -> str:
    """The view's caption once `condition(caption)` holds."""
    return poll(lambda: (line if condition(line := caption(page, view)) else None), 30, page, message)


def input_value(page, css: str) -> str:
    return page.locator(f".{css} input").first.input_value()


def plot_box(page, view: str):
    """The bounding box of the view's Bokeh canvas."""
    canvas = page.locator(f".view-{view} canvas").first
    canvas.wait_for(state="visible", timeout=30000)
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    return canvas.bounding_box()


def test_every_page_loads_without_javascript_errors(app_url, tmp_path):
    with browser_page() as page:
        page.goto(app_url)
        wait_idle(page, 1500)
        assert "tdw" in text(page, "app-version")
        page.screenshot(path=str(tmp_path / "variant.png"), full_page=True)
        for name in ("Compare", "SQL", "Train", "Analyze", "Variant"):
            page.locator(".page-nav").get_by_text(name, exact=True).click()
            wait_idle(page, 1000)
            page.screenshot(path=str(tmp_path / f"{name.lower()}.png"), full_page=True)
        assert page.errors == []


def test_moving_the_epoch_slider_redraws_the_epoch_views(app_url, tmp_path):
    with browser_page() as page:
        page.goto(app_url)
        wait_idle(page, 1500)
        before_caption = caption(page, "frequencies_at_epoch")
        before_pixels = page.locator(".view-frequencies_at_epoch").first.screenshot()
        handle = page.locator(".epoch-slider .noUi-handle").first
        handle.focus()
        handle.press("Home")  # first checkpoint: epoch 0
        wait_idle(page, 1500)
        assert input_value(page, "epoch-input") == "0"
        assert caption(page, "frequencies_at_epoch") == "Embedding Fourier norms at epoch 0"
        assert caption(page, "frequencies_at_epoch") != before_caption
        handle.press("ArrowRight")
        wait_idle(page, 1500)
        assert caption(page, "frequencies_at_epoch") == "Embedding Fourier norms at epoch 25"
        after_pixels = page.locator(".view-frequencies_at_epoch").first.screenshot()
        assert after_pixels != before_pixels
        page.screenshot(path=str(tmp_path / "after-slider.png"), full_page=True)
        assert page.errors == []


def test_clicking_the_loss_curve_moves_the_epoch(app_url):
    with browser_page() as page:
        page.goto(app_url)
        wait_idle(page, 1500)
        typed = page.locator(".epoch-input input").first
        typed.fill("0")
        typed.press("Enter")
        wait_idle(page, 1000)
        assert input_value(page, "epoch-input") == "0"
        box = plot_box(page, "loss_curves")
        # the frame spans most of the canvas; a click at 60% of its width lands mid-training
        page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
        poll(lambda: input_value(page, "epoch-input") != "0", 30, page, "the epoch to move")
        wait_idle(page)
        epoch = int(input_value(page, "epoch-input"))
        assert epoch in range(25, 200, 25), epoch  # snapped to a checkpoint, moved from 0
        assert caption(page, "frequencies_at_epoch") == f"Embedding Fourier norms at epoch {epoch}"
        assert page.errors == []


def test_clicking_a_neuron_in_the_clusters_opens_its_heatmap(app_url):
    with browser_page() as page:
        page.goto(app_url)
        wait_idle(page, 1500)
        before = caption(page, "neuron_heatmap")
        assert before.startswith("Neuron 0 at epoch")
        box = plot_box(page, "neuron_clusters")
        page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.3)
        poll(lambda: input_value(page, "neuron-input") != "0", 30, page, "the neuron to change")
        wait_idle(page)
        after = caption(page, "neuron_heatmap")
        neuron = int(input_value(page, "neuron-input"))
        assert neuron != 0 and after.startswith(f"Neuron {neuron} at epoch"), (before, after)
        assert page.errors == []


def test_clicking_a_pair_traces_it_and_shift_click_pins_one_beside(app_url, study):
    """The Trace section: a click on the graduation map traces that input (its margin, logit lens
    and frequency split follow), a shift-click pins another beside it, the intervention map shows
    what `tdw intervene` recorded; then the slider moves the margin map."""
    with browser_page() as page:
        page.goto(app_url)
        wait_idle(page, 1500)
        assert caption(page, "pair_trace").startswith("Input 0+0 = 0")
        assert caption(page, "intervention_map").startswith("head=0 gain=0 at epoch 175: ")
        box = plot_box(page, "graduation_map")
        # the frame is inside the canvas (axes, colorbar); find the pair the click lands on from
        # the caption, then check every trace view names that same pair
        page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.35)
        traced = caption_when(page, "pair_trace", lambda c: not c.startswith("Input 0+0 "), "the traced pair to change")
        pair = traced.split()[1]
        a, b = (int(x) for x in pair.split("+"))
        assert traced.startswith(f"Input {pair} = {(a + b) % 13} (")
        assert caption(page, "pair_logit_lens") == f"Logit lens for {pair}: margin read after each layer"
        assert caption(page, "pair_frequencies").startswith(f"Correct logit of {pair} split")
        split = query(f"select split from input_graduation where variant = 'p13_seed3' and a = {a} and b = {b}", study)
        assert f"({split['split'][0]})" in traced
        page.keyboard.down("Shift")
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
        page.keyboard.up("Shift")
        pinned = caption_when(page, "pair_trace", lambda c: "pinned:" in c, "a pinned pair")
        assert pinned.startswith(f"Input {pair} ")  # the traced pair stays; the pinned one sits beside
        typed = page.locator(".epoch-input input").first
        typed.fill("50")
        typed.press("Enter")
        assert caption_when(page, "outcome_map", lambda c: "epoch 50 " in c, "the margin map to follow the epoch") \
            .startswith("Margin per input at epoch 50 (test ")
        assert caption(page, "intervention_map").startswith("head=0 gain=0 at epoch 100: ")  # the nearest recorded
        assert page.errors == []


def test_compare_row_click_opens_the_variant_and_sql_page_queries(app_url, tmp_path):
    with browser_page() as page:
        page.goto(app_url)
        wait_idle(page, 1500)
        assert page.locator(".variant-select select").first.input_value() == "p13_seed3"
        page.locator(".page-nav").get_by_text("Compare", exact=True).click()
        wait_idle(page, 1500)
        page.locator(".variant-summary .tabulator-row").nth(1).locator(".tabulator-cell[tabulator-field=variant]").click()
        wait_idle(page, 1500)
        assert page.locator(".variant-select select").first.input_value() == "p13_seed4"
        page.locator(".section-training").first.wait_for(state="visible", timeout=30000)  # back on the Variant page

        page.locator(".page-nav").get_by_text("SQL", exact=True).click()
        wait_idle(page, 1000)
        editor = page.locator(".sql-editor textarea").first
        editor.fill("select variant, count(*) as checkpoints from checkpoints group by variant order by variant")
        page.locator(".sql-run button").first.click()
        wait_idle(page, 1000)
        assert text(page, "sql-status") == "3 rows x 2 columns"
        cells = lambda field: page.locator(f".sql-result .tabulator-cell[tabulator-field={field}]").all_inner_texts()
        poll(lambda: cells("variant") == ["mlp_p13_seed5", "p13_seed3", "p13_seed4"], 30, page, "the result table")
        assert cells("checkpoints") == ["9"] * 3
        editor.fill("drop table src_runs")
        page.locator(".sql-run button").first.click()
        wait_idle(page, 1000)
        assert "only read queries are allowed" in text(page, "sql-error")
        page.screenshot(path=str(tmp_path / "sql.png"), full_page=True)
        assert page.errors == []


@pytest.mark.parametrize("suffix, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_export_figure_formats(study, tmp_path, suffix, magic):
    import dashboards.export

    out = dashboards.export.figure("neuron_heatmap", "p13_seed3", tmp_path / f"n.{suffix}", epoch=100, neuron=5, db=study)
    assert out.read_bytes().startswith(magic)


def test_export_gif_has_one_frame_per_checkpoint_and_html_is_standalone(study, tmp_path):
    result = run_tdw("export", "figure", "spectrum", "--variant", "p13_seed3", "--db", str(study),
                     "--out", str(tmp_path / "s.gif"), check=True)
    assert "wrote" in result.stderr
    gif = Image.open(io.BytesIO((tmp_path / "s.gif").read_bytes()))
    assert gif.n_frames == 9  # checkpoints 0, 25, ..., 175 and the last epoch 199
    run_tdw("export", "figure", "loss_curves", "--variant", "p13_seed3", "--db", str(study),
            "--out", str(tmp_path / "loss.html"), check=True)
    html = (tmp_path / "loss.html").read_text()
    assert "Bokeh" in html and not re.search(r"<script[^>]+src=\"https?://", html)


def test_export_bad_input_is_one_line_and_writes_nothing(study, tmp_path):
    for args, needle in [
        (["no_such_view", "--variant", "p13_seed3"], "VIEW 'no_such_view': unknown view (known: attention_map"),
        (["spectrum", "--variant", "p99_seed1"], "--variant p99_seed1: not in the warehouse"),
        (["spectrum", "--variant", "p13_seed3", "--epoch", "13"], "--epoch 13: p13_seed3 has no checkpoint there"),
    ]:
        result = run_tdw("export", "figure", *args, "--db", str(study), "--out", str(tmp_path / "x.png"))
        assert result.returncode == 2 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_a_sweep_launched_from_the_train_page_runs_and_appears_in_the_summary(study, tmp_path):
    """The issue's acceptance: launch a 4-variant sweep from the dashboard, over both families,
    watch it, and find it in variant_summary and the Compare page without restarting anything.
    On a copy of the session's study (its three variants), so the shared one stays as it is."""
    root = tmp_path / "study"
    shutil.copytree(study.parent.parent, root)
    db = root / "warehouse" / "tdw.duckdb"
    with served(db, results=root / "results") as url, browser_page() as page:
        page.goto(url)
        wait_idle(page, 1000)
        page.locator(".page-nav").get_by_text("Train", exact=True).click()
        wait_idle(page, 1000)
        for css, value in [("train-p", "13"), ("train-seed", "x")]:
            page.locator(f".{css} input").first.fill(value)
            page.locator(f".{css} input").first.press("Enter")
        page.locator(".train-launch button").first.click()
        poll(lambda: "--seed 'x'" in text(page, "train-error"), 20, page, "a validation message")
        for css, value in [("train-family", "modular_addition,mlp"), ("train-seed", "11,12"), ("train-epochs", "80"), ("train-checkpoints", "0:80:20"),
                           ("train-d-model", "32"), ("train-d-mlp", "64"), ("train-n-heads", "2"), ("train-d-head", "16")]:
            page.locator(f".{css} input").first.fill(value)
            page.locator(f".{css} input").first.press("Enter")
        page.locator(".train-analyze input").first.uncheck()
        page.locator(".train-launch button").first.click()
        poll(lambda: text(page, "train-launched").startswith("Launched a sweep of 4 variants"), 20, page, "the launch")
        states = lambda: page.locator(".train-jobs .tabulator-cell[tabulator-field=state]").all_inner_texts()
        poll(lambda: "running" in states() or states().count("done") >= 4, 120, page, "a running job")
        page.screenshot(path=str(tmp_path / "train-running.png"), full_page=True)
        poll(lambda: states().count("done") == 5, 300, page, "the sweep to finish")  # 4 jobs and the sweep
        summary = query("select variant from variant_summary order by variant", db)["variant"].to_list()
        assert summary == ["mlp_p13_seed11", "mlp_p13_seed12", "mlp_p13_seed5", "p13_seed11", "p13_seed12", "p13_seed3",
                           "p13_seed4"]
        shapes = query("select variant, d_model, d_mlp from variants where seed > 10 order by variant", db).rows()
        assert shapes == [("mlp_p13_seed11", None, 64), ("mlp_p13_seed12", None, 64), ("p13_seed11", 32, 64),
                          ("p13_seed12", 32, 64)]  # the form's transformer dimensions left out of the MLPs
        page.locator(".page-nav").get_by_text("Compare", exact=True).click()
        wait_idle(page, 1000)
        page.locator(".variant-summary").first.scroll_into_view_if_needed()  # Tabulator renders visible rows only
        cells = lambda: page.locator(".variant-summary .tabulator-cell[tabulator-field=variant]").all_inner_texts()
        poll(lambda: len(cells()) == 7, 30, page, f"the new variants on the Compare page ({cells()})")
        assert page.errors == []


def test_sql_page_attacks_are_refused_and_change_nothing(app_url, study, tmp_path):
    """The SQL page is shared with a lab by `tdw serve --address 0.0.0.0`: it must read the warehouse
    and nothing else, like `tdw sql` (tests/test_security.py has the full list through the CLI)."""
    import hashlib

    run = next((study.parent.parent / "results").rglob("config.json")).parent
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in [study, *run.rglob("*")] if p.is_file()}
    attacks = [
        (f"explain analyze copy (select 42 as x) to '{tmp_path / 'x.csv'}'", "only read queries are allowed"),
        (f"copy (select 42 as x) to '{run / 'artifacts' / 'planted.csv'}'", "only read queries are allowed"),
        ("select * from read_csv('/etc/passwd')", "file system operations are disabled"),
        ("select * from read_text('/proc/self/environ')", "file system operations are disabled"),
        (f"attach '{tmp_path / 'x.duckdb'}' as other", "only read queries are allowed"),
    ]
    with browser_page() as page:
        page.goto(app_url)
        wait_idle(page, 1500)
        page.locator(".page-nav").get_by_text("SQL", exact=True).click()
        wait_idle(page, 1000)
        editor = page.locator(".sql-editor textarea").first
        for sql, message in attacks:
            editor.fill(sql)
            page.locator(".sql-run button").first.click()
            wait_idle(page, 800)
            assert message in text(page, "sql-error"), sql
            assert "root:" not in page.content()
        assert page.errors == []
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in [study, *run.rglob("*")] if p.is_file()}
    assert after == before and list(tmp_path.iterdir()) == []


FIGURES_JS = """() => {
  const views = {};
  for (const model of Bokeh.documents[0].all_models) {
    if (typeof model.name === 'string' && model.name.startsWith('tdw-view-')) {
      views[model.name.slice(9)] = [model.id, ...model.renderers.filter(r => r.data_source).map(r => r.data_source.id)];
    }
  }
  return views;
}"""


def test_an_epoch_change_patches_shown_figures_in_place_and_leaves_closed_sections_alone(app_url):
    """The dashboard's update design, pinned: an epoch change keeps every figure and data source
    (same Bokeh ids: nothing is rebuilt), reaches the browser as small property and data patches,
    and sends nothing to a section that is closed; reopened, that section catches up."""
    import json

    with browser_page() as page:
        frames: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
        page.goto(app_url)
        wait_idle(page, 1500)
        for view in ("frequencies_at_epoch", "neuron_clusters", "neuron_heatmap", "spectrum"):
            caption(page, view)  # scroll every section used below into view once: drawn
        wait_idle(page, 500)
        figures = page.evaluate(FIGURES_JS)
        assert {"loss_curves", "frequencies_at_epoch", "neuron_heatmap", "spectrum"} <= set(figures), figures
        geometry = {i for view in ("spectrum", "participation_ratio", "spectral_gap") for i in figures[view]}
        page.locator(".section-geometry .card-header").first.click()  # close Geometry
        wait_idle(page, 500)
        page.locator(".card-neuron_heatmap").first.scroll_into_view_if_needed()  # Neurons on screen
        wait_idle(page, 1000)
        figures = page.evaluate(FIGURES_JS)  # with any section that closing Geometry brought on screen (drawn then)

        frames.clear()
        handle = page.locator(".epoch-slider .noUi-handle").first
        handle.focus()
        handle.press("ArrowLeft")
        poll(lambda: caption(page, "neuron_heatmap").endswith("epoch 175") or
             caption(page, "neuron_heatmap").split(" at epoch ")[1].startswith("175"), 30, page, "the heatmap to follow")
        wait_idle(page, 500)
        assert page.evaluate(FIGURES_JS) == figures  # the same figures and data sources: patched, not rebuilt
        received = sum(len(f) for f in frames)
        assert received < 60_000, received
        events = [event for f in frames if isinstance(f, str) and f.startswith('{"events"')
                  for event in json.loads(f)["events"]]
        assert events and {e["kind"] for e in events} <= {"ModelChanged", "ColumnDataChanged"}, events
        assert not any('"name":"Figure"' in f for f in frames if isinstance(f, str))  # no new figure sent
        touched = {e["model"]["id"] for e in events}
        assert touched & set(figures["neuron_heatmap"])  # the shown heatmap got its new arrays
        assert not touched & geometry  # the closed section got nothing

        page.locator(".section-geometry .card-header").first.click()  # reopened: it catches up
        assert poll(lambda: caption(page, "spectrum").endswith("epoch 175"), 30, page, "the spectrum to catch up")
        assert page.evaluate(FIGURES_JS)["spectrum"] == figures["spectrum"]
        assert page.errors == []


SMALL_MULTIPLES_JS = """() => {
  const found = [];
  const seen = new Set();
  const walk = (view) => {
    if (!view || seen.has(view)) return;
    seen.add(view);
    const model = view.model;
    if (model.type === 'Figure' && model.name === 'tdw-view-frequencies_at_epoch' && /p13_seed[0-9]+$/.test(model.title.text)) {
      const source = model.renderers.find(r => r.data_source && r.data_source.data.norm).data_source.data;
      found.push({variant: model.title.text, frame: [view.frame.bbox.width, view.frame.bbox.height],
                  frequency: Array.from(source.frequency, Number), norm: Array.from(source.norm)});
    }
    for (const child of (view.child_views || [])) walk(child);
  };
  Object.values(Bokeh.index).forEach(walk);
  return found.sort((a, b) => a.variant.localeCompare(b.variant));
}"""


def test_compare_small_multiples_are_laid_out_and_follow_the_epoch(app_url, study):
    """Every small multiple is really laid out (its plot frame has a size: under the old page layout
    they were drawn as empty 0x0 frames and each repaint re-laid out the page) and, after an epoch
    change, shows each variant's norms at that epoch exactly as the warehouse has them."""
    with browser_page() as page:
        page.goto(app_url + "?page=Compare")
        wait_idle(page, 1000)
        page.locator(".multiple-view select").first.select_option("frequencies_at_epoch")
        grid = page.locator(".small-multiples").first
        grid.evaluate("el => el.scrollIntoView({block: 'start'})")
        poll(lambda: len(page.evaluate(SMALL_MULTIPLES_JS)) == 3, 30, page, "every small multiple drawn")
        box = page.locator(".epoch-input input").first
        box.fill("100")
        box.press("Enter")
        expected = {v: query(f"select frequency, norm from dominant_frequencies where variant = '{v}' and epoch = 100 "
                             "order by frequency", study) for v in VARIANTS}
        at_epoch = lambda: [d["norm"] == pytest.approx(expected[d["variant"]]["norm"].to_list(), rel=1e-6)
                            for d in page.evaluate(SMALL_MULTIPLES_JS)] == [True] * 3
        poll(at_epoch, 30, page, "every small multiple at epoch 100")  # the cells on screen follow the epoch
        wait_idle(page, 300)
        drawn = page.evaluate(SMALL_MULTIPLES_JS)
        assert [d["variant"] for d in drawn] == sorted(VARIANTS)  # both families
        for figure in drawn:
            assert min(figure["frame"]) > 100, figure["frame"]
            assert figure["frequency"] == expected[figure["variant"]]["frequency"].to_list()
            assert figure["norm"] == pytest.approx(expected[figure["variant"]]["norm"].to_list(), rel=1e-6)
        assert page.errors == []


TRAJECTORY_OVERLAY_JS = """() => {
  const found = [];
  const seen = new Set();
  const walk = (view) => {
    if (!view || seen.has(view)) return;
    seen.add(view);
    const model = view.model;
    if (model.type === 'Figure' && model.title && String(model.title.text).startsWith('Trajectories PC2/PC3')) {
      const lines = model.renderers.filter(r => r.glyph && r.glyph.type === 'Line')
                                   .map(r => Array.from(r.data_source.data[r.glyph.x.field || 'x'], Number));
      found.push({title: model.title.text, lines: lines});
    }
    for (const child of (view.child_views || [])) walk(child);
  };
  Object.values(Bokeh.index).forEach(walk);
  return found;
}"""


def test_compare_overlays_trajectories_in_a_shared_basis_and_orders_events(app_url, study):
    """The Compare page's trajectory overlay switches to the study's shared basis (`tdw analyze
    --trajectory-basis seeds`) and draws each member's PC2 there; the event-order table lists each
    event with its epochs from every variant's turn."""
    with browser_page() as page:
        page.goto(app_url + "?page=Compare")
        wait_idle(page, 1000)
        chooser = page.locator(".trajectory-basis select").first
        assert chooser.locator("option").all_inner_texts() == ["own", "seeds"]
        chooser.select_option("seeds")
        overlay = lambda: page.evaluate(TRAJECTORY_OVERLAY_JS)
        poll(lambda: any("shared basis seeds" in f["title"] for f in overlay()), 30, page, "the shared-basis overlay")
        members = [tiny_config(seed=s).name for s in (3, 4)]
        expected = [query(f"select value from trajectory_basis where variant = '{v}' and basis = 'seeds' and "
                          f"\"group\" = 'all' and component = 'pc2' order by epoch", study)["value"].to_list() for v in members]
        drawn = next(f for f in overlay() if "shared basis seeds" in f["title"])["lines"]
        assert len(drawn) == 2
        for line, values in zip(sorted(drawn, key=lambda xs: xs[0]), sorted(expected, key=lambda xs: xs[0]), strict=True):
            assert line == pytest.approx(values, rel=1e-5, abs=1e-6)
        table = page.locator(".event-order").first
        table.scroll_into_view_if_needed()
        compared = query("select variant from variants order by variant", study)["variant"].to_list()
        rows = event_order_table(WarehouseStore(study), compared, from_turn=False)
        first = rows.row(0, named=True)  # the earliest event by median epoch, at each variant's epoch
        assert first["median"] == statistics.median(
            query(f"select min(epoch) as e from event_order where metric || ' ' || kind = '{first['event']}' "
                  "group by variant", study)["e"].to_list())
        events = lambda: page.locator(".event-order .tabulator-cell[tabulator-field=event]").all_inner_texts()
        poll(lambda: events()[:1] == [first["event"]], 30, page, f"the event-order table's first row ({events()[:3]})")
        assert page.errors == []


def test_a_variant_of_the_mlp_family_shows_its_views_and_says_which_do_not_apply(app_url, study):
    """The second family in the dashboard: its neuron views draw from its own hooks, its attention
    view says it does not apply (rather than 'no data'), and the summary compares it in its family."""
    with browser_page() as page:
        page.goto(app_url + "?variant=mlp_p13_seed5")
        wait_idle(page, 1500)
        assert page.locator(".variant-select select").first.input_value() == "mlp_p13_seed5"
        assert caption(page, "neuron_heatmap").startswith("Neuron 0 at epoch")
        assert caption(page, "attention_map") == "Attention: n/a, family mlp has no attention"
        assert caption(page, "frequencies_at_epoch").startswith("Embedding Fourier norms at epoch")
        assert page.errors == []
    summary = query("select variant, family, outlier from variant_summary order by family, variant", study)
    assert summary.rows() == [("mlp_p13_seed5", "mlp", False), ("p13_seed3", "modular_addition", False),
                              ("p13_seed4", "modular_addition", False)]


PHASE_BANDS_JS = """() => {
  const bands = [];
  const seen = new Set();
  const walk = (view) => {
    if (!view || seen.has(view)) return;
    seen.add(view);
    const model = view.model;
    if (model.type === 'Figure' && model.name === 'tdw-view-loss_curves') {
      for (const layout of model.center) {
        if (layout.type === 'BoxAnnotation' && layout.level === 'underlay' && layout.visible)
          bands.push([Number(layout.left), Number(layout.right)]);
      }
    }
    for (const child of (view.child_views || [])) walk(child);
  };
  Object.values(Bokeh.index).forEach(walk);
  return bands.sort((a, b) => a[0] - b[0]);
}"""


def test_the_run_phases_are_shaded_on_over_epochs_plots_and_the_toggle_hides_them(app_url, study):
    phases = query("select start_epoch, end_epoch from training_phases where variant = 'p13_seed3' order by start_epoch",
                   study)
    assert phases.height >= 2  # a run without a turn: memorization, then its plateau
    with browser_page() as page:
        page.goto(app_url)
        wait_idle(page, 1500)
        plot_box(page, "loss_curves")
        expected = [list(row) for row in phases.iter_rows()]
        assert poll(lambda: page.evaluate(PHASE_BANDS_JS) == expected, 30, page, "the phase bands")
        assert caption(page, "event_timeline").endswith("; phases: " + ", ".join(
            f"{name.replace('_', ' ')} {start}-{end}" for name, start, end in query(
                "select phase, start_epoch, end_epoch from training_phases where variant = 'p13_seed3' "
                "order by phase_index", study).iter_rows()))
        page.locator(".show-phases input").first.uncheck()
        assert poll(lambda: page.evaluate(PHASE_BANDS_JS) == [], 30, page, "the bands to hide")
        assert page.errors == []
