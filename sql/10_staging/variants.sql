-- variants: one row per run. Which variants exist, with what hyper-parameters, and are they done?
-- grain: variant
-- Columns: family, variant, p, seed, data_seed, train_frac, lr, weight_decay, schedule,
--          schedule_label, num_epochs, d_model, d_mlp, n_heads, status, path
create or replace view variants as
select family, variant, p, seed, data_seed, train_frac, lr, weight_decay, schedule, schedule_label,
       num_epochs, d_model, d_mlp, n_heads, status, path
from src_runs;
