-- grokking_turn: when did each variant memorize, turn and grok?
-- grain: variant
-- One row per variant.
-- Question: when did the test loss start its sustained fall (the turn), and how long after it did
-- the model generalize?
--   memorization_epoch  first epoch with train accuracy >= 0.99
--   grok_epoch          first epoch with test accuracy >= 0.99 that stays >= 0.99 to the end
--   peak_epoch          epoch of the highest smoothed test loss at or before grok (after
--                       memorization this is the top of the memorization bump)
--   turn_epoch          the knee of the log test loss between the peak and grok (Kneedle, Satopaa
--                       et al. 2011): with epoch and smoothed log10 test loss each scaled to [0, 1]
--                       over [peak, grok], the epoch farthest above the straight line from the peak to
--                       the grok point, where a log-scale loss plot visibly bends; strictly before
--                       grok. Why this definition (chosen against slope departure, the knee in linear
--                       space, piecewise-linear change points and the old curvature rule, on the
--                       published p=113 run, the demo and synthetic families):
--                       docs/turn-detection.md and benchmarks/turn_methods.py.
--   steepest_epoch      first epoch after the turn where the smoothed log test loss falls at >= 90% of
--                       its fastest rate (searched up to grok plus 10% of the remaining run)
--   cleanup_end_epoch   first epoch after the steepest point where the fall has slowed to 10% of
--                       its steepest rate
--   turn_to_grok        grok_epoch - turn_epoch
-- A variant that never groks has NULL peak, turn, steepest, grok and cleanup (no guess).
-- Columns: variant, memorization_epoch, peak_epoch, turn_epoch, steepest_epoch, grok_epoch,
--          cleanup_end_epoch, turn_to_grok, final_test_accuracy
create or replace view grokking_turn as
with acc as (
    select variant,
           min(epoch) filter (where split = 'train' and accuracy >= 0.99) as memorization_epoch,
           max(epoch) filter (where split = 'test' and accuracy < 0.99) as last_miss,
           max(epoch) filter (where split = 'test') as last_test_epoch,
           arg_max(accuracy, epoch) filter (where split = 'test') as final_test_accuracy
    from losses group by variant
), first_after_miss as (
    select l.variant, min(l.epoch) as first_epoch
    from losses l join acc a using (variant)
    where l.split = 'test' and l.epoch > coalesce(a.last_miss, -1)
    group by l.variant
), grok as (
    select a.*, case when a.final_test_accuracy >= 0.99 then f.first_epoch end as grok_epoch
    from acc a left join first_after_miss f using (variant)
), peak as (
    select s.variant, first(s.epoch order by s.smoothed desc, s.epoch) as peak_epoch
    from int_test_loss__smoothed s join grok g using (variant)
    where s.epoch <= g.grok_epoch
    group by s.variant
), stretch as (
    select s.variant, s.epoch, s.smoothed, p.peak_epoch, g.grok_epoch,
           (s.epoch - p.peak_epoch) / nullif(g.grok_epoch - p.peak_epoch, 0) as x
    from int_test_loss__smoothed s join peak p using (variant) join grok g using (variant)
    where s.epoch between p.peak_epoch and g.grok_epoch
), scaled as (
    select *, (smoothed - min(smoothed) over v) / nullif(max(smoothed) over v - min(smoothed) over v, 0) as y
    from stretch window v as (partition by variant)
), chord as (
    -- height above the straight line from the peak (x = 0, y = 1) to the grok point (x = 1)
    select *, y - (1 + (last(y order by epoch) over v - 1) * x) as above_chord
    from scaled window v as (partition by variant)
), turn as (
    select variant, any_value(peak_epoch) as peak_epoch,
           first(epoch order by above_chord desc, epoch) filter (where epoch < grok_epoch) as turn_epoch
    from chord group by variant
), search as (
    select t.*, g.grok_epoch + (g.last_test_epoch - g.grok_epoch) // 10 as search_end
    from turn t join grok g using (variant)
), fastest as (
    select r.variant, min(s.slope) as min_slope
    from int_test_loss__smoothed s join search r using (variant)
    where s.epoch >= r.turn_epoch and s.epoch <= r.search_end
    group by r.variant
), steepest as (
    -- first epoch falling at >= 90% of the fastest rate (a straight drop has many near-ties)
    select r.variant, min(s.epoch) as steepest_epoch, any_value(f.min_slope) as min_slope
    from int_test_loss__smoothed s join search r using (variant) join fastest f using (variant)
    where s.epoch >= r.turn_epoch and s.epoch <= r.search_end and s.slope <= 0.9 * f.min_slope
    group by r.variant
), cleanup as (
    select st.variant, min(s.epoch) as cleanup_end_epoch
    from int_test_loss__smoothed s join steepest st using (variant)
    where s.epoch > st.steepest_epoch and s.slope > 0.1 * st.min_slope
    group by st.variant
)
select g.variant, g.memorization_epoch, t.peak_epoch, t.turn_epoch, st.steepest_epoch, g.grok_epoch,
       c.cleanup_end_epoch, g.grok_epoch - t.turn_epoch as turn_to_grok, g.final_test_accuracy
from grok g
left join turn t using (variant)
left join steepest st using (variant)
left join cleanup c using (variant);
