"""key_frequencies: the frequencies the final model uses (the rule in tdw.analysis.key_frequencies:
the embedding's largest norm gap, or where it has none the clusters of specialized neurons), with
their embedding norms and the rule that found them (`embedding_gap` or `neuron_clusters`), from the
run's last checkpoint. Recomputed when that checkpoint changes."""

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.key_frequencies import frequency_norms
from tdw.analyzers import register


@register
class KeyFrequencies(Analyzer):
    name = "key_frequencies"
    description = "key frequencies of the final checkpoint (its embedding's largest norm gap, else its neurons' clusters) and their norms"
    # v2: where the embedding has no norm gap, the specialized neurons' clusters decide;
    # v3: `rule` says which of the two found them
    version = 3
    requires = "run"
    depends_on = "final_checkpoint"
    tables = {"final_key_frequencies": TableSpec({"frequency": pl.Int16, "rule": pl.Utf8})}

    def analyze_run(self, ctx):
        final = ctx.epochs[-1]
        keys, rule = ctx.found_key_frequencies
        norms = frequency_norms(ctx.embedding(final))
        return {"final_key_frequencies": pl.DataFrame(
            {"epoch": [final] * len(keys), "frequency": keys, "rule": [rule] * len(keys), "value": [norms[k] for k in keys]},
            schema={"epoch": pl.Int32, "frequency": pl.Int16, "rule": pl.Utf8, "value": pl.Float64},
        )}
