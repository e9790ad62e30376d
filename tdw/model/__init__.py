"""Models: the hooked reference transformer, its components, and the fast training forward."""

from tdw.model.fast_forward import (
    equals_position_logits,
    equals_residual_grid,
    folded_readout_logits,
    in_grid_order,
    readout_logits,
    token_tables,
    without_zero_biases,
)
from tdw.model.transformer import HookedGrokkingTransformer, TransformerShape

__all__ = ["HookedGrokkingTransformer", "TransformerShape", "equals_position_logits", "equals_residual_grid",
           "folded_readout_logits", "in_grid_order", "readout_logits", "token_tables", "without_zero_biases"]
