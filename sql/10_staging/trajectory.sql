-- trajectory: one row per a checkpoint's coordinate on a principal component of its parameter group's trajectory, or its velocity.
-- grain: variant, epoch, group, component
-- Question: Where does training move the weights?
-- Columns: variant, epoch, group, component, value
-- Staged one-to-one from src_trajectory, which `tdw index` fills from the analyzer's Parquet.
create or replace view trajectory as
select variant, epoch, "group", component, value from src_trajectory;
