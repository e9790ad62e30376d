"""Across variants: the variant_summary table (click a row to open that variant), overlays of
chosen variants with an "align at the turn" switch, and small multiples of any one view."""

from __future__ import annotations

import holoviews as hv
import panel as pn

from dashboards.comparisons import MEASURES, overlay, trajectories
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.views import all_views

SIZE = {"width": 620, "height": 340}


def summary_frame(store: WarehouseStore):
    """variant_summary as pandas (Tabulator takes pandas), key frequencies as text."""
    frame = store.variant_summary().to_pandas()
    frame["key_frequencies"] = frame["key_frequencies"].map(lambda ks: ", ".join(map(str, ks)) if ks is not None else "")
    return frame


def summary_table(store: WarehouseStore, state: WorkbenchState) -> pn.widgets.Tabulator:
    frame = summary_frame(store)
    table = pn.widgets.Tabulator(frame, disabled=True, show_index=False, selectable=1, sizing_mode="stretch_width",
                                 css_classes=["variant-summary"], pagination=None, height=min(400, 60 + 32 * len(frame)))

    def open_variant(event):
        state.variant = table.value["variant"].iloc[event.row]
        state.page = "Variant"

    table.on_click(open_variant)

    def refresh(*_):
        fresh = summary_frame(store)
        table.value = fresh
        table.height = min(400, 60 + 32 * len(fresh))

    state.param.watch(refresh, "generation")
    return table


def small_multiples(store: WarehouseStore, state: WorkbenchState, name: str, variants: list[str], epoch: int):
    view = all_views()[name]
    elements = []
    for variant in variants:
        state_epochs = store.checkpoint_epochs(variant)
        needs = {"epoch": min(state_epochs, key=lambda e: abs(e - epoch)) if state_epochs else epoch,
                 "neuron": state.neuron, "head": state.head}
        element = view.render(store, variant, **{k: needs[k] for k in view.needs})
        elements.append(element.relabel(variant).opts(title=f"{variant}"))
    if not elements:
        return pn.pane.Markdown("Choose variants to compare.")
    layout = hv.Layout(elements).cols(3)
    return pn.pane.HoloViews(layout.opts(hv.opts.Curve(width=330, height=230), hv.opts.Image(width=330, height=280))
                             if view.backend == "bokeh" else layout, backend=view.backend)


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    chooser = pn.widgets.MultiChoice.from_param(state.param.compare, name="Variants to compare", sizing_mode="stretch_width")
    align = pn.widgets.Checkbox.from_param(state.param.align_at_turn, name="Align at the turn")
    measure_a = pn.widgets.Select(name="Overlay", options=list(MEASURES), value="test loss")
    measure_b = pn.widgets.Select(name="Overlay", options=list(MEASURES), value="W_in participation ratio")
    bokeh_views = [n for n, v in all_views().items() if v.backend == "bokeh"]
    multiple = pn.widgets.Select(name="Small multiples of", options=bokeh_views, value="loss_curves")

    def overlay_pane(measure, variants, align_at_turn):
        return pn.pane.HoloViews(overlay(store, variants, measure, align_at_turn).opts(**SIZE))

    return pn.Column(
        pn.pane.Markdown("### Variant summary (click a row to open the variant)"),
        summary_table(store, state),
        pn.Row(chooser, align, sizing_mode="stretch_width"),
        pn.Row(pn.Column(measure_a, pn.bind(overlay_pane, measure_a, state.param.compare, state.param.align_at_turn)),
               pn.Column(measure_b, pn.bind(overlay_pane, measure_b, state.param.compare, state.param.align_at_turn))),
        pn.pane.HoloViews(pn.bind(lambda vs: trajectories(store, vs).opts(**SIZE), state.param.compare)),
        multiple,
        pn.bind(lambda name, vs, e: small_multiples(store, state, name, vs, e), multiple, state.param.compare, state.param.epoch),
        sizing_mode="stretch_width",
    )
