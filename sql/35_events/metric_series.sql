-- metric_series: every per-checkpoint series the warehouse holds, in one long table.
-- grain: variant, metric, epoch
-- Question: what does each measure of a run do over training? (the input of event detection and
--           of the phase model)
-- Columns: variant, metric (log10_train_loss, log10_test_loss, pr_<matrix> and
--          spectral_gap_<matrix> per weight matrix, specialized_fraction, velocity, the progress
--          measures (log10 of restricted_loss and excluded_loss; gini_embedding, gini_neuron_logit,
--          weight_norm), head_frequency_diversity, llc_<component> (the local learning
--          coefficient of all weights, attention, mlp; chains that diverged left out),
--          graduated_train and graduated_test (the share of each split's pairs answered right from
--          then on: graduation_curve)), epoch, value
-- Losses are read at the checkpoints only, so every series shares the run's epochs.
create or replace view metric_series as
select l.variant, 'log10_' || l.split || '_loss' as metric, l.epoch, log10(greatest(l.loss, 1e-30)) as value
from losses l join checkpoints c using (variant, epoch)
union all
select variant, 'pr_' || matrix, epoch, participation_ratio from participation_ratio
union all
select variant, 'spectral_gap_' || matrix, epoch, spectral_gap from participation_ratio where spectral_gap is not null
union all
select variant, 'specialized_fraction', epoch, specialized_fraction from neuron_specialization
union all
select variant, 'velocity', epoch, value from trajectory
where "group" = 'all' and component = 'velocity' and not isnan(value)
union all
select variant, case when measure in ('restricted_loss', 'excluded_loss') then 'log10_' || measure else measure end,
       epoch, case when measure in ('restricted_loss', 'excluded_loss') then log10(greatest(value, 1e-30)) else value end
from progress where measure in ('restricted_loss', 'excluded_loss', 'gini_embedding', 'gini_neuron_logit', 'weight_norm')
union all
select distinct variant, 'head_frequency_diversity', epoch, distinct_frequencies from attention_head_frequency
union all
select variant, 'llc_' || component, epoch, value from llc where statistic = 'llc' and not isnan(value)
union all
select variant, 'graduated_' || split, epoch, graduated_fraction from graduation_curve;
