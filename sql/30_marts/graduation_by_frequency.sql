-- graduation_by_frequency: do the inputs that lean on one key frequency graduate before the others?
-- grain: variant, split, dominant_frequency
-- One row per variant, split and key frequency: the traced inputs whose correct logit, at the last
-- checkpoint, gets more from that frequency than from any other key frequency (answer_frequencies),
-- and when they graduate (input_graduation).
-- Columns: variant, split, dominant_frequency, pairs, graduated, median_graduation_epoch,
--          mean_share (that frequency's mean share of the key frequencies' total)
create or replace view graduation_by_frequency as
with last_epoch as (
    select variant, max(epoch) as epoch from answer_frequencies group by variant
), final_terms as (
    select f.variant, f.a, f.b, f.frequency, f.value
    from answer_frequencies f join last_epoch l using (variant, epoch)
    where f.component = 'key'
), dominant as (
    select variant, a, b, arg_max(frequency, value) as dominant_frequency,
           max(value) / nullif(sum(value), 0) as share
    from final_terms group by variant, a, b
)
select d.variant, g.split, d.dominant_frequency, count(*) as pairs, count(g.graduation_epoch) as graduated,
       median(g.graduation_epoch) as median_graduation_epoch, avg(d.share) as mean_share
from dominant d join input_graduation g using (variant, a, b)
group by d.variant, g.split, d.dominant_frequency;
