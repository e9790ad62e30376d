-- key_frequencies: the frequencies the final model computes with.
-- grain: variant, frequency
-- One row per (variant, key frequency); a variant with none has no rows.
-- Question: which Fourier frequencies does each trained model use?
-- The rule (tdw/analysis/key_frequencies.py, applied by the `key_frequencies` analyzer to the run's
-- final checkpoint and used by the `progress` analyzer too, so it exists once): sort frequencies by
-- the embedding's Fourier norm; the group above the largest norm ratio (at least 2x) among the top
-- half, and at least a quarter of the largest norm. Where the embedding has no such gap, the
-- frequencies of the final checkpoint's clusters of specialized neurons (neuron_clusters' count),
-- each at least a quarter of the largest, the largest at least 5% of the neurons. Either way at
-- most half of the frequencies (a model using all of them, the mlp family's, has none). On the published
-- p=113 run and the demo the gap gives exactly the neuron clusters' frequencies; at initialization
-- and in runs that have not grokked there are none. The norm is the embedding's either way.
-- Columns: variant, epoch (the final checkpoint), frequency, norm, rank (1 = largest norm),
--          rule (which rule found the variant's keys: 'embedding_gap' or 'neuron_clusters')
create or replace view key_frequencies as
select variant, epoch, frequency, value::double as norm,
       row_number() over (partition by variant order by value desc, frequency) as rank, rule
from final_key_frequencies;
