-- attention_consensus: do the heads converge on one frequency, then diversify (as p107/seed999's)?
-- grain: variant
-- One row per variant with attention heads. Consensus: a checkpoint at which every head's dominant
-- frequency (attention_head_frequency) is the same and at least half of each head's variance is
-- on it; diversification: a later checkpoint at which the heads follow more than one frequency.
-- Columns: variant, heads, consensus_epoch (first such checkpoint, NULL if none),
--          consensus_frequency, diversified_epoch (first checkpoint after consensus_epoch with
--          more than one dominant frequency), consensus_then_diversification (boolean)
create or replace view attention_consensus as
with per_epoch as (
    select variant, epoch, any_value(heads) as heads, max(distinct_frequencies) as distinct_frequencies,
           min(share) as weakest_share, min(dominant_frequency) as frequency
    from attention_head_frequency group by variant, epoch
), consensus as (
    select variant, min(epoch) as consensus_epoch, arg_min(frequency, epoch) as consensus_frequency
    from per_epoch where heads > 1 and distinct_frequencies = 1 and weakest_share >= 0.5
    group by variant
)
select p.variant, any_value(p.heads) as heads, any_value(c.consensus_epoch) as consensus_epoch,
       any_value(c.consensus_frequency) as consensus_frequency,
       min(p.epoch) filter (where p.epoch > c.consensus_epoch and p.distinct_frequencies > 1) as diversified_epoch,
       coalesce(min(p.epoch) filter (where p.epoch > c.consensus_epoch and p.distinct_frequencies > 1) is not null,
                false) as consensus_then_diversification
from per_epoch p left join consensus c using (variant)
group by p.variant;
