"""Figures for papers, without a browser: any dashboard view as PNG, SVG or PDF (HoloViews'
matplotlib backend), an animated GIF over epochs, or standalone interactive HTML (Bokeh, with
its JavaScript inlined so the file works offline). The same view functions draw the dashboard,
so an exported figure is the plot the researcher was looking at.

    import dashboards.export
    dashboards.export.figure("neuron_heatmap", "p53_seed999", epoch=1800, neuron=7, out="n7.png")

In a notebook, `element` gives the view itself, to display inline or to restyle and overlay:

    import holoviews as hv; hv.extension("bokeh")
    dashboards.export.element("loss_curves", "p53_seed999") * hv.VLine(1200)
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

from tdw import atomic
from tdw.errors import TdwError
from tdw.warehouse.export import refuse_overwriting_inputs

FORMATS = ("png", "svg", "pdf", "gif", "html")
backend_lock = threading.Lock()


def _holoviews():
    import holoviews as hv
    import holoviews.plotting.bokeh
    import holoviews.plotting.mpl

    return hv


MATPLOTLIB_SIZE = {"fig_inches": (7, 4.5), "aspect": "auto"}


def checkpoint_epoch(epochs: list[int], variant: str, epoch: int | None) -> int:
    """`epoch` if the variant has a checkpoint there (of `epochs`, its checkpoints), the last one
    when None; otherwise one line naming the nearest."""
    if epoch is None:
        return epochs[-1] if epochs else 0
    if epochs and epoch not in epochs:
        raise TdwError(f"--epoch {epoch}: {variant} has no checkpoint there (nearest: "
                       f"{min(epochs, key=lambda e: abs(e - epoch))})")
    return epoch


def render_view(store, name: str, variant: str, epoch: int | None, neuron: int, head: int, backend: str,
                pair: str = "0+0", epoch_line: bool = True, log_epochs: bool = False, pinned: tuple[str, ...] = ()):
    """The view's element for these selections (`pinned`: inputs drawn beside `pair` where the view
    shows pinned ones; `pair` may list them too, "4+29,17+3", as `tdw export figure --pair` takes
    them), options set for `backend`. In matplotlib an
    over-epochs view carries a dashed line at the epoch, unless `epoch_line` is False (a GIF
    draws its own and moves it). With `log_epochs` an over-epochs view is drawn against log
    epochs, as the dashboard's toggle draws it (other views are as they are)."""
    from dashboards.log_epochs import FIRST_EPOCH, on_log_epochs
    from dashboards.views import get_view
    from dashboards.views._common import no_data_reason

    hv = _holoviews()
    view = get_view(name)
    if variant not in store.variant_names():
        raise TdwError(f"--variant {variant}: not in the warehouse; known: {', '.join(store.variant_names())}")
    epoch = checkpoint_epoch(store.checkpoint_epochs(variant), variant, epoch)
    counts = store.counts(variant)
    for what, value, bound in (("neuron", neuron, counts["neurons"]), ("head", head, counts["heads"])):
        if what in view.needs and not 0 <= value < bound:
            raise TdwError(f"--{what} {value}: {variant} has {bound} {what}s (0..{bound - 1})")
    pair, *listed = pair.split(",")
    pinned = (*listed, *pinned)
    if "pair" in view.needs:
        from dashboards.state import parse_pair

        if pinned and "pinned" not in view.needs:
            raise TdwError(f"--pair {','.join((pair, *pinned))}: view {name} draws one input (several: pair_trace)")
        p = int(store.variant(variant)["p"])
        for given in (pair, *pinned):
            a, b = parse_pair(given)
            if f"{a}+{b}" != given.replace(" ", "") or not (a < p and b < p):
                raise TdwError(f"--pair {given}: an input a+b of {variant}, with a and b in 0..{p - 1}")
    needs = {"epoch": epoch, "neuron": neuron, "head": head, "pair": pair.replace(" ", ""),
             "pinned": [p.replace(" ", "") for p in pinned]}
    previous = hv.Store.current_backend
    hv.Store.set_current_backend(backend if view.backend == "bokeh" else view.backend)
    try:
        element = view.element(store, variant, **{k: needs[k] for k in view.needs})
        log_epochs = log_epochs and view.over_epochs
        if log_epochs:
            element = on_log_epochs(element)
        drawn = no_data_reason(element) is None  # a line at the epoch across "no data" marks nothing
        if view.over_epochs and backend == "matplotlib" and epoch_line and drawn and not (log_epochs and epoch < FIRST_EPOCH):
            # `*` builds a new overlay, which has none of the view's own plot options (its title,
            # axis labels, ticks, legend): carried over, or the figure came out untitled
            carried = hv.Store.lookup_options("matplotlib", element, "plot").kwargs if isinstance(element, hv.Overlay) else {}
            element = (element * hv.VLine(epoch).opts(color="black", linestyle="--")).opts(**carried)
        if backend == "matplotlib" and view.backend == "bokeh":
            own = hv.Store.lookup_options("matplotlib", element, "plot").kwargs  # a view may size its own figure
            element = element.opts(**{k: v for k, v in MATPLOTLIB_SIZE.items() if k not in own})
            if isinstance(element, hv.Overlay) and "aspect" not in own:
                # each layer too: an overlay's colour bar (the trajectory's epochs) was placed from the
                # axes before the overlay's aspect reshaped them, across the plot's right edge
                for layer in element:
                    layer.opts(aspect=MATPLOTLIB_SIZE["aspect"])
    finally:
        hv.Store.set_current_backend(previous)
    return view, element


