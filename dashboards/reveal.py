"""A container that tells the server whether it is on screen.

The browser's IntersectionObserver sets `in_view` when any part of the content comes within a
margin of the viewport and clears it when it leaves, so a page can build and refresh only what a
researcher can see (the Variant page's sections, the Compare page's small multiples). Plain ES
module code, no imports: nothing is fetched from the network.
"""

from __future__ import annotations

import panel as pn
import param


class OnScreen(pn.custom.JSComponent):
    """What both containers share: how near the viewport counts, and how long a change must hold."""

    margin = param.Integer(default=0, doc="pixels beyond the viewport that already count as on screen")
    settle = param.Integer(default=150, doc="milliseconds a change must hold before it is reported")


class Reveal(OnScreen):
    object = pn.custom.Child(doc="the content watched")
    in_view = param.Boolean(default=False, doc="the content is within `margin` pixels of the viewport")
    margin = param.Integer(default=150, doc="pixels beyond the viewport that already count as in view")
    min_height = param.Integer(default=60, doc="content shorter than this (not laid out yet) is not in view")
    screen = param.List(default=[], item_type=int,
                        doc="[content width, viewport height] in pixels, reported with `in_view`: how much of it a screen shows")

    # While a page is first laid out every section is briefly a bare header with nothing below it,
    # and all of them would count as in view: the content must have its height, and a change must
    # hold for `settle` ms, before it is reported. A ResizeObserver catches content that grows
    # where it stands (a section opened), which an IntersectionObserver alone does not.
    _esm = """
    export function render({ model }) {
      const box = document.createElement("div");
      box.style.width = "100%";
      box.append(model.get_child("object"));
      let seen = false;
      let timer = null;
      const report = () => {
        timer = null;
        if (seen !== model.in_view) {
          // before in_view, so the server's in_view watcher reads this screen's size
          const screen = [Math.round(box.getBoundingClientRect().width), window.innerHeight];
          if (JSON.stringify(screen) !== JSON.stringify(model.screen)) { model.screen = screen; }
          model.in_view = seen;
        }
      };
      const check = () => {
        const rect = box.getBoundingClientRect();
        seen = rect.height >= model.min_height && rect.bottom >= -model.margin
          && rect.top <= window.innerHeight + model.margin;
        if (timer !== null) { clearTimeout(timer); }
        timer = setTimeout(report, model.settle);
      };
      const intersections = new IntersectionObserver(check, { rootMargin: `${model.margin}px`, threshold: [0, 0.5, 1] });
      const sizes = new ResizeObserver(check);
      intersections.observe(box);
      sizes.observe(box);
      model.on("remove", () => { intersections.disconnect(); sizes.disconnect(); model.in_view = false; });
      return box;
    }
    """


class RevealCells(OnScreen):
    """A wrapping grid of cells that tells the server which of them are on screen, so a page with
    many small plots (the Compare page's small multiples) refreshes only the ones a researcher can
    see. One IntersectionObserver watches every cell; the visible indices settle as in `Reveal`.

    Cells can be appended after the grid is drawn (a screenful first, the rest a moment later).
    Panel then renders the component again with the figures already drawn (their views are kept):
    the previous rendering's observer is disconnected first, or it would report its detached
    cells as off screen. Each rendering counts itself in `renders`, so the server appends only
    after the browser has built the cells it has: a change of the cells that arrived while the
    browser was still building the first ones' views was lost now and then (the browser kept two
    of three cells; about one run in ten of the browser test)."""

    objects = pn.custom.Children(doc="the cells, laid out left to right and wrapped")
    # not `visible`: every Panel component has that (shown or hidden), and a list there fails Bokeh's
    # validation of the model's own `visible`
    on_screen = param.List(default=[], item_type=int, doc="indices of the cells within `margin` pixels of the viewport")
    renders = param.Integer(default=0, doc="how many times the browser has rendered the cells (counted by the browser)")

    _esm = """
    const observers = new WeakMap();  // model -> the observer of its latest rendering

    export function render({ model }) {
      observers.get(model)?.disconnect();
      const grid = document.createElement("div");
      grid.style.display = "flex";
      grid.style.flexWrap = "wrap";
      grid.style.width = "100%";
      const seen = new Set();
      let timer = null;
      const report = () => {
        timer = null;
        const now = [...seen].sort((a, b) => a - b);
        if (JSON.stringify(now) !== JSON.stringify(model.on_screen)) { model.on_screen = now; }
      };
      const observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          const index = Number(entry.target.dataset.index);
          if (entry.isIntersecting) { seen.add(index); } else { seen.delete(index); }
        }
        if (timer !== null) { clearTimeout(timer); }
        timer = setTimeout(report, model.settle);
      }, { rootMargin: `${model.margin}px` });
      observers.set(model, observer);
      model.get_child("objects").forEach((child, index) => {
        const cell = document.createElement("div");
        cell.dataset.index = String(index);
        cell.append(child);
        grid.append(cell);
        observer.observe(cell);
      });
      model.on("remove", () => { observer.disconnect(); model.on_screen = []; });
      model.renders = model.renders + 1;  // after the cells' views are built: the server may send more
      return grid;
    }
    """
