"""neuron_freq: per neuron, the fraction of its activation variance over the grid explained by
each frequency's 2D Fourier terms (REQ_006), and each neuron's best frequency."""

from __future__ import annotations

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.fourier import fractions_frame, frequency_fractions_2d
from tdw.analyzers import register
from tdw.deferred_imports import torch


@register
class NeuronFreq(Analyzer):
    name = "neuron_freq"
    version = 2  # v2: from the float32 maps' FFT (v1: float64 basis products), equal to 1e-6
    description = "fraction of each neuron's variance explained by each frequency; best frequency per neuron"
    requires = "activations"
    hooks = ("neurons",)
    tables = {
        "neuron_freq": TableSpec({"neuron": pl.Int16, "frequency": pl.Int16}),
        "neuron_best_freq": TableSpec({"neuron": pl.Int16, "frequency": pl.Int16}),
    }

    def analyze(self, ctx):
        fractions = frequency_fractions_2d(ctx.neuron_maps())  # [neuron, freq], float32: 1e-6 relative
        best_fraction, best = fractions.max(dim=1)
        return {
            "neuron_freq": fractions_frame(fractions, "neuron"),
            "neuron_best_freq": pl.DataFrame(
                {"neuron": torch.arange(fractions.shape[0]).numpy(), "frequency": (best + 1).numpy(), "value": best_fraction.numpy()}
            ),
        }
