"""Models: the hooked reference transformer, its components, the fast training forward and its loss."""

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
from tdw.model.transformer import HookedGrokkingTransformer, TransformerShape

__all__ = ["HookedGrokkingTransformer", "PairBag", "PairBlocks", "TransformerShape", "equals_position_logits",
           "equals_residual_grid", "equals_residual_pairs", "folded_readout_logits", "pair_bag", "pair_blocks",
           "readout_logits", "token_tables", "without_zero_biases"]
