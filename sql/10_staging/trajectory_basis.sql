-- trajectory_basis: one row per a checkpoint's coordinate on a principal component of a shared basis.
-- grain: variant, epoch, basis, group, component
-- Question: where is each run's path in a coordinate system shared with other runs, so that
--           trajectories overlay (`tdw analyze --trajectory-basis NAME --variants A,B,...`)?
-- Columns: variant, epoch, basis (the shared basis's name), group (all or a parameter group),
--          component (pc1, pc2, pc3 of the PCA fitted on every member's checkpoints), value
-- Staged one-to-one from src_trajectory_basis, which `tdw index` fills from each member run's
-- artifacts/trajectory_basis/<basis>.parquet.
create or replace view trajectory_basis as
select variant, epoch, basis, "group", component, value from src_trajectory_basis;
