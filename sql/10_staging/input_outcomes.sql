-- input_outcomes: one row per input pair, checkpoint and measure.
-- grain: variant, epoch, a, b, measure
-- Question: how does the model do on this input (a, b) at this checkpoint?
-- Columns: variant, epoch, a, b, split (train/test), measure (correct_logit, margin over the best
--          wrong answer, rank of the correct answer: 0 = answered correctly, loss), value
-- Staged one-to-one from src_input_outcomes, which `tdw index` fills from the analyzer's Parquet.
create or replace view input_outcomes as
select variant, epoch, a, b, split, measure, value from src_input_outcomes;
