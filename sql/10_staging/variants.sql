-- variants: one row per run. Which variants exist, with what hyper-parameters, and are they done?
-- grain: variant
-- Columns: family, variant, one column per variant parameter declared with a column in
--          tdw/parameters.py (p, seed, data_seed, train_frac, lr, weight_decay, num_epochs, d_model,
--          n_heads, d_head, d_mlp), schedule (JSON), schedule_label, specialized_share (the family's: a neuron whose best
--          frequency explains at least this share of its variance is specialized), activations (the
--          family's activation roles: neurons, attention, residual, heads), status, path (the probe a
--          run's per-input traces cover is in traced_probes)
create or replace view variants as
select * from src_runs;
