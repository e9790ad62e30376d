-- graduation_curve: what share of the train and of the test pairs has graduated by each checkpoint?
-- grain: variant, epoch, split
-- One row per variant, checkpoint and split. A pair has graduated at an epoch when it is answered
-- correctly there and at every later checkpoint (input_graduation). Read beside the turn: the
-- test pairs' curve is the generalization, pair by pair.
-- Columns: variant, epoch, split, pairs, graduated, graduated_fraction, turn_epoch, grok_epoch
create or replace view graduation_curve as
select c.variant, c.epoch, g.split, count(*) as pairs,
       count(*) filter (where g.graduation_epoch <= c.epoch) as graduated,
       count(*) filter (where g.graduation_epoch <= c.epoch)::double / count(*) as graduated_fraction,
       any_value(t.turn_epoch) as turn_epoch, any_value(t.grok_epoch) as grok_epoch
from checkpoints c
join input_graduation g on g.variant = c.variant
left join grokking_turn t on t.variant = c.variant
group by c.variant, c.epoch, g.split;
