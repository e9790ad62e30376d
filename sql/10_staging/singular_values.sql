-- singular_values: one row per one singular value of a weight matrix (head = -1: the whole matrix).
-- grain: variant, epoch, matrix, head, index
-- Question: How is each matrix's spectrum shaped?
-- Columns: variant, epoch, matrix, head, index, value
-- Staged one-to-one from src_singular_values, which `tdw index` fills from the analyzer's Parquet.
create or replace view singular_values as
select variant, epoch, matrix, head, index, value from src_singular_values;
