-- compression_threshold: how far have the weights compressed by the turn, and when did each collapse?
-- grain: variant, matrix
-- One row per variant and weight matrix among W_in, W_out and W_U: its participation ratio at the
-- checkpoint nearest the turn and at the end, and its sharpest collapse (the largest fall among
-- metric_events' collapses of pr_<matrix>), beside the turn and grok epochs, so "a PR collapse to
-- ~25-30 is a precondition for grokking" is one query across variants.
-- Columns: variant, matrix, turn_epoch, grok_epoch, pr_at_turn, pr_final, pr_min,
--          sharpest_collapse_epoch, sharpest_collapse (the fall, negative), collapse_before_turn
create or replace view compression_threshold as
with pr as (
    select variant, matrix, epoch, participation_ratio from participation_ratio where matrix in ('W_in', 'W_out', 'W_U')
), at_turn as (
    select pr.variant, pr.matrix, arg_min(pr.participation_ratio, abs(pr.epoch - t.turn_epoch)) as pr_at_turn,
           arg_max(pr.participation_ratio, pr.epoch) as pr_final, min(pr.participation_ratio) as pr_min,
           any_value(t.turn_epoch) as turn_epoch, any_value(t.grok_epoch) as grok_epoch
    from pr join grokking_turn t using (variant)
    group by pr.variant, pr.matrix
), collapses as (
    select variant, substr(metric, 4) as matrix, arg_min(epoch, magnitude) as sharpest_collapse_epoch,
           min(magnitude) as sharpest_collapse
    from metric_events where kind = 'collapse' and metric in ('pr_W_in', 'pr_W_out', 'pr_W_U')
    group by variant, metric
)
select a.variant, a.matrix, a.turn_epoch, a.grok_epoch,
       case when a.turn_epoch is not null then a.pr_at_turn end as pr_at_turn, a.pr_final, a.pr_min,
       c.sharpest_collapse_epoch, c.sharpest_collapse, c.sharpest_collapse_epoch < a.turn_epoch as collapse_before_turn
from at_turn a left join collapses c using (variant, matrix);
