"""Pages: layouts that compose views. Each module exposes `build(store, state) -> pn.viewable.Viewable`."""

PAGES = ("Variant", "Compare", "SQL", "Reports", "Train", "Analyze")
