-- neuron_clusters: how many neurons belong to each frequency cluster (by best frequency), and how
-- grain: variant, epoch, frequency
-- many of them are specialized: their best frequency explains at least the family's
-- `specialized_share` of their variance (85% for the transformer's ReLU neurons). (REQ_006)
-- Columns: variant, epoch, frequency, neurons, specialized_neurons
create or replace view neuron_clusters as
select n.variant, n.epoch, n.frequency, count(*) as neurons,
       count(*) filter (where n.value >= v.specialized_share) as specialized_neurons
from neuron_best_freq n join variants v using (variant)
group by n.variant, n.epoch, n.frequency;
