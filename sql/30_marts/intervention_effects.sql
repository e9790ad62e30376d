-- intervention_effects: what an intervention did to each input, beside the unmodified model.
-- grain: variant, epoch, intervention, a, b
-- One row per intervention, checkpoint and input pair.
-- Columns: variant, epoch, intervention, a, b, split, baseline_correct, correct (booleans),
--          baseline_loss, loss, baseline_margin, margin, broken (right before, wrong after),
--          fixed (wrong before, right after)
create or replace view intervention_effects as
select variant, epoch, intervention, a, b, split,
       max(value) filter (where measure = 'correct' and model = 'baseline') = 1 as baseline_correct,
       max(value) filter (where measure = 'correct' and model = 'intervened') = 1 as correct,
       max(value) filter (where measure = 'loss' and model = 'baseline') as baseline_loss,
       max(value) filter (where measure = 'loss' and model = 'intervened') as loss,
       max(value) filter (where measure = 'margin' and model = 'baseline') as baseline_margin,
       max(value) filter (where measure = 'margin' and model = 'intervened') as margin,
       baseline_correct and not correct as broken,
       correct and not baseline_correct as fixed
from interventions
group by variant, epoch, intervention, a, b, split;
