"""The tdw dashboard: state (what is selected), store (SQL over the warehouse), views (HoloViews
elements from query results, one file each, registered by name) and pages (layout)."""
