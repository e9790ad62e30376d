-- frequency_lifecycle: which frequencies did each run's neurons take up, when, and which did they drop?
-- grain: variant, frequency
-- One row per (variant, frequency) that holds a cluster at some checkpoint: at least 5% of the
-- run's neurons specialized on it (neuron_clusters; the share the key-frequency rule asks of a
-- run's largest cluster, tdw/analysis/key_frequencies.py). A run that acquires structure keeps
-- every cluster it forms ('kept'); the seeds' p101/seed999 "lost a low frequency": a cluster
-- formed, then gone by the run's last checkpoint ('lost').
-- Columns: variant, frequency, first_epoch and last_epoch (the first and last checkpoint at which it
--          holds a cluster), peak_epoch (the first checkpoint of its most specialized neurons),
--          peak_neurons, final_neurons (its specialized neurons at the run's last checkpoint),
--          status ('kept': it holds a cluster at the last checkpoint; 'lost': it held one before),
--          is_key (one of the run's key frequencies, key_frequencies),
--          cluster_share (the share of the neurons that makes a cluster, 0.05: declared here alone)
create or replace view frequency_lifecycle as
with setting as (
    select 0.05::double as cluster_share
), counted as (
    select c.variant, c.epoch, c.frequency, c.specialized_neurons,
           sum(c.neurons) over (partition by c.variant, c.epoch) as neurons,
           max(c.epoch) over (partition by c.variant) as last_checkpoint,
           max(c.specialized_neurons) over (partition by c.variant, c.frequency) as peak_neurons
    from neuron_clusters c
), clusters as (
    select variant, frequency,
           min(epoch) filter (where specialized_neurons >= cluster_share * neurons) as first_epoch,
           max(epoch) filter (where specialized_neurons >= cluster_share * neurons) as last_epoch,
           min(epoch) filter (where specialized_neurons = peak_neurons) as peak_epoch,
           any_value(peak_neurons) as peak_neurons,
           coalesce(max(specialized_neurons) filter (where epoch = last_checkpoint), 0) as final_neurons,
           any_value(last_checkpoint) as last_checkpoint, any_value(cluster_share) as cluster_share
    from counted cross join setting group by variant, frequency
)
select c.variant, c.frequency, c.first_epoch, c.last_epoch, c.peak_epoch, c.peak_neurons, c.final_neurons,
       case when c.last_epoch = c.last_checkpoint then 'kept' else 'lost' end as status,
       k.frequency is not null as is_key, c.cluster_share
from clusters c left join key_frequencies k using (variant, frequency)
where c.first_epoch is not null
order by variant, frequency;
