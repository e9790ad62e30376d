-- input_graduation: when did the model come to know each input, for good?
-- grain: variant, a, b
-- One row per variant and input pair (a, b).
--   graduation_epoch  the first checkpoint from which the pair is answered correctly (rank 0) at
--                     every later checkpoint; NULL when it is wrong at the last one
--   first_correct_epoch  the first checkpoint at which it is answered correctly (for a train pair,
--                     when it was memorized, if it was before graduating)
--   final_margin      the correct answer's margin over the best wrong one at the last checkpoint
-- Columns: variant, a, b, split, sum_mod_p ((a + b) mod p, the answer), first_correct_epoch,
--          graduation_epoch, final_margin
create or replace view input_graduation as
with per_epoch as (
    select variant, epoch, a, b, split,
           max(value) filter (where measure = 'rank') = 0 as correct,
           max(value) filter (where measure = 'margin') as margin
    from input_outcomes group by variant, epoch, a, b, split
), analyzed as (  -- each analyzed checkpoint and the next one
    select variant, epoch, lead(epoch) over (partition by variant order by epoch) as next_epoch
    from (select distinct variant, epoch from per_epoch)
), per_pair as (
    select variant, a, b, split,
           min(epoch) filter (where correct) as first_correct_epoch,
           max(epoch) filter (where not correct) as last_wrong_epoch,
           min(epoch) as first_epoch, max(epoch) as last_epoch,
           arg_max(margin, epoch) as final_margin
    from per_epoch group by variant, a, b, split
)
select pp.variant, pp.a, pp.b, pp.split, (pp.a + pp.b) % v.p as sum_mod_p, pp.first_correct_epoch,
       case when pp.last_wrong_epoch is null then pp.first_epoch
            when pp.last_wrong_epoch = pp.last_epoch then null
            else n.next_epoch end as graduation_epoch,
       pp.final_margin
from per_pair pp join variants v using (variant)
left join analyzed n on n.variant = pp.variant and n.epoch = pp.last_wrong_epoch;
