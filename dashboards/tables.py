"""How numbers read in the dashboard's tables (Tabulator).

Tabulator's default float format keeps a fixed number of decimals, so a final train loss of
9.9e-8 read "0.0" in the variant summary. Every float column gets Bokeh's scientific formatter
instead: plain decimals between 1e-3 and 1e6, exponent notation outside, four significant digits.
"""

from __future__ import annotations

import pandas as pd
from bokeh.models.widgets.tables import ScientificFormatter


def float_formatters(frame: pd.DataFrame) -> dict[str, ScientificFormatter]:
    """A formatter per float column of `frame`, for `pn.widgets.Tabulator(formatters=...)`."""
    return {name: ScientificFormatter(precision=4, power_limit_low=-3, power_limit_high=6, nan_format="",
                                     text_align="right")
            for name, dtype in frame.dtypes.items() if pd.api.types.is_float_dtype(dtype)}