def check_log_epochs(view: str, log_epochs: bool) -> None:
    """A log epoch axis is asked of a view drawn over epochs, or it is one line."""
    from dashboards.views import get_view

    if log_epochs and not get_view(view).over_epochs:
        raise TdwError(f"--log-epochs: view {view} is not drawn over epochs (tdw export figure --list says which are)")


def element(view: str, variant: str, epoch: int | None = None, neuron: int = 0, head: int = 0,
            pair: str = "0+0", db: str | Path = "warehouse/tdw.duckdb", backend: str = "bokeh", log_epochs: bool = False):
    """The HoloViews element a dashboard view draws for these selections (the last checkpoint when
    `epoch` is None), with its options for `backend` ("bokeh" or "matplotlib"), on a log epoch
    axis with `log_epochs`: the notebook's way to look at a view, prototype a new one beside it,
    or restyle one for a paper. Bad selections raise TdwError with the same one line as
    `tdw export figure`."""
    from dashboards.store import WarehouseStore

    if backend not in ("bokeh", "matplotlib"):
        raise TdwError(f"backend {backend!r}: expected bokeh or matplotlib")
    check_log_epochs(view, log_epochs)
    store = WarehouseStore(db)
    try:
        with backend_lock:
            return render_view(store, view, variant, epoch, neuron, head, backend, pair, log_epochs=log_epochs)[1]
    finally:
        store.close()


