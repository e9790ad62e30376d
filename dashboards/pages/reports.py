"""Reports: the saved views (dashboards/saved_views.py). List them, open one (its views for each of
its variants at its pinned epochs, neurons, heads and inputs; `?page=Reports&report=NAME` opens it
from a link),
make one from the current selection, edit and delete. `tdw report NAME` writes the same as a file."""

from __future__ import annotations

import panel as pn

from dashboards import saved_views
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.views import all_views, get_view
from tdw.errors import TdwError


def numbers(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise TdwError(f"{what}: whole numbers separated by commas, e.g. 500,1500") from None


def inputs(text: str) -> list[str]:
    """"4+29, 17 + 3" -> ["4+29", "17+3"]; a bad one is refused when the view is saved."""
    return [x.replace(" ", "") for x in text.split(",") if x.strip()]


def opened_view(store: WarehouseStore, saved: saved_views.SavedView) -> list:
    """The saved view's figures, drawn by the same view functions as the Variant page."""
    from dashboards.export import render_view

    parts: list = [pn.pane.Markdown(f"### {saved.title or saved.name}\n{saved.notes}", css_classes=["report-title"])]
    for variant in saved.variants:
        if variant not in store.variant_names():
            parts.append(pn.pane.Markdown(f"{variant}: not in the warehouse"))
            continue
        checkpoints = store.checkpoint_epochs(variant)
        figures = []
        for name in saved.views:
            view = get_view(name)
            for at in saved.selections(view.needs, view.over_epochs, checkpoints):
                try:
                    _, element = render_view(store, name, variant, at.epoch, at.neuron, at.head, "bokeh", at.pair,
                                             log_epochs=saved.log_epochs, pinned=at.pinned)
                except TdwError as error:  # an input or head the variant does not have
                    figures.append(pn.pane.Markdown(f"{name}: {error}", css_classes=["report-figure-error"]))
                    continue
                figures.append(pn.pane.HoloViews(element.opts(width=460, height=300), css_classes=["report-figure"],
                                                 linked_axes=False))
        parts += [pn.pane.Markdown(f"#### {variant}"), pn.FlexBox(*figures)]
    return parts


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    db = store.db
    chooser = pn.widgets.Select(name="Saved views", options=[], css_classes=["report-choice"])
    open_button = pn.widgets.Button(name="Open", button_type="primary", css_classes=["report-open"])
    delete_button = pn.widgets.Button(name="Delete", button_type="danger", css_classes=["report-delete"])
    message = pn.pane.Markdown("", css_classes=["report-message"])
    shown = pn.Column(sizing_mode="stretch_width", css_classes=["report-shown"])

    name = pn.widgets.TextInput(name="Name", css_classes=["report-name"])
    title = pn.widgets.TextInput(name="Title", css_classes=["report-title-input"])
    views = pn.widgets.MultiChoice(name="Views", options=list(all_views()), css_classes=["report-views"])
    variants = pn.widgets.MultiChoice(name="Variants", options=store.variant_names(), css_classes=["report-variants"])
    epochs = pn.widgets.TextInput(name="Pinned epochs (comma-separated)", css_classes=["report-epochs"])
    neurons = pn.widgets.TextInput(name="Pinned neurons (comma-separated)", css_classes=["report-neurons"])
    heads = pn.widgets.TextInput(name="Pinned heads (comma-separated)", css_classes=["report-heads"])
    pairs = pn.widgets.TextInput(name="Pinned inputs (a+b, comma-separated)", css_classes=["report-pairs"])
    log_epochs = pn.widgets.Checkbox(name="Log epochs (views over epochs)", css_classes=["report-log-epochs"])
    notes = pn.widgets.TextAreaInput(name="Notes", height=60, css_classes=["report-notes"])
    from_selection = pn.widgets.Button(name="Fill from the current selection", css_classes=["report-from-selection"])
    save_button = pn.widgets.Button(name="Save view", button_type="success", css_classes=["report-save"])

    def refresh_list(select: str | None = None):
        names = list(saved_views.load_all(db))
        chooser.options = names
        if select in names:
            chooser.value = select

    def fill(saved: saved_views.SavedView):
        name.value, title.value, notes.value = saved.name, saved.title, saved.notes
        views.value, variants.value = list(saved.views), [v for v in saved.variants if v in variants.options]
        epochs.value, neurons.value = ",".join(map(str, saved.epochs)), ",".join(map(str, saved.neurons))
        heads.value, pairs.value = ",".join(map(str, saved.heads)), ",".join(saved.pairs)
        log_epochs.value = saved.log_epochs

    def show(report: str):
        if not report:
            shown.objects = []
            return
        try:
            saved = saved_views.load(db, report)
        except TdwError as error:
            message.object = f"**{error}**"
            return
        fill(saved)
        chooser.value = report if report in chooser.options else chooser.value
        shown.objects = opened_view(store, saved)
        message.object = f"Opened **{report}** (`tdw report {report}` writes it as HTML, PDF and Markdown)"

    def save(_=None):
        try:
            saved = saved_views.SavedView(name=name.value.strip(), title=title.value.strip(), views=list(views.value),
                                          variants=list(variants.value), epochs=numbers(epochs.value, "Pinned epochs"),
                                          neurons=numbers(neurons.value, "Pinned neurons"),
                                          heads=numbers(heads.value, "Pinned heads"), pairs=inputs(pairs.value),
                                          log_epochs=log_epochs.value, notes=notes.value.strip())
            path = saved_views.save(db, saved, list(all_views()), store.variant_names())
        except TdwError as error:
            message.object = f"**{error}**"
            return
        refresh_list(saved.name)
        if state.report == saved.name:
            show(saved.name)  # edited in place: redraw it (the URL already names it)
        state.report = saved.name
        message.object = f"Saved **{saved.name}** ({path})"

    def delete(_=None):
        if not chooser.value:
            return
        gone = chooser.value
        saved_views.remove(db, gone)
        refresh_list()
        message.object = f"Deleted **{gone}**"
        if state.report == gone:
            state.report = ""

    def take_selection(_=None):
        if state.variant:
            variants.value = [state.variant]
        epochs.value, neurons.value, heads.value = str(state.epoch), str(state.neuron), str(state.head)
        pairs.value = ",".join(dict.fromkeys([state.pair, *state.pinned]))  # the traced input first
        log_epochs.value = state.log_epochs

    open_button.on_click(lambda _: setattr(state, "report", chooser.value or ""))
    save_button.on_click(save)
    delete_button.on_click(delete)
    from_selection.on_click(take_selection)
    state.param.watch(lambda e: show(e.new), "report")
    refresh_list(state.report)
    show(state.report)
    editor = pn.Card(name, title, views, variants, epochs, neurons, heads, pairs, log_epochs, notes,
                     pn.Row(from_selection, save_button),
                     title="Make or edit a saved view", collapsed=False, sizing_mode="stretch_width", css_classes=["report-editor"])
    return pn.Column(pn.pane.Markdown("### Saved views"), pn.Row(chooser, open_button, delete_button), message, editor, shown,
                     sizing_mode="stretch_width")
