"""progress: Nanda et al.'s progress measures (2023, section 5).

  restricted_loss   loss over all pairs when the logits keep only the key-frequency terms
                    cos(w_k(a+b-c)) and sin(w_k(a+b-c)) (w_k = 2 pi k / p)
  excluded_loss     train loss when exactly those terms are removed from the logits
  gini_embedding    Gini coefficient of W_E's Fourier component norms
  gini_neuron_logit Gini coefficient of the Fourier norms of the neuron-logit map W_out @ W_U
  weight_norm       total sum of squared weights
Key frequencies come from the run's last checkpoint (see `key_frequencies`).
"""

import math

import polars as pl
import torch
import torch.nn.functional as F

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.fourier import component_norms, fourier_basis, gini
from tdw.analyzers import register

MAX_KEY_FREQUENCIES = 8


def key_frequencies(W_E: torch.Tensor, p: int) -> list[int]:
    """Frequencies whose embedding norm^2 (cos^2 + sin^2) exceeds 3x the median: the few the
    trained model uses stand far above the rest. The same rule is the `key_frequencies` view."""
    norms = component_norms(W_E[:p].double()).pow(2)
    _, labels = fourier_basis(p)
    per_freq: dict[int, float] = {}
    for (k, _), n in zip(labels, norms.tolist()):
        if k > 0:
            per_freq[k] = per_freq.get(k, 0.0) + n
    median = torch.tensor(list(per_freq.values())).median().item()
    chosen = sorted((k for k, v in per_freq.items() if v > 3 * median), key=lambda k: -per_freq[k])
    return sorted(chosen[:MAX_KEY_FREQUENCIES])


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
    description = "restricted and excluded loss on the key frequencies, Gini of Fourier norms, weight norm"
    requires = "activations"
    hooks = ()
    tables = {"progress": TableSpec({"measure": pl.Utf8})}

    def analyze(self, ctx):
        p = ctx.p
        keys = key_frequencies(ctx.final_weights["embed.W_E"], p)
        logits = ctx.logits[:, -1].double().reshape(p, p, p)  # [a, b, c]
        labels = ctx.data.labels.reshape(p, p)
        kept = project(logits, key_frequency_directions(p, keys))
        restricted = F.cross_entropy(kept.reshape(p * p, p), labels.flatten())
        excluded_logits = (logits - kept).reshape(p * p, p)[ctx.data.train_idx]
        excluded = F.cross_entropy(excluded_logits, ctx.data.labels[ctx.data.train_idx])
        W_E, W_U = ctx.weights["embed.W_E"][:p], ctx.weights["unembed.W_U"]
        neuron_logit = ctx.weights["blocks.0.mlp.W_out"] @ W_U  # [neuron, c]
        rows = [
            ("restricted_loss", float(restricted)),
            ("excluded_loss", float(excluded)),
            ("gini_embedding", gini(component_norms(W_E.double())[1:])),
            ("gini_neuron_logit", gini(component_norms(neuron_logit.T.double())[1:])),
            ("weight_norm", float(sum(w.double().pow(2).sum() for w in ctx.weights.values()))),
            ("key_frequency_count", float(len(keys))),
        ]
        return {"progress": pl.DataFrame(rows, schema=["measure", "value"], orient="row")}