def figure(view: str, variant: str, out: str | Path, epoch: int | None = None, neuron: int = 0, head: int = 0,
           db: str | Path = "warehouse/tdw.duckdb", fps: int = 4, epochs: list[int] | None = None,
           pair: str = "0+0", log_epochs: bool = False) -> Path:
    """Write one view to `out`; the format comes from the suffix (png, svg, pdf, gif, html).
    A GIF animates the view over `epochs` (default: every checkpoint, at most 60 frames).
    `log_epochs`: an over-epochs view against log epochs, as the dashboard's toggle draws it."""
    from dashboards.store import WarehouseStore

    out = Path(out)
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise TdwError(f"--out {out}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fps < 1:
        raise TdwError(f"--fps {fps}: must be >= 1")
    check_log_epochs(view, log_epochs)
    refuse_overwriting_inputs(out, db)
    store = WarehouseStore(db)
    try:
        with backend_lock:
            data = render_bytes(store, view, variant, epoch, neuron, head, fmt, fps, epochs, pair, log_epochs,
                                refuse_empty=True)
    finally:
        store.close()
    atomic.write_bytes(out, data)
    return out


def render_bytes(store, name, variant, epoch, neuron, head, fmt, fps, epochs, pair: str = "0+0",
                 log_epochs: bool = False, refuse_empty: bool = False) -> bytes:
    """The figure file's bytes. `refuse_empty` (a figure written to a file, for a paper): a view
    with nothing to draw for these selections is one line saying why, not a figure of that line
    (the dashboard's export button saves what the page shows, "no data" included)."""
    import tempfile

    from dashboards.views._common import no_data_reason

    def checked(element):
        why = no_data_reason(element) if refuse_empty else None
        if why is not None:
            raise TdwError(f"{name}: nothing to draw for {variant}: {why}")
        return element

    hv = _holoviews()
    with tempfile.TemporaryDirectory(prefix="tdw-export-") as tmp:
        target = Path(tmp) / f"figure.{fmt}"
        if fmt == "html":
            view, element = render_view(store, name, variant, epoch, neuron, head, "bokeh", pair, log_epochs=log_epochs)
            checked(element)
            if view.backend != "bokeh":
                raise TdwError(f"view {name}: drawn by matplotlib only; export it as png, svg, pdf or gif")
            # the page's size, not the dashboard's frame for a legend beside it (`with_legend`)
            sized = element.opts(width=700, height=420, frame_width=None, frame_height=None)
            hv.save(sized, target, backend="bokeh", resources="inline", title=f"{name} {variant}")
        elif fmt == "gif":
            from dashboards.views import get_view

            available = store.checkpoint_epochs(variant)
            chosen = [checkpoint_epoch(available, variant, e) for e in epochs or available[:: max(1, len(available) // 60)]]
            if not chosen:
                raise TdwError(f"{variant}: no checkpoints to animate")
            if get_view(name).over_epochs:
                _, element = render_view(store, name, variant, chosen[0], neuron, head, "matplotlib", pair, epoch_line=False,
                                         log_epochs=log_epochs)
                animate_epoch_line(checked(element), chosen, fps, target)
            else:
                frames = {e: render_view(store, name, variant, e, neuron, head, "matplotlib", pair)[1] for e in chosen}
                if all(no_data_reason(frame) is not None for frame in frames.values()):
                    checked(frames[chosen[-1]])  # a frame without data among others is drawn as it is, "no data"
                previous = hv.Store.current_backend
                hv.Store.set_current_backend("matplotlib")
                try:
                    hv.save(hv.HoloMap(frames, kdims="epoch"), target, backend="matplotlib", fmt="gif", fps=fps)
                finally:
                    hv.Store.set_current_backend(previous)
        else:
            _, element = render_view(store, name, variant, epoch, neuron, head, "matplotlib", pair, log_epochs=log_epochs)
            hv.save(checked(element), target, backend="matplotlib", fmt=fmt)
        return target.read_bytes()


def animate_epoch_line(element, epochs: list[int], fps: int, target: Path) -> None:
    """A GIF of an over-epochs view: the figure drawn once, its dashed epoch line moved to each of
    `epochs`, each frame saved as HoloViews saves a PNG (72 dpi, the legend beside the axes kept
    in the tight bounding box). Every frame of such a view holds the same curves, and a HoloMap of
    them made HoloViews re-range every frame against all the others: the published run's 118
    frames of `frequency_norms` took 3m47s, growing with the square of the frames."""
    import matplotlib.pyplot as plt
    from PIL import Image

    hv = _holoviews()
    figure = hv.render(element, backend="matplotlib")
    dpi = hv.renderer("matplotlib").dpi
    frames = []
    try:
        axes = figure.axes[0]  # an over-epochs view is one set of axes (tested for every view)
        line = axes.axvline(epochs[0], color="black", linestyle="--")
        for epoch in epochs:
            line.set_xdata([epoch, epoch])
            png = io.BytesIO()
            figure.savefig(png, format="png", dpi=dpi, bbox_inches="tight")
            frames.append(Image.open(png).convert("RGB"))
    finally:
        plt.close(figure)
    frames[0].save(target, format="gif", save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
