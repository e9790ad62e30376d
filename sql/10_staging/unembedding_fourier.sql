-- unembedding_fourier: one row per norm of W_U's cos or sin component at each frequency.
-- grain: variant, epoch, frequency, component
-- Question: Which frequencies does the unembedding read out?
-- Columns: variant, epoch, frequency, component, value
-- Staged one-to-one from src_unembedding_fourier, which `tdw index` fills from the analyzer's Parquet.
create or replace view unembedding_fourier as
select variant, epoch, frequency, component, value from src_unembedding_fourier;
