-- attention_head_frequency: which frequency does each attention head follow, at each checkpoint?
-- grain: variant, epoch, head
-- One row per variant, checkpoint and head: the frequency with the largest share of the head's
-- attention-map variance (attention_freq), that share, and how many distinct dominant
-- frequencies the variant's heads have at that checkpoint (1: they agree).
-- Columns: variant, epoch, head, dominant_frequency, share, heads, distinct_frequencies
create or replace view attention_head_frequency as
with per_head as (
    select variant, epoch, head, arg_max(frequency, value) as dominant_frequency,
           max(value) / nullif(sum(value), 0) as share
    from attention_freq group by variant, epoch, head
)
select variant, epoch, head, dominant_frequency, share,
       count(*) over (partition by variant, epoch) as heads,
       count(distinct dominant_frequency) over (partition by variant, epoch) as distinct_frequencies
from per_head;
