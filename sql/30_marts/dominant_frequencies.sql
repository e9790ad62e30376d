-- dominant_frequencies: which input frequencies carry the embedding, epoch by epoch? (REQ_004)
-- grain: variant, epoch, frequency
-- norm = sqrt(cos^2 + sin^2) of W_E's Fourier components; rank 1 = largest at that epoch.
-- Columns: variant, epoch, frequency, norm, rank
create or replace view dominant_frequencies as
with per_freq as (
    select variant, epoch, frequency, sqrt(sum(value::double * value::double)) as norm
    from embedding_fourier group by variant, epoch, frequency
)
select variant, epoch, frequency, norm,
       row_number() over (partition by variant, epoch order by norm desc, frequency) as rank
from per_freq;
