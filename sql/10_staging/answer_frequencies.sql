-- answer_frequencies: one row per traced input pair, checkpoint and component of its correct logit.
-- grain: variant, epoch, a, b, component, frequency
-- Question: how much does each key frequency contribute to this input's correct-answer logit?
-- Columns: variant, epoch, a, b, component (key: one of the run's final key frequencies; other: every
--          other frequency, summed; constant: the mean logit, the same for every answer), frequency
--          (the key frequency; 0 for other and constant), value (the components add up to the
--          correct logit)
create or replace view answer_frequencies as
select variant, epoch, a, b, component, frequency, value from src_answer_frequencies;
