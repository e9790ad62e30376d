-- logit_lens: one row per traced input pair, checkpoint, layer and measure.
-- grain: variant, epoch, a, b, layer, measure
-- Question: after which layer, and from which epoch, can this input's answer be read off the
--           residual stream (read straight through W_U)?
-- Columns: variant, epoch, a, b, layer (embed, attention, mlp: the residual stream after it; mlp's
--          reading is the model's answer), measure (correct_logit, margin, rank, loss), value
-- Only the run's traced pairs (traced_probes; `tdw analyze --trace`); families without a
-- residual stream have no rows.
create or replace view logit_lens as
select variant, epoch, a, b, layer, measure, value from src_logit_lens;
