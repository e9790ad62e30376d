-- graduation_by_answer: do the pairs with some answers graduate before the others?
-- grain: variant, split, sum_mod_p
-- One row per variant, split and answer (a + b) mod p: when that answer's pairs graduate.
-- Columns: variant, split, sum_mod_p, pairs, graduated (pairs that stay right to the end),
--          first_graduation_epoch, median_graduation_epoch, last_graduation_epoch,
--          graduation_rank (1: this answer's pairs graduate first, by median, within the variant and split)
create or replace view graduation_by_answer as
select variant, split, sum_mod_p, count(*) as pairs, count(graduation_epoch) as graduated,
       min(graduation_epoch) as first_graduation_epoch,
       median(graduation_epoch) as median_graduation_epoch,
       max(graduation_epoch) as last_graduation_epoch,
       rank() over (partition by variant, split order by median(graduation_epoch)) as graduation_rank
from input_graduation
group by variant, split, sum_mod_p;
