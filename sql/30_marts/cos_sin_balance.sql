-- cos_sin_balance: is each frequency represented with both cos and sin? (the p101/seed999 6:1 case)
-- grain: variant, epoch, frequency
-- imbalance = larger / smaller of the cos and sin norms (1 = balanced).
-- Columns: variant, epoch, frequency, cos_norm, sin_norm, imbalance
create or replace view cos_sin_balance as
select variant, epoch, frequency,
       max(value) filter (where component = 'cos')::double as cos_norm,
       max(value) filter (where component = 'sin')::double as sin_norm,
       greatest(cos_norm, sin_norm) / nullif(least(cos_norm, sin_norm), 0) as imbalance
from embedding_fourier group by variant, epoch, frequency;
