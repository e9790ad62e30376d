-- final_key_frequencies: one row per a key frequency of the final checkpoint (tdw/analysis/key_frequencies.py: the embedding's norm gap, or the specialized neurons' clusters) and its embedding norm.
-- grain: variant, epoch, frequency
-- Question: Which frequencies does the trained model use? (read through the key_frequencies mart)
-- Columns: variant, epoch, frequency, value
-- Staged one-to-one from src_final_key_frequencies, which `tdw index` fills from the analyzer's Parquet.
create or replace view final_key_frequencies as
select variant, epoch, frequency, value from src_final_key_frequencies;
