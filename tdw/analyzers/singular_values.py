"""singular_values: the raw singular-value spectrum of every weight matrix.

Matrices in short form: W_E, W_pos, W_Q, W_K, W_V, W_O (stacked over heads, head = -1, and per
head), W_in, W_out, W_U. Participation ratio and spectral gap are computed from these in SQL.
"""

import polars as pl
import torch

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register

ALL_HEADS = -1


def weight_matrices(weights: dict[str, torch.Tensor]) -> list[tuple[str, int, torch.Tensor]]:
    attn = "blocks.0.attn."
    out = [("W_E", ALL_HEADS, weights["embed.W_E"]), ("W_pos", ALL_HEADS, weights["pos_embed.W_pos"])]
    for name in ("W_Q", "W_K", "W_V"):
        w = weights[attn + name]  # [head, d_model, d_head]
        out.append((name, ALL_HEADS, w.permute(1, 0, 2).reshape(w.shape[1], -1)))
        out.extend((name, h, w[h]) for h in range(w.shape[0]))
    w_o = weights[attn + "W_O"]  # [head, d_head, d_model]
    out.append(("W_O", ALL_HEADS, w_o.reshape(-1, w_o.shape[-1])))
    out.extend(("W_O", h, w_o[h]) for h in range(w_o.shape[0]))
    out += [
        ("W_in", ALL_HEADS, weights["blocks.0.mlp.W_in"]),
        ("W_out", ALL_HEADS, weights["blocks.0.mlp.W_out"]),
        ("W_U", ALL_HEADS, weights["unembed.W_U"]),
    ]
    return out


@register
class SingularValues(Analyzer):
    name = "singular_values"
    description = "singular values of every weight matrix (and per head for attention)"
    requires = "weights"
    tables = {"singular_values": TableSpec({"matrix": pl.Utf8, "head": pl.Int8, "index": pl.Int16})}

    def analyze(self, ctx):
        frames = []
        for matrix, head, w in weight_matrices(ctx.weights):
            s = torch.linalg.svdvals(w.double()).float()
            frames.append(pl.DataFrame({"matrix": matrix, "head": head, "index": torch.arange(len(s)).numpy(), "value": s.numpy()}))
        return {"singular_values": pl.concat(frames)}
