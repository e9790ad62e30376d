"""An animated GIF of an over-epochs view (`tdw export figure VIEW --out x.gif`), against the
named baseline: a HoloMap of the view drawn at every frame's epoch, saved by HoloViews (how
export drew every GIF before session 27, and still draws those of at-epoch views).

Both write the same frames: the view's curves with a dashed line at each checkpoint. The
baseline re-ranges each frame against all the others, so its cost grows with the square of the
frames; the export draws the figure once and moves the line.

    python benchmarks/export_gif.py --db /tmp/p113/warehouse/tdw.duckdb --variant p113_seed999 --frames 30,60
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.export import _holoviews, animate_epoch_line, render_view
from dashboards.store import WarehouseStore


def baseline_gif(store: WarehouseStore, view: str, variant: str, epochs: list[int], target: Path) -> None:
    hv = _holoviews()
    frames = {e: render_view(store, view, variant, e, 0, 0, "matplotlib")[1] for e in epochs}
    previous = hv.Store.current_backend
    hv.Store.set_current_backend("matplotlib")
    try:
        hv.save(hv.HoloMap(frames, kdims="epoch"), target, backend="matplotlib", fmt="gif", fps=4)
    finally:
        hv.Store.set_current_backend(previous)


def export_gif(store: WarehouseStore, view: str, variant: str, epochs: list[int], target: Path) -> None:
    _, element = render_view(store, view, variant, epochs[0], 0, 0, "matplotlib", epoch_line=False)
    animate_epoch_line(element, epochs, 4, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="warehouse/tdw.duckdb")
    parser.add_argument("--variant", help="default: the warehouse's first")
    parser.add_argument("--view", default="frequency_norms", help="an over-epochs view")
    parser.add_argument("--frames", default="15,30", help="comma-separated frame counts (checkpoints evenly spaced)")
    args = parser.parse_args()

    _holoviews()
    store = WarehouseStore(args.db)
    variant = args.variant or store.variant_names()[0]
    available = store.checkpoint_epochs(variant)
    print(f"{args.view} of {variant} ({len(available)} checkpoints), one run each, seconds:")
    print(f"{'frames':>6} {'baseline (HoloMap)':>19} {'export':>8} {'speed-up':>9}")
    with tempfile.TemporaryDirectory(prefix="tdw-export-gif-") as tmp:
        for count in (int(n) for n in args.frames.split(",")):
            epochs = available[:: max(1, len(available) // count)][:count]
            timings = []
            for draw in (baseline_gif, export_gif):
                started = time.perf_counter()
                draw(store, args.view, variant, epochs, Path(tmp) / f"{draw.__name__}.gif")
                timings.append(time.perf_counter() - started)
            print(f"{len(epochs):>6} {timings[0]:>19.1f} {timings[1]:>8.1f} {timings[0] / timings[1]:>8.1f}x")
    store.close()


if __name__ == "__main__":
    main()
