-- trajectory_variance: one row per variance explained by one principal component of a parameter group's trajectory.
-- grain: variant, epoch, group, component
-- Question: How low-dimensional is the path?
-- Columns: variant, epoch, group, component, value
-- Staged one-to-one from src_trajectory_variance, which `tdw index` fills from the analyzer's Parquet.
create or replace view trajectory_variance as
select variant, epoch, "group", component, value from src_trajectory_variance;
