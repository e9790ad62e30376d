-- participation_ratio: effective dimensionality of each weight matrix over training.
-- grain: variant, epoch, matrix
-- One row per (variant, epoch, matrix); matrix in short form (W_E, W_in, W_U, ...).
-- Columns: variant, epoch, matrix, participation_ratio, spectral_gap, gap_index, top_singular_value
create or replace view participation_ratio as
select variant, epoch, matrix, participation_ratio, spectral_gap, gap_index, top_singular_value
from int_participation__by_matrix;
