-- neuron_specialization: how specialized is the MLP at each epoch?
-- grain: variant, epoch
-- specialized_fraction = share of neurons whose best frequency explains at least the family's
-- specialized_share of their variance (variants; 85% for the transformer).
-- Columns: variant, epoch, neurons, specialized_neurons, specialized_fraction, clusters
create or replace view neuron_specialization as
select variant, epoch, sum(neurons) as neurons, sum(specialized_neurons) as specialized_neurons,
       sum(specialized_neurons)::double / sum(neurons) as specialized_fraction,
       count(*) filter (where specialized_neurons > 0) as clusters
from neuron_clusters group by variant, epoch;
