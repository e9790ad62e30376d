-- neuron_clusters: how many neurons belong to each frequency cluster (by best frequency), and how
-- grain: variant, epoch, frequency
-- many of them are specialized (best frequency explains >= 85% of their variance). (REQ_006)
-- Columns: variant, epoch, frequency, neurons, specialized_neurons
create or replace view neuron_clusters as
select variant, epoch, frequency, count(*) as neurons,
       count(*) filter (where value >= 0.85) as specialized_neurons
from neuron_best_freq group by variant, epoch, frequency;
