-- intervention_summary: how much an intervention costs the model, per split.
-- grain: variant, epoch, intervention, split
-- One row per intervention, checkpoint and split (train/test) of the inputs it was recorded on.
-- Columns: variant, epoch, intervention, split, inputs, baseline_accuracy, accuracy,
--          baseline_loss, loss (means over the inputs), broken, fixed (counts of inputs)
create or replace view intervention_summary as
select variant, epoch, intervention, split, count(*) as inputs,
       avg(baseline_correct::double) as baseline_accuracy, avg(correct::double) as accuracy,
       avg(baseline_loss) as baseline_loss, avg(loss) as loss,
       count(*) filter (where broken) as broken, count(*) filter (where fixed) as fixed
from intervention_effects
group by variant, epoch, intervention, split;
