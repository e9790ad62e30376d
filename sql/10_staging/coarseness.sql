-- coarseness: one row per coarseness metrics of each unit (neuron or head) of a kind.
-- grain: variant, epoch, unit_kind, unit, metric
-- Question: How coarse or fine is each unit's response?
-- Columns: variant, epoch, unit_kind, unit, metric, value
-- Staged one-to-one from src_coarseness, which `tdw index` fills from the analyzer's Parquet.
create or replace view coarseness as
select variant, epoch, unit_kind, unit, metric, value from src_coarseness;
