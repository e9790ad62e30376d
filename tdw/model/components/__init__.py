"""Transformer components, one per file, with TransformerLens parameter and hook names."""

from tdw.model.components.attention import Attention
from tdw.model.components.embed import Embed, PosEmbed
from tdw.model.components.mlp import MLP
from tdw.model.components.unembed import Unembed

__all__ = ["MLP", "Attention", "Embed", "PosEmbed", "Unembed"]
