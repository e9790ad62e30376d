"""input_outcomes: how the model does on every input (a, b) at every checkpoint, from the pipeline's
one forward pass: the correct answer's logit, its margin over the best wrong answer, its rank
among the p answers (0: the model answers correctly) and the pair's loss. The other axis of the
analysis (issue: per-input traces): not "what does an aggregate look like at epoch N" but "when
did the model come to know 4 + 29", which the warehouse's `input_graduation` answers per pair.

Any family: it reads the answer logits through `Family.answer_logits` and the split from the task.
"""

from __future__ import annotations

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register
from tdw.deferred_imports import F, torch
from tdw.families.base import at_labels

MEASURES = ("correct_logit", "margin", "rank", "loss")


def outcomes(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[pair, 4] in MEASURES order from answer logits [pair, p] and labels [pair]."""
    logits = logits.double()
    correct = at_labels(logits, labels)
    wrong = logits.scatter(1, labels[:, None], float("-inf"))
    margin = correct - wrong.max(dim=1).values
    # the correct answer's place when the answers are sorted by logit, ties in answer order, as
    # argmax breaks them: rank 0 exactly when the model's answer (argmax) is the correct one
    answers = torch.arange(logits.shape[1], device=logits.device)
    ties_before = (logits == correct[:, None]) & (answers[None, :] < labels[:, None])
    rank = ((logits > correct[:, None]) | ties_before).sum(dim=1).double()
    loss = F.cross_entropy(logits, labels, reduction="none")
    return torch.stack((correct, margin, rank, loss), dim=1)


@register
class InputOutcomes(Analyzer):
    name = "input_outcomes"
    version = 2  # v2: ties are broken as argmax does
    description = "per input (a, b): correct-answer logit, margin over the best wrong answer, rank, loss"
    requires = "activations"  # the logits of the shared forward pass; no hook
    tables = {"input_outcomes": TableSpec({"a": pl.Int16, "b": pl.Int16, "split": pl.Utf8, "measure": pl.Utf8})}

    def analyze(self, ctx):
        p = ctx.p
        values = outcomes(ctx.answer_logits(), ctx.data.labels).float()  # [pair, measure], pairs a-major
        split = torch.zeros(p * p, dtype=torch.bool)
        split[ctx.data.train_idx.cpu()] = True
        pair = torch.arange(p * p).repeat_interleave(len(MEASURES))
        return {"input_outcomes": pl.DataFrame({
            "a": (pair // p).numpy(),
            "b": (pair % p).numpy(),
            "split": pl.Series(split[pair].numpy()).replace_strict({True: "train", False: "test"}),
            "measure": list(MEASURES) * (p * p),
            "value": values.flatten().cpu().numpy(),
        })}
