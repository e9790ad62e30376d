-- progress: one row per one of Nanda et al.'s progress measures (restricted, excluded loss, ...).
-- grain: variant, epoch, measure
-- Question: How far along is the circuit?
-- Columns: variant, epoch, measure, value
-- Staged one-to-one from src_progress, which `tdw index` fills from the analyzer's Parquet.
create or replace view progress as
select variant, epoch, measure, value from src_progress;
