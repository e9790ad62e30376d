-- neuron_activations: one row per one neuron's activations over the p x p grid, quantized to 8-bit codes between lo and hi.
-- grain: variant, epoch, neuron
-- Question: What does a neuron respond to? (Parquet-backed: filter on variant and epoch.)
-- Columns: variant, epoch, neuron, lo, hi, codes
-- Staged one-to-one from src_neuron_activations, which `tdw index` fills from the analyzer's Parquet.
create or replace view neuron_activations as
select variant, epoch, neuron, lo, hi, codes from src_neuron_activations;
