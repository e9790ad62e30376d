"""answer_frequencies: how much each key frequency contributes to a traced input's correct logit.

For an input (a, b) the model's logits over the answers c, L(c), split exactly into Fourier terms
over c: L(c) = F_0 / p + (2 / p) sum_k Re(F_k e^{2 pi i k c / p}) (p odd). Frequency k's term at
the correct answer c* = (a + b) mod p is its contribution to the correct logit; it equals the
coefficient of cos(w_k (a + b - c)) in L, which is what the Fourier algorithm of Nanda et al. puts
there (a model computing sum_k A_k cos(w_k (a + b - c)) has contribution A_k from frequency k and
nothing else). Rows: one per key frequency (the run's final key frequencies), `other` (every other
frequency, summed) and `constant` (F_0 / p, the same for every answer, so it never changes which
answer wins); they add up to the correct logit.

Any family: it reads only the answer logits. Computed on the run's traced probe.
"""

from __future__ import annotations

import math

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register
from tdw.deferred_imports import torch


def frequency_contributions(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[pair, p // 2 + 1]: column 0 the constant term, column k frequency k's term at the label."""
    p = logits.shape[1]
    if logits.shape[0] == 0:  # MKL's FFT refuses an empty batch
        return torch.zeros(0, p // 2 + 1, dtype=torch.float64, device=logits.device)
    spectrum = torch.fft.rfft(logits.double(), dim=1)  # F_k = sum_c L(c) e^{-2 pi i k c / p}
    k = torch.arange(spectrum.shape[1], device=logits.device, dtype=torch.float64)
    phase = torch.exp(1j * 2 * math.pi * k[None, :] * labels[:, None].double() / p)
    terms = (2.0 / p) * (spectrum * phase).real
    terms[:, 0] = spectrum[:, 0].real / p
    if p % 2 == 0:  # the Nyquist term appears once, not twice
        terms[:, -1] /= 2
    return terms


@register
class AnswerFrequencies(Analyzer):
    name = "answer_frequencies"
    description = "per traced input: each key frequency's contribution to the correct logit, the rest, the constant"
    version = 3  # v2: the key frequencies by the neurons where the embedding has no norm gap; v3: at most half the frequencies
    requires = "activations"  # the answer logits of the shared forward pass
    depends_on = "key_frequencies"
    traced = True
    tables = {"answer_frequencies": TableSpec({"a": pl.Int16, "b": pl.Int16, "component": pl.Utf8,
                                               "frequency": pl.Int16})}

    def analyze(self, ctx):
        p, rows = ctx.p, ctx.traced_rows()
        terms = frequency_contributions(ctx.at_traced(ctx.answer_logits()), ctx.data.labels[rows])
        keys = [k for k in ctx.key_frequencies if 0 < k < terms.shape[1]]
        other = terms[:, 1:].sum(dim=1) - terms[:, keys].sum(dim=1)
        values = torch.cat((terms[:, keys], other[:, None], terms[:, :1]), dim=1).float()  # [pair, component]
        components = ["key"] * len(keys) + ["other", "constant"]
        frequencies = [*keys, 0, 0]
        n, width = values.shape
        pair = rows.cpu().repeat_interleave(width)
        return {"answer_frequencies": pl.DataFrame({
            "a": (pair // p).numpy(),
            "b": (pair % p).numpy(),
            "component": components * n,
            "frequency": frequencies * n,
            "value": values.flatten().cpu().numpy(),
        })}
