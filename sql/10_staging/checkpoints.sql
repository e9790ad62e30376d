-- checkpoints: one row per saved checkpoint. Which epochs can be inspected for a variant?
-- grain: variant, epoch
-- Columns: variant, epoch
create or replace view checkpoints as
select variant, epoch from src_checkpoints;
