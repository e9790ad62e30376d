-- embedding_fourier: one row per norm of W_E's cos or sin component at each frequency.
-- grain: variant, epoch, frequency, component
-- Question: Which frequencies does the embedding carry?
-- Columns: variant, epoch, frequency, component, value
-- Staged one-to-one from src_embedding_fourier, which `tdw index` fills from the analyzer's Parquet.
create or replace view embedding_fourier as
select variant, epoch, frequency, component, value from src_embedding_fourier;
