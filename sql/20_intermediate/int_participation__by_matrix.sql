-- int_participation__by_matrix: spectrum statistics per (variant, epoch, matrix), whole matrices
-- grain: variant, epoch, matrix
-- only (head = -1). PR = (sum s^2)^2 / sum s^4; the gap is the largest s_i / s_{i+1} among the
-- top 10 singular values, at gap_index = i + 1 (how many values stand above the gap).
-- Columns: variant, epoch, matrix, participation_ratio, spectral_gap, gap_index, top_singular_value
create or replace view int_participation__by_matrix as
with s as (
    select variant, epoch, matrix, index, value::double as s,
           lead(value::double) over (partition by variant, epoch, matrix order by index) as s_next
    from singular_values where head = -1
), ratios as (
    select *, case when index < 10 and s_next > 0 then s / s_next end as ratio from s
)
select variant, epoch, matrix,
       power(sum(s * s), 2) / nullif(sum(power(s, 4)), 0) as participation_ratio,
       max(ratio) as spectral_gap,
       arg_max(index + 1, ratio) as gap_index,
       max(s) as top_singular_value
from ratios group by variant, epoch, matrix;
