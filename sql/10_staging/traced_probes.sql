-- traced_probes: one row per run.
-- grain: variant
-- Question: which inputs do the run's per-input traces cover?
-- Columns: variant, trace_probe (the probe spec logit_lens and answer_frequencies are computed on:
--          `tdw analyze --trace PROBE` or `--trace-add`; auto is the grid up to p = 64, else sample:1024)
-- Kept apart from `variants`: it changes when an input is traced, and the models that read
-- `variants` need not be recomputed then.
create or replace view traced_probes as
select variant, trace_probe from src_traced_probes;
