-- attention: one row per attention weight of each head from the '=' position to each source token, per input pair (a, b).
-- grain: variant, epoch, head, source, a, b
-- Question: Where does each head look, input by input? (Parquet-backed: filter on variant and epoch.)
-- Columns: variant, epoch, head, source, a, b, value
-- Staged one-to-one from src_attention, which `tdw index` fills from the analyzer's Parquet.
create or replace view attention as
select variant, epoch, head, source, a, b, value from src_attention;
