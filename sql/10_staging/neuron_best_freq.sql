-- neuron_best_freq: one row per a neuron's best frequency and the fraction of its variance it explains.
-- grain: variant, epoch, neuron
-- Question: Which frequency does each neuron specialize in?
-- Columns: variant, epoch, neuron, frequency, value
-- Staged one-to-one from src_neuron_best_freq, which `tdw index` fills from the analyzer's Parquet.
create or replace view neuron_best_freq as
select variant, epoch, neuron, frequency, value from src_neuron_best_freq;
