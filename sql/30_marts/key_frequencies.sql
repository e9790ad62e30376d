-- key_frequencies: the frequencies the final model uses. At each variant's last analyzed epoch,
-- frequencies whose embedding norm^2 exceeds 3x the median norm^2, the 8 largest at most (the
-- same rule as the `progress` analyzer's key frequencies).
-- Columns: variant, epoch, frequency, norm, rank
-- materialized: table (computed at index time; the dashboard reads it often)
create or replace view key_frequencies as
with final as (
    select variant, max(epoch) as epoch from embedding_fourier group by variant
), d as (
    select d.*, median(d.norm * d.norm) over (partition by d.variant) as median_sq
    from dominant_frequencies d join final f using (variant, epoch)
)
select variant, epoch, frequency, norm, rank from d
where norm * norm > 3 * median_sq and rank <= 8;
