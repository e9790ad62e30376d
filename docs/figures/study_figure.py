"""Draw the README's cross-variant figure from a warehouse, with the Compare page's own plot
functions on HoloViews' matplotlib backend (no browser): each variant's PC2/PC3 path in a shared
trajectory basis, beside the test loss aligned at each variant's turn.

Usage: python docs/figures/study_figure.py --db warehouse/tdw.duckdb --basis p53_seeds --out docs/figures/study.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dashboards.comparisons import overlay, trajectories
from dashboards.export import _holoviews
from dashboards.store import WarehouseStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="warehouse/tdw.duckdb")
    parser.add_argument("--basis", required=True)
    parser.add_argument("--out", default="docs/figures/study.png")
    args = parser.parse_args()
    hv = _holoviews()
    hv.Store.set_current_backend("matplotlib")
    store = WarehouseStore(args.db)
    variants = store.variant_names()
    size = {"aspect": 1.0, "fig_size": 260}
    # the views' legends sit outside their frames, on the right: room between the panels for them
    layout = (trajectories(store, variants, args.basis).opts(**size)
              + overlay(store, variants, "test loss", align_at_turn=True).opts(**size)).cols(2).opts(hspace=0.9, sublabel_format="")
    hv.save(layout, args.out, fmt="png", dpi=110)
    print(f"wrote {args.out} ({', '.join(variants)})")


if __name__ == "__main__":
    main()
