"""The tdw dashboard. `tdw serve` runs it; so does `panel serve dashboards/app.py --args --db FILE`
(or TDW_DB=FILE). Sidebar: the global state (variant, epoch, neuron, head, traced input, brushed
range), page navigation, figure export and the application version; main area: the selected page."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import holoviews as hv
import panel as pn
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE
from bokeh.models import CustomJS, CustomJSTickFormatter

from dashboards.batch import one_update
from dashboards.closed_tabs import quiet_closed_tabs
from dashboards.launch import launch_tdw
from dashboards.local_layout import lay_out_fixed_figures_alone
from dashboards.state import WorkbenchState, parse_pair, typed_pair
from dashboards.store import WarehouseStore, shared_store
from dashboards.views import all_views
from tdw.versions import git_sha, tdw_version

hv.extension("bokeh", "matplotlib", logo=False)
hv.Store.set_current_backend("bokeh")
hv.renderer("bokeh").webgl = False  # small plots paint faster on a 2D canvas (WebGL pays a blit per figure)
hv.opts.defaults(
    hv.opts.Curve(tools=["hover", "xbox_select"], line_width=2),
    hv.opts.Image(tools=["hover"]),
    hv.opts.Points(tools=["hover"]),
    hv.opts.Bars(tools=["hover"]),
)
pn.extension("tabulator")
# Bokeh's W-1005 wants a width and a height on every fixed-size figure, and does not count a frame
# size: our over-epochs plots are sized by their frame (views/_common.FRAME, so legends sit beside
# it), which Bokeh lays out correctly, but each page load logged one warning per such plot
silence(FIXED_SIZING_MODE, True)


# what the URL carries: a bookmark or a shared link reopens exactly this
URL_STATE = ("page", "variant", "epoch", "neuron", "head", "pair", "pinned", "epoch_range", "show_phases", "compare",
             "align_at_turn", "log_epochs", "open_sections", "report")


def version_line() -> str:
    sha = git_sha()
    return f"tdw {tdw_version()}" + (f" ({sha})" if sha else "")


def epoch_labels(epochs: list[int]) -> CustomJSTickFormatter:
    """The slider moves over checkpoint indices and shows the epoch of each."""
    return CustomJSTickFormatter(args={"epochs": epochs}, code="return String(epochs[tick] ?? tick)")


def sidebar(store: WarehouseStore, state: WorkbenchState) -> list:
    variant = pn.widgets.Select.from_param(state.param.variant, name="Variant", css_classes=["variant-select"])
    # A plain Bokeh slider over checkpoint indices: Panel's DiscreteSlider carries a text label whose
    # every change re-lays out the whole page in the browser (Bokeh's MarkupView re-renders).
    epochs = state.checkpoint_epochs or [0]
    slider = pn.widgets.IntSlider(name="Epoch", start=0, end=max(1, len(epochs) - 1), value=state.checkpoint_index(),
                                  format=epoch_labels(epochs), css_classes=["epoch-slider"], sizing_mode="stretch_width")
    # Bokeh writes the slider's "Epoch: N" when its value changes, not its format: after a switch
    # to a variant with other checkpoints it showed the old variant's epoch at the new index
    slider.jscallback(format="source.properties.value.change.emit()")
    typed = pn.widgets.IntInput(name="Type an epoch (snaps to a checkpoint)", value=state.epoch, css_classes=["epoch-input"])
    neuron = pn.widgets.IntInput.from_param(state.param.neuron, name="Neuron", css_classes=["neuron-input"])
    head = pn.widgets.IntInput.from_param(state.param.head, name="Head", css_classes=["head-input"])
    # the traced input by its name ("how does the model handle 4+29?"): at p=113 a map's cell is two
    # pixels wide, and most of the published run's inputs are not traced
    pair = pn.widgets.TextInput(name="Traced input a+b (or click a map)", value=state.pair, css_classes=["pair-input"])
    pair_problem = pn.pane.Markdown("", css_classes=["pair-problem"], margin=(0, 10))
    tracing = trace_controls(store, state) if "Analyze" in state.param.page.objects else []  # none in a bundle
    brushed = pn.pane.Markdown("", css_classes=["brushed-range"])
    clear = pn.widgets.Button(name="Clear brushed range", button_type="light", css_classes=["clear-range"])
    clear.on_click(lambda _: setattr(state, "epoch_range", None))
    phases = pn.widgets.Checkbox.from_param(state.param.show_phases, name="Shade the phases (training_phases)",
                                            css_classes=["show-phases"])
    log_epochs = pn.widgets.Checkbox.from_param(state.param.log_epochs, name="Log epochs (from epoch 1)",
                                                css_classes=["sidebar-log-epochs"])

    def on_epochs(*_):
        epochs = state.checkpoint_epochs or [0]
        slider.param.update(end=max(1, len(epochs) - 1), format=epoch_labels(epochs), value=state.checkpoint_index())

    def on_epoch(*_):
        if slider.value != state.checkpoint_index():
            slider.value = state.checkpoint_index()
        typed.value = state.epoch

    def on_slider(event):
        epochs = state.checkpoint_epochs
        if epochs:
            with one_update():
                state.go_to_epoch(epochs[min(event.new, len(epochs) - 1)])

    def on_typed(event):
        if event.new is not None:
            with one_update():
                state.go_to_epoch(event.new)

    def on_pair_typed(event):
        try:
            chosen = typed_pair(event.new, store.variant(state.variant).get("p") if state.variant else None)
        except ValueError as problem:
            pair_problem.object = str(problem)
            return
        pair_problem.object = ""
        with one_update():
            state.pair = chosen
        if chosen != event.new and pn.state.curdoc is not None:
            # written back as a+b on the next tick: Panel does not send a widget's value back to the
            # browser from within the event that brought it
            pn.state.curdoc.add_next_tick_callback(lambda: setattr(pair, "value", state.pair))

    def on_pair(*_):
        pair.value = state.pair

    def on_range(*_):
        r = state.epoch_range
        brushed.object = f"Brushed epochs: {r[0]:.0f} to {r[1]:.0f}" if r else "Brush a range with box select on any over-epochs plot"

    state.param.watch(on_epochs, "checkpoint_epochs")
    state.param.watch(on_epoch, "epoch")
    state.param.watch(on_range, "epoch_range")
    slider.param.watch(on_slider, "value")
    typed.param.watch(on_typed, "value")
    state.param.watch(on_pair, "pair")
    pair.param.watch(on_pair_typed, "value")
    for widget in (variant, typed, neuron, head, pair):
        widget.sizing_mode = "stretch_width"  # their default 300 px overflowed the 290 px sidebar, clipped at its edge
    for widget in (variant, slider, typed, neuron, head, pair):
        widget._debounce = 0  # Panel waits 50 ms to merge a widget's browser events; these are single moves
    on_range()

    pages = pn.widgets.RadioButtonGroup.from_param(state.param.page, orientation="vertical", button_type="light",
                                                   sizing_mode="stretch_width", css_classes=["page-nav"])
    busy = pn.pane.Markdown(pn.bind(lambda b: "working…" if b else "ready", pn.state.param.busy), css_classes=["server-status"])
    return [pn.pane.Markdown(f"**{version_line()}**", css_classes=["app-version"]), busy, pages, variant, slider, typed,
            neuron, head, pair, pair_problem, *tracing, brushed, clear, phases, log_epochs, export_controls(store, state)]


FADED, UNFADED = {"opacity": "0.45", "pointer-events": "none"}, {"opacity": None, "pointer-events": None}


def trace_controls(store: WarehouseStore, state: WorkbenchState) -> list:
    """A button that adds the traced input to its run's traced probe when the run has no trace of it
    (`tdw analyze RUN --trace-add a+b`, a tracked job that re-indexes): the Trace section then
    follows without a restart. The published run traces 1,024 of its 12,769 inputs."""
    button = pn.widgets.Button(name="Trace this input (an analysis job)", button_type="light", styles=FADED,
                               sizing_mode="stretch_width", css_classes=["trace-pair"])
    note = pn.pane.Markdown("", css_classes=["trace-launched"], margin=(0, 10))
    launched: set[tuple[str, str, int]] = set()
    refused: list[tuple[str, str]] = []  # the variant and pair a refusal note names, while it shows

    def traced() -> bool:
        a, b = state.pair_ab()
        return (state.variant is None or (state.variant, state.pair, state.generation) in launched
                or store.traces(state.variant, a, b))

    def follow(*events):
        # a style, never `disabled` or `visible`: Bokeh renders a button again when it is enabled or
        # disabled, and lays out the whole page after it (~150 ms of a click across the trace's
        # boundary, with every section built). A click on it while it is faded is refused here.
        faded = traced()
        if (button.styles == FADED) != faded:
            button.styles = FADED if faded else UNFADED
        if any(event.name == "generation" for event in events) or (refused and refused[0] != (state.variant, state.pair)):
            note.object = ""  # a job finished and was indexed, or a refusal that no longer applies
            refused.clear()

    def on_click(_):
        if traced():  # faded: reached from the keyboard, or a click that raced the fading
            if (state.variant, state.pair, state.generation) not in launched:
                note.object = f"{state.pair} is traced in {state.variant} already: nothing to add."
                refused[:] = [(state.variant, state.pair)]
            return
        path = store.variant(state.variant).get("path")
        log = launch_tdw(store, "analyze", path, "--trace-add", state.pair, "--quiet", "--job-db", str(store.db),
                         "--db", str(store.db), log_name="trace")
        launched.add((state.variant, state.pair, state.generation))
        button.styles = FADED
        note.object = (f"Tracing {state.pair} in {state.variant}: an analysis job (the Analyze page shows it; log {log.name}). "
                       "The Trace section follows when it is indexed.")

    state.param.watch(follow, ["variant", "pair", "generation"])
    button.on_click(on_click)
    follow()
    return [button, note]


def export_controls(store: WarehouseStore, state: WorkbenchState) -> pn.Card:
    from dashboards.export import (  # figures are drawn off-screen by matplotlib
        FORMATS,
        backend_lock,
        render_bytes,
    )

    choice = pn.widgets.Select(name="View", options=list(all_views()), value="loss_curves")
    fmt = pn.widgets.Select(name="Format", options=list(FORMATS), value="png")

    def make():
        with backend_lock:
            data = render_bytes(store, choice.value, state.variant, state.epoch, state.neuron, state.head, fmt.value, 4, None,
                                state.pair, state.log_epochs)
        return io.BytesIO(data)

    download = pn.widgets.FileDownload(callback=make, filename="figure.png", label="Export figure", button_type="primary",
                                       css_classes=["export-figure"])
    fmt.param.watch(lambda e: setattr(download, "filename", f"{choice.value}.{e.new}"), "value")
    choice.param.watch(lambda e: setattr(download, "filename", f"{e.new}.{fmt.value}"), "value")
    return pn.Card(choice, fmt, download, title="Export", collapsed=True)


def log_timings() -> None:
    """TDW_DASHBOARD_TIMINGS=1: the server writes how long each batch of plot refreshes took; =2
    also each plot's part and whether it was patched or drawn anew (a new figure costs several
    times a patch: the line that says which views draw anew on a switch)."""
    import logging

    if os.environ.get("TDW_DASHBOARD_TIMINGS") and not logging.getLogger("tdw.dashboard").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
        logging.getLogger("tdw.dashboard").addHandler(handler)
        detail = os.environ["TDW_DASHBOARD_TIMINGS"] == "2"
        logging.getLogger("tdw.dashboard").setLevel(logging.DEBUG if detail else logging.INFO)


def opening_pair(store: WarehouseStore, variant: str, default: str) -> str:
    """The input the Trace section opens on: `default` where the run traces it (every run up to
    p = 64 traces the grid), else its first traced input. The published run traces 1,024 sampled
    inputs, and opened on 0+0 its logit lens and frequency split said "not traced"."""
    if store.traces(variant, *parse_pair(default)):
        return default
    return store.first_traced_pair(variant) or default


def build_app(db: str | Path, results: str | Path = "results", read_only: bool = False) -> pn.Row:
    """`read_only` (a bundle): no page that trains or analyzes."""
    log_timings()
    try:  # the server's loop (`tdw serve` and `panel serve` alike): a reloaded tab logs nothing
        quiet_closed_tabs(asyncio.get_running_loop())
    except RuntimeError:  # built outside a server (a test, a notebook): no loop runs
        pass
    store = shared_store(db, results)
    state = WorkbenchState()
    if read_only:
        state.param.page.objects = [p for p in state.param.page.objects if p not in ("Train", "Analyze")]

    def load_variant(*_, first_load: bool = False):
        if state.variant is None:
            return
        epochs = store.checkpoint_epochs(state.variant)
        state.checkpoint_epochs = epochs
        counts = store.counts(state.variant)
        state.param.neuron.bounds = (0, max(0, counts["neurons"] - 1))
        state.param.head.bounds = (0, max(0, counts["heads"] - 1))
        state.neuron = min(state.neuron, max(0, counts["neurons"] - 1))
        state.head = min(state.head, max(0, counts["heads"] - 1))
        keep_pairs()
        if first_load:  # a pair in the URL is applied after this
            state.pair = opening_pair(store, state.variant, state.param.pair.default)
        if epochs and (state.epoch not in epochs or first_load):
            state.epoch = epochs[-1]  # open a variant where it ended up

    def keep_pairs(*_):
        # on a switch of variant, and on pairs from a URL (which may be applied after its variant)
        p = store.variant(state.variant).get("p") if state.variant else None
        if p:
            state.keep_pairs_within(p)

    state.param.watch(load_variant, "variant")
    state.param.watch(keep_pairs, ["pair", "pinned"])
    state.set_variants(store.variant_names())
    load_variant(first_load=True)

    seen = {"generation": store.generation()}

    def watch_warehouse():
        # a finished job re-indexes; pick the new warehouse up without a restart, with the shown
        # variant's checkpoints as they are now (a run extended or analyzed while training grew)
        if store.generation() != seen["generation"]:
            seen["generation"] = store.generation()
            with one_update():
                state.set_variants(store.variant_names())
                load_variant()
                state.generation += 1

    if pn.state.curdoc is not None:
        pn.state.add_periodic_callback(watch_warehouse, period=2000)

    built: dict[str, pn.viewable.Viewable] = {}

    def page(name: str):
        if name not in built:
            module = __import__(f"dashboards.pages.{name.lower()}", fromlist=["build"])
            built[name] = module.build(store, state)
        return built[name]

    # the URL's state first, so the session builds the page it asks for and no other
    if pn.state.location is not None:
        pn.state.location.sync(state, {name: name for name in URL_STATE})
        # Panel pushes a history entry per change but does not follow the back button: on popstate
        # the browser reloads the page, and the session is built from the URL it went back to
        if pn.state.curdoc is not None:
            pn.state.curdoc.js_on_event("document_ready", CustomJS(code="window.addEventListener('popstate', () => window.location.reload())"))
    if pn.state.curdoc is not None:
        lay_out_fixed_figures_alone(pn.state.curdoc)

    # the sidebar stays in view while the page scrolls (sticky), and folds away with one click
    toggle = pn.widgets.Toggle(name="☰ controls", value=True, button_type="light", css_classes=["sidebar-toggle"], width=120)
    controls = pn.Column(*sidebar(store, state), width=290, visible=toggle, css_classes=["sidebar"])
    side = pn.Column(toggle, controls, styles={"position": "sticky", "top": "0", "align-self": "flex-start",
                                               "max-height": "100vh", "overflow-y": "auto"})
    main = pn.Column(pn.pane.Markdown("## tdw: Training Dynamics Workbench", margin=(0, 10)),
                     pn.panel(pn.bind(page, state.param.page), sizing_mode="stretch_width"), sizing_mode="stretch_width")
    return pn.Row(side, main, sizing_mode="stretch_width")


def database_argument() -> str:
    args = sys.argv[1:]
    if "--db" in args and args.index("--db") + 1 < len(args):
        return args[args.index("--db") + 1]
    return os.environ.get("TDW_DB", "warehouse/tdw.duckdb")


if __name__.startswith("bokeh_app") or __name__ == "__main__":
    build_app(database_argument()).servable()
