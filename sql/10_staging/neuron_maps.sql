-- neuron_maps: one row per one neuron's activations over the p x p grid, quantized to 8-bit codes between lo and hi.
-- grain: variant, epoch, neuron
-- Question: What does a neuron respond to? (Parquet-backed: filter on variant and epoch.)
-- Columns: variant, epoch, neuron, lo, hi, codes (BLOB of p * p bytes, a-major: the input (a, b) is byte a * p + b,
--   value = lo + byte / 255 * (hi - lo); in Python numpy.frombuffer(codes, numpy.uint8))
-- Staged one-to-one from src_neuron_maps, a view over the neuron_activations analyzer's Parquet. Its version 1
-- wrote a list of codes to a table named neuron_activations; an epoch that has only such a file is read from it,
-- the list converted to these bytes as a query reads the row (about 2 ms a map), until `tdw analyze` rewrites it.
create or replace view neuron_maps as
select variant, epoch, neuron, lo, hi, codes from src_neuron_maps;
