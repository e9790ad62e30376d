-- neuron_freq: one row per fraction of a neuron's activation variance explained by one frequency.
-- grain: variant, epoch, neuron, frequency
-- Question: Which frequencies does each neuron use?
-- Columns: variant, epoch, neuron, frequency, value
-- Staged one-to-one from src_neuron_freq, which `tdw index` fills from the analyzer's Parquet.
create or replace view neuron_freq as
select variant, epoch, neuron, frequency, value from src_neuron_freq;
