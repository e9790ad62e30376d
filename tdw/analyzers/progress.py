"""progress: Nanda et al.'s progress measures (2023, section 5).

  restricted_loss   loss over all pairs when the logits keep only the key-frequency terms
                    cos(w_k(a+b-c)) and sin(w_k(a+b-c)) (w_k = 2 pi k / p)
  excluded_loss     train loss when exactly those terms are removed from the logits
  gini_embedding    Gini coefficient of W_E's Fourier component norms
  gini_neuron_logit Gini coefficient of the Fourier norms of the neuron-logit map W_out @ W_U
  weight_norm       total sum of squared weights
Key frequencies come from the run's last checkpoint, by the one rule of
tdw.analysis.key_frequencies (the warehouse's `key_frequencies` view reads the same rule's
output), so every epoch's measures are computed with the same, final key frequencies and are
recomputed when the final checkpoint changes.
"""

from __future__ import annotations

import math

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.fourier import component_norms, gini
from tdw.analyzers import register
from tdw.deferred_imports import F, torch


def key_frequency_projection(logits: torch.Tensor, keys: list[int]) -> torch.Tensor:
    """The logits [a, b, c] projected onto the orthonormal directions cos(w_k(a+b-c)) and
    sin(w_k(a+b-c)) of the key frequencies.

    Why not project onto the directions themselves: each is a function of s = (a+b-c) mod p
    alone, so every inner product with them is one with the logits summed over each s (p sums),
    and the projection is again a function of s. That is p^3 additions and one gather instead
    of building 2 x keys float64 cubes (115 MB and 80 ms at p=113 for five keys) and two
    einsums over them; equal to the explicit projection to float64 rounding (tested).
    """
    p = logits.shape[-1]
    if not keys:
        return torch.zeros_like(logits)
    x = torch.arange(p)
    residue = ((x[:, None, None] + x[None, :, None] - x[None, None, :]) % p).flatten()  # s of every (a, b, c)
    sums = torch.zeros(p, dtype=logits.dtype).index_add_(0, residue, logits.flatten())  # over each s
    angle = torch.arange(p, dtype=torch.float64) * 2 * math.pi / p
    waves = torch.stack([fn(k * angle) for k in keys for fn in (torch.cos, torch.sin)]).to(logits.dtype)  # [2 keys, s]
    waves = waves / (waves.norm(dim=1, keepdim=True) * p)  # unit norm over the cube: each s occurs p^2 times
    kept_by_residue = (waves @ sums) @ waves  # [s]
    return kept_by_residue[residue].reshape(logits.shape)


@register
class Progress(Analyzer):
    name = "progress"
    # v2: key frequencies by the largest-gap rule, always from the final checkpoint; v3: by the
    # neurons where the embedding has no gap; v4: at most half the frequencies by the neurons too
    version = 4
    description = "restricted and excluded loss on the key frequencies, Gini of Fourier norms, weight norm"
    requires = "activations"
    depends_on = "key_frequencies"
    hooks = ()
    tables = {"progress": TableSpec({"measure": pl.Utf8})}

    def analyze(self, ctx):
        p = ctx.p
        keys = ctx.key_frequencies
        logits = ctx.answer_logits().double().reshape(p, p, p)  # [a, b, c]
        labels = ctx.data.labels.reshape(p, p)
        kept = key_frequency_projection(logits, keys)
        restricted = F.cross_entropy(kept.reshape(p * p, p), labels.flatten())
        excluded_logits = (logits - kept).reshape(p * p, p)[ctx.data.train_idx]
        excluded = F.cross_entropy(excluded_logits, ctx.data.labels[ctx.data.train_idx])
        W_E = ctx.family.embedding(ctx.weights, p)
        neuron_logit = ctx.family.neuron_logits(ctx.weights)  # [neuron, c]
        rows = [
            ("restricted_loss", float(restricted)),
            ("excluded_loss", float(excluded)),
            ("gini_embedding", gini(component_norms(W_E.double())[1:])),
            ("gini_neuron_logit", gini(component_norms(neuron_logit.T.double())[1:])),
            ("weight_norm", float(sum(w.double().pow(2).sum() for w in ctx.weights.values()))),
            ("key_frequency_count", float(len(keys))),
        ]
        return {"progress": pl.DataFrame(rows, schema=["measure", "value"], orient="row")}
