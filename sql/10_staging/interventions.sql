-- interventions: one row per intervention, checkpoint, input pair, measure and model.
-- grain: variant, epoch, intervention, a, b, measure, model
-- Question: what did this intervention (`tdw intervene`) do to this input?
-- Columns: variant, epoch, intervention (the spec as text, e.g. 'frequency=14 where=embed gain=0'),
--          a, b, split, measure (loss, margin, correct: 1 when the answer is right), model
--          (baseline: the checkpoint as trained; intervened), value
create or replace view interventions as
select variant, epoch, intervention, a, b, split, measure, model, value from src_interventions;
