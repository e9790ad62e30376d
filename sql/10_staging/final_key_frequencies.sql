-- final_key_frequencies: one row per a key frequency of the final checkpoint (tdw/analysis/key_frequencies.py: the embedding's norm gap, or the specialized neurons' clusters), the rule that found it and its embedding norm.
-- grain: variant, epoch, frequency
-- Question: Which frequencies does the trained model use? (read through the key_frequencies mart)
-- Columns: variant, epoch, frequency, rule ('embedding_gap' or 'neuron_clusters'; NULL in files of
--          key_frequencies v2, written before the rule was recorded), value
-- Staged one-to-one from src_final_key_frequencies, which `tdw index` fills from the analyzer's Parquet.
create or replace view final_key_frequencies as
select variant, epoch, frequency, rule, value from src_final_key_frequencies;
