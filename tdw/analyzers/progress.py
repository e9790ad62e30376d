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

import math

import polars as pl
import torch
import torch.nn.functional as F

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.fourier import component_norms, gini
from tdw.analyzers import register


def key_frequency_directions(p: int, keys: list[int]) -> torch.Tensor:
    """Orthonormal directions [2 * len(keys), p, p, p] over (a, b, c)."""
    a, b, c = torch.meshgrid(torch.arange(p), torch.arange(p), torch.arange(p), indexing="ij")
    angle = (a + b - c).double() * 2 * math.pi / p
    directions = []
    for k in keys:
        for fn in (torch.cos, torch.sin):
            d = fn(k * angle)
            directions.append(d / d.norm())
    return torch.stack(directions) if directions else torch.zeros(0, p, p, p, dtype=torch.float64)


def project(logits: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    if directions.shape[0] == 0:
        return torch.zeros_like(logits)
    coefficients = torch.einsum("kabc,abc->k", directions, logits)
    return torch.einsum("k,kabc->abc", coefficients, directions)


@register
class Progress(Analyzer):
    name = "progress"
    version = 2  # v2: key frequencies by the largest-gap rule, always from the final checkpoint
    description = "restricted and excluded loss on the key frequencies, Gini of Fourier norms, weight norm"
    requires = "activations"
    depends_on = "final_checkpoint"
    hooks = ()
    tables = {"progress": TableSpec({"measure": pl.Utf8})}

    def analyze(self, ctx):
        p = ctx.p
        keys = ctx.key_frequencies
        logits = ctx.answer_logits().double().reshape(p, p, p)  # [a, b, c]
        labels = ctx.data.labels.reshape(p, p)
        kept = project(logits, key_frequency_directions(p, keys))
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
