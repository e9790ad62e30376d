-- variant_summary: one row per variant for cross-variant tables and papers.
-- grain: variant
-- Outlier: a robust z-score |x - median| / max(1.4826 * MAD, 0.1 * |median|) > 3.5 on any of
-- turn_to_grok, final specialized fraction, max key-frequency cos/sin imbalance, key frequency
-- count, across the variants of its family (needs 3+ of them; the seeds' p101/seed999 kind of
-- anomaly); or it never groks where 2+ of its family do. Families are compared only within
-- themselves. The spread's floor, a tenth of the median, is for few variants and ties: the MAD of
-- 3 variants is one distance, and two that happen to agree (imbalance 1.017 and 1.027) made a
-- third at 2.1 "z = 73"; and where most variants tie (key counts 5, 5, 5, 6, 20) the MAD is 0
-- and the z was 0 for any value. With the floor a measure must be 35% off the median at least.
-- Columns: variant, family, p, seed, status, memorization_epoch, turn_epoch, grok_epoch,
--          turn_to_grok, test_half_graduated_epoch (the first checkpoint by which half the test inputs
--          are answered right for good, graduation_curve; NULL when half never are), final_train_loss,
--          final_test_loss,
--          key_frequencies, key_frequency_count, key_frequency_rule (the rule that found them:
--          'embedding_gap' or 'neuron_clusters', key_frequencies; NULL when there are none),
--          specialized_fraction, first_cluster_epoch (the first checkpoint at which the neurons of
--          some frequency form a cluster, frequency_lifecycle; NULL when none ever does),
--          pr_w_in_at_turn, pr_w_in_min, max_cos_sin_imbalance,
--          llc_peak, llc_peak_epoch (the largest LLC of all weights where estimated and sound, and its
--          epoch; NULL without the opt-in llc), llc_collapse_epoch (its first fall, metric_events),
--          outlier,
--          outlier_measures (which tests made it an outlier: each measure's name with its robust z, or
--          'never groks'; empty when it is not one)
create or replace view variant_summary as
with final_loss as (
    select variant,
           arg_max(loss, epoch) filter (where split = 'train') as final_train_loss,
           arg_max(loss, epoch) filter (where split = 'test') as final_test_loss
    from losses group by variant
), keys as (
    select variant, list(frequency order by frequency) as key_frequencies, count(*) as key_frequency_count,
           any_value(rule) as key_frequency_rule
    from key_frequencies group by variant
), imbalance as (
    select k.variant, max(c.imbalance) as max_cos_sin_imbalance
    from key_frequencies k join cos_sin_balance c using (variant, epoch, frequency) group by k.variant
), spec as (
    select variant, arg_max(specialized_fraction, epoch) as specialized_fraction
    from neuron_specialization group by variant
), pr as (
    select p.variant, min(p.participation_ratio) as pr_w_in_min,
           arg_min(p.participation_ratio, abs(p.epoch - t.turn_epoch)) as pr_w_in_at_turn
    from participation_ratio p left join grokking_turn t using (variant)
    where p.matrix = 'W_in' group by p.variant
), llc_all as (
    select variant, max(value) as llc_peak, arg_max(epoch, value) as llc_peak_epoch
    from llc where component = 'all' and statistic = 'llc' and not isnan(value) group by variant
), llc_fall as (
    select variant, min(epoch) as llc_collapse_epoch
    from metric_events where metric = 'llc_all' and kind = 'collapse' group by variant
), first_cluster as (
    select variant, min(first_epoch) as first_cluster_epoch from frequency_lifecycle group by variant
), graduation as (
    select variant, min(epoch) filter (where split = 'test' and graduated_fraction >= 0.5) as test_half_graduated_epoch
    from graduation_curve group by variant
), base as (
    select v.variant, v.family, v.p, v.seed, v.status, t.memorization_epoch, t.turn_epoch, t.grok_epoch,
           t.turn_to_grok, g.test_half_graduated_epoch, f.final_train_loss, f.final_test_loss, k.key_frequencies,
           coalesce(k.key_frequency_count, 0) as key_frequency_count, k.key_frequency_rule, s.specialized_fraction,
           fc.first_cluster_epoch, pr.pr_w_in_at_turn, pr.pr_w_in_min, i.max_cos_sin_imbalance, l.llc_peak, l.llc_peak_epoch,
           lf.llc_collapse_epoch
    from variants v
    left join grokking_turn t using (variant) left join final_loss f using (variant)
    left join keys k using (variant) left join imbalance i using (variant)
    left join spec s using (variant) left join pr using (variant) left join graduation g using (variant)
    left join llc_all l using (variant) left join llc_fall lf using (variant) left join first_cluster fc using (variant)
), scored as (
    select *, count(*) over family as n_variants, count(grok_epoch) over family as n_grokked,
           median(turn_to_grok) over family as m1, median(specialized_fraction) over family as m2,
           median(max_cos_sin_imbalance) over family as m3, median(key_frequency_count) over family as m4
    from base window family as (partition by family)
), mad as (
    select *, median(abs(turn_to_grok - m1)) over family as d1,
           median(abs(specialized_fraction - m2)) over family as d2,
           median(abs(max_cos_sin_imbalance - m3)) over family as d3,
           median(abs(key_frequency_count - m4)) over family as d4
    from scored window family as (partition by family)
)
select variant, family, p, seed, status, memorization_epoch, turn_epoch, grok_epoch, turn_to_grok,
       test_half_graduated_epoch, final_train_loss, final_test_loss, key_frequencies, key_frequency_count, key_frequency_rule,
       specialized_fraction, first_cluster_epoch,
       pr_w_in_at_turn, pr_w_in_min, max_cos_sin_imbalance, llc_peak, llc_peak_epoch, llc_collapse_epoch,
       n_variants >= 3 and len(outlier_measures) > 0 as outlier,
       outlier_measures
from (
    select *, case when n_variants >= 3 then list_filter([
        case when z1 > 3.5 then printf('turn_to_grok (z=%.1f)', z1) end,
        case when z2 > 3.5 then printf('specialized_fraction (z=%.1f)', z2) end,
        case when z3 > 3.5 then printf('max_cos_sin_imbalance (z=%.1f)', z3) end,
        case when z4 > 3.5 then printf('key_frequency_count (z=%.1f)', z4) end,
        case when grok_epoch is null and n_grokked >= 2 then 'never groks' end], lambda x: x is not null)
        else []::varchar[] end as outlier_measures
    from (
        select *, coalesce(abs(turn_to_grok - m1) / nullif(greatest(1.4826 * d1, 0.1 * abs(m1)), 0), 0) as z1,
               coalesce(abs(specialized_fraction - m2) / nullif(greatest(1.4826 * d2, 0.1 * abs(m2)), 0), 0) as z2,
               coalesce(abs(max_cos_sin_imbalance - m3) / nullif(greatest(1.4826 * d3, 0.1 * abs(m3)), 0), 0) as z3,
               coalesce(abs(key_frequency_count - m4) / nullif(greatest(1.4826 * d4, 0.1 * abs(m4)), 0), 0) as z4
        from mad
    )
) order by p, seed, variant;
