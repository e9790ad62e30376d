-- int_test_loss__smoothed: the test-loss curve prepared for turn detection.
-- One row per (variant, epoch) with a test loss. Smoothing: centered moving average of
-- log10(test loss) over +-k rows, k = greatest(1, rows / 100) (1% of the curve); slope and
-- curvature are centered differences over k rows of the smoothed curve.
-- Columns: variant, epoch, log_loss, smoothed, slope, curvature, k
-- materialized: table (computed at index time; the dashboard reads it often)
create or replace view int_test_loss__smoothed as
with test as (
    select variant, epoch, log10(greatest(loss, 1e-12)) as log_loss,
           count(*) over (partition by variant) as n_rows,
           row_number() over (partition by variant order by epoch) as rn
    from losses where split = 'test'
), windowed as (
    select *, greatest(1, n_rows // 100)::int as k from test
), cumulative as (
    select *, sum(log_loss) over (partition by variant order by epoch rows unbounded preceding) as running
    from windowed
), smoothed as (
    -- mean over rows rn-k .. rn+k (clipped at the ends) from differences of the running sum
    select *, (coalesce(lead(running, k) over v, max(running) over (partition by variant))
               - coalesce(lag(running, k + 1) over v, 0))
              / (least(rn + k, n_rows) - greatest(rn - k - 1, 0)) as smoothed
    from cumulative window v as (partition by variant order by epoch)
), sloped as (
    select *, (lead(smoothed, k) over v - lag(smoothed, k) over v)
              / nullif(lead(epoch, k) over v - lag(epoch, k) over v, 0) as slope
    from smoothed window v as (partition by variant order by epoch)
)
select variant, epoch, log_loss, smoothed, slope,
       (lead(slope, k) over v - lag(slope, k) over v)
       / nullif(lead(epoch, k) over v - lag(epoch, k) over v, 0) as curvature, k
from sloped window v as (partition by variant order by epoch);
