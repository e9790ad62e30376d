-- int_test_loss__smoothed: the test-loss curve prepared for turn detection.
-- grain: variant, epoch
-- One row per (variant, epoch) that has a test loss.
-- Question: where does the test loss stand, and how fast is it falling, with the noise averaged out?
-- Windows are in epochs, not rows (a range frame of +-half_window epochs), so evaluating every 10th
-- epoch instead of every epoch leaves the curve unchanged; half_window = max(1, last epoch / 200)
-- (`set variable turn_window_divisor = 100` before indexing doubles it; the turn tests do).
--   smoothed   mean of log10(test loss) over the window
--   slope      least-squares slope of log10(test loss) over the window, per epoch
-- Columns: variant, epoch, log_loss, smoothed, slope, half_window
create or replace view int_test_loss__smoothed as
with test as (
    select variant, epoch, log10(greatest(loss, 1e-12)) as log_loss,
           greatest(1, round(max(epoch) over (partition by variant)
                              / coalesce(getvariable('turn_window_divisor'), 200)))::int as half_window
    from losses where split = 'test'
)
select variant, epoch, log_loss,
       avg(log_loss) over w as smoothed,
       regr_slope(log_loss, epoch) over w as slope,
       half_window
from test
window w as (partition by variant order by epoch
             range between half_window preceding and half_window following);
