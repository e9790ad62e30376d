-- event_order: each detected event of a run, placed against the run's grokking turn.
-- grain: variant, metric, kind, epoch
-- Question: does the turn precede the other structural events, and by how much?
-- Columns: variant, metric, kind, epoch, magnitude, turn_epoch, epochs_from_turn (epoch - turn;
--          NULL when the run has no turn), before_turn (boolean), order_in_run (1 = the run's first
--          event, ties share a rank)
create or replace view event_order as
select e.variant, e.metric, e.kind, e.epoch, e.magnitude, t.turn_epoch,
       e.epoch - t.turn_epoch as epochs_from_turn,
       e.epoch < t.turn_epoch as before_turn,
       rank() over (partition by e.variant order by e.epoch) as order_in_run
from metric_events e left join grokking_turn t using (variant);
