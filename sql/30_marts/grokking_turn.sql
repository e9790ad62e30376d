-- grokking_turn: when did each variant memorize, turn and grok? One row per variant.
--   memorization_epoch  first epoch with train accuracy >= 0.99
--   grok_epoch          first epoch with test accuracy >= 0.99 that stays >= 0.99 to the end
--   steepest_epoch      first epoch where the smoothed log test loss falls at >= 90% of its fastest
--                       rate (after memorization, up to the grok epoch plus 10% of the remaining run)
--   turn_epoch          onset of the sustained test-loss drop: the epoch of most negative curvature
--                       (the knee) of the smoothed log test loss within the uninterrupted stretch of
--                       negative curvature that ends at the steepest point (so the transient spike
--                       right after memorization is never taken for the turn)
--   cleanup_end_epoch   first epoch after the steepest point where the fall has slowed to 10% of
--                       its steepest rate
--   turn_to_grok        grok_epoch - turn_epoch
-- A variant that never groks has NULL turn, grok and cleanup (no guess).
-- Columns: variant, memorization_epoch, turn_epoch, steepest_epoch, grok_epoch, cleanup_end_epoch,
--          turn_to_grok, final_test_accuracy
-- materialized: table (computed at index time; the dashboard reads it often)
create or replace view grokking_turn as
with acc as (
    select variant,
           min(epoch) filter (where split = 'train' and accuracy >= 0.99) as memorization_epoch,
           max(epoch) filter (where split = 'test' and accuracy < 0.99) as last_miss,
           max(epoch) filter (where split = 'test') as last_test_epoch,
           arg_max(accuracy, epoch) filter (where split = 'test') as final_test_accuracy
    from losses group by variant
), grok as (
    select a.*,
           case when a.final_test_accuracy >= 0.99 then
               (select min(l.epoch) from losses l where l.variant = a.variant and l.split = 'test'
                and l.epoch > coalesce(a.last_miss, -1))
           end as grok_epoch
    from acc a
), window_ as (
    select g.variant, g.memorization_epoch,
           g.grok_epoch + (g.last_test_epoch - g.grok_epoch) / 10 as search_end,
           (select min(s.slope) from int_test_loss__smoothed s
            where s.variant = g.variant and s.epoch >= coalesce(g.memorization_epoch, 0)
              and s.epoch <= g.grok_epoch + (g.last_test_epoch - g.grok_epoch) / 10) as min_slope
    from grok g where g.grok_epoch is not null
), steepest as (
    -- first epoch falling at >= 90% of the steepest rate (a straight drop has many ties)
    select w.variant,
           (select min(s.epoch) from int_test_loss__smoothed s
            where s.variant = w.variant and s.epoch >= coalesce(w.memorization_epoch, 0)
              and s.epoch <= w.search_end and s.slope <= 0.9 * w.min_slope) as steepest_epoch
    from window_ w
), peak as (
    select st.*, (select min(s.slope) from int_test_loss__smoothed s
                  where s.variant = st.variant and s.epoch = st.steepest_epoch) as steepest_slope,
           (select arg_max(s.epoch, s.smoothed) from int_test_loss__smoothed s, grok g
            where s.variant = st.variant and g.variant = st.variant
              and s.epoch >= coalesce(g.memorization_epoch, 0) and s.epoch <= st.steepest_epoch) as peak_epoch
    from steepest st
), accelerating as (
    -- the sustained drop is the uninterrupted stretch of negative curvature that ends at the
    -- steepest point; it starts after the last epoch with curvature >= 0 before it
    -- (curvature counts as non-negative above 1e-3 of the strongest bend: float noise on a
    -- straight stretch is not a start)
    select pk.*,
           (select max(s.epoch) from int_test_loss__smoothed s
            where s.variant = pk.variant and s.epoch > pk.peak_epoch and s.epoch < pk.steepest_epoch
              and s.curvature > 1e-3 * (select max(abs(s2.curvature)) from int_test_loss__smoothed s2
                                        where s2.variant = pk.variant and s2.epoch > pk.peak_epoch
                                          and s2.epoch <= pk.steepest_epoch)) as drop_start_epoch
    from peak pk
), turn as (
    select a.*,
           (select arg_min(s.epoch, s.curvature) from int_test_loss__smoothed s
            where s.variant = a.variant and s.curvature is not null
              and s.epoch > coalesce(a.drop_start_epoch, a.peak_epoch) and s.epoch <= a.steepest_epoch) as turn_epoch
    from accelerating a
), cleanup as (
    select t.*,
           (select min(s.epoch) from int_test_loss__smoothed s
            where s.variant = t.variant and s.epoch > t.steepest_epoch and s.slope is not null
              and s.slope > 0.1 * t.steepest_slope) as cleanup_end_epoch
    from turn t
)
select g.variant, g.memorization_epoch, c.turn_epoch, c.steepest_epoch, g.grok_epoch,
       c.cleanup_end_epoch, g.grok_epoch - c.turn_epoch as turn_to_grok, g.final_test_accuracy
from grok g left join cleanup c using (variant);
