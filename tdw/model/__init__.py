"""Models: the hooked reference transformer, its components, the fast training forward and its
loss, and the `mlp` family's hooked MLP.

The hooked models themselves, `tdw.model.transformer.HookedGrokkingTransformer` and
`tdw.model.mlp.HookedModularMLP`, are imported where a model is built: they bring TransformerLens
(1.6 s to import), which `tdw index` never needs."""

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
