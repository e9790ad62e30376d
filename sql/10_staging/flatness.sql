-- flatness: one row per a statistic of the loss under random weight perturbations of one radius.
-- grain: variant, epoch, radius, statistic
-- Question: How flat is the loss around the weights?
-- Columns: variant, epoch, radius, statistic, value
-- Staged one-to-one from src_flatness, which `tdw index` fills from the analyzer's Parquet.
create or replace view flatness as
select variant, epoch, radius, statistic, value from src_flatness;
