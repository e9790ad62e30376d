-- attention_freq: one row per Fourier power of each head's attention pattern over the input grid, per frequency.
-- grain: variant, epoch, head, frequency
-- Question: Which frequencies does each head's attention follow?
-- Columns: variant, epoch, head, frequency, value
-- Staged one-to-one from src_attention_freq, which `tdw index` fills from the analyzer's Parquet.
create or replace view attention_freq as
select variant, epoch, head, frequency, value from src_attention_freq;
