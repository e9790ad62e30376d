-- event_summary: across variants, which events come first, and how consistently?
-- grain: metric, kind
-- One row per metric and kind of event (its first occurrence in each run that has one): in how
-- many variants it occurs, where it falls relative to the turn, and how often before it.
-- Columns: metric, kind, variants (that have the event and a turn), median_epochs_from_turn,
--          min_epochs_from_turn, max_epochs_from_turn, share_before_turn, mean_order (mean rank of
--          the event's first occurrence among each run's first occurrences of every event)
create or replace view event_summary as
with firsts as (
    select variant, metric, kind, min(epoch) as epoch, min(epochs_from_turn) as epochs_from_turn
    from event_order where turn_epoch is not null group by variant, metric, kind
), ranked as (
    select *, rank() over (partition by variant order by epoch) as order_in_run from firsts
)
select metric, kind, count(*) as variants, median(epochs_from_turn) as median_epochs_from_turn,
       min(epochs_from_turn) as min_epochs_from_turn, max(epochs_from_turn) as max_epochs_from_turn,
       avg((epochs_from_turn < 0)::double) as share_before_turn, avg(order_in_run) as mean_order
from ranked group by metric, kind;
