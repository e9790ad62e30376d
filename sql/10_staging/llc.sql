-- llc: one row per a statistic of the local learning coefficient estimate of one component at a checkpoint.
-- grain: variant, epoch, component, statistic
-- Question: how many effective dimensions does the loss landscape have around this checkpoint, for
--           all weights, the attention and the MLP (tdw/analysis/llc.py)?
-- Columns: variant, epoch, component (all, attention, mlp), statistic (llc, llc_std across chains,
--          init_loss, mean_loss of the SGLD draws, nbeta, diverged: 1 when a chain was unsound
--          (its loss spiked or left the finite numbers) and llc is NaN, step_size: the SGLD step,
--          which `tdw analyze RUN --llc-step` may make smaller than the default), value
-- Staged one-to-one from src_llc, which `tdw index` fills from the analyzer's Parquet.
create or replace view llc as
select variant, epoch, component, statistic, value from src_llc;
