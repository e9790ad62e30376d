"""Models: the hooked reference transformer, its components, the fast training forward and its loss.

The hooked model itself is `tdw.model.transformer.HookedGrokkingTransformer`, imported where a
model is built: it brings TransformerLens (1.6 s to import), which `tdw index` never needs."""

from tdw.model.fast_forward import (
    PairBag,
    PairBlocks,
    equals_position_logits,
    equals_residual_grid,
    equals_residual_pairs,
    folded_readout_logits,
    pair_bag,
    pair_blocks,
    readout_logits,
    token_tables,
    without_zero_biases,
)
from tdw.model.shape import TransformerShape

__all__ = ["PairBag", "PairBlocks", "TransformerShape", "equals_position_logits",
           "equals_residual_grid", "equals_residual_pairs", "folded_readout_logits", "pair_bag", "pair_blocks",
           "readout_logits", "token_tables", "without_zero_biases"]
