-- graduation_curve: what share of the train and of the test pairs has graduated by each checkpoint?
-- grain: variant, epoch, split
-- One row per variant, checkpoint and split. A pair has graduated at an epoch when it is answered
-- correctly there and at every later checkpoint (input_graduation). Read beside the turn: the
-- test pairs' curve is the generalization, pair by pair.
-- Columns: variant, epoch, split, pairs, graduated, graduated_fraction, turn_epoch, grok_epoch
create or replace view graduation_curve as
with pairs as (
    select variant, split, graduation_epoch from input_graduation
)
select c.variant, c.epoch, s.split, count(*) as pairs,
       count(*) filter (where p.graduation_epoch <= c.epoch) as graduated,
       count(*) filter (where p.graduation_epoch <= c.epoch)::double / count(*) as graduated_fraction,
       any_value(t.turn_epoch) as turn_epoch, any_value(t.grok_epoch) as grok_epoch
from checkpoints c
join (select distinct variant, split from pairs) s on s.variant = c.variant
join pairs p on p.variant = c.variant and p.split = s.split
left join grokking_turn t on t.variant = c.variant
group by c.variant, c.epoch, s.split;
