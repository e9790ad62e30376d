-- probe_pairs: one row per named probe, variant and input pair it selects there.
-- grain: probe, variant, a, b
-- Question: which inputs of this run does the probe name? (join it to input_graduation,
--           interventions or logit_lens on variant, a, b)
-- Columns: probe, variant, a, b, split (train/test in that run)
create or replace view probe_pairs as
select probe, variant, a, b, split from src_probe_pairs;
