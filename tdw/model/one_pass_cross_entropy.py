"""The trained cross entropy in one float32 pass with its own backward (arithmetic 3).

Why: `F.cross_entropy` on float64 logits, the loss the runs were trained with until arithmetic 3,
converts the train logits to float64, takes a float64 log-softmax and NLL, and in the backward
fills a float64 one-hot, takes the log-softmax's backward and converts back: about eight passes
over [rows, p] float64 arrays. This takes three passes over the float32 logits forward (maximum,
exponentials, their sum) and one backward: a p=113 step 1.062x faster (28.5 -> 26.8 ms, paired
A/B, faster in 26 of 30 rounds), and with AdamW fused (`tdw.training.optimizer`) 1.089x (faster
in 30 of 30).

Float32 would lose the loss where it matters: late in training the loss is 1e-7, and
log(sum of exp) in float32 rounds 1 + 1e-7 to the nearest 1.2e-7. So, with m the row's maximum,
x_l the label's logit and S the sum of exp(x_j - m) over every class j but the label:

    loss = (m - x_l) + log1p((exp(x_l - m) - 1) + S)

the difference m - x_l in float64 (exact for float32 inputs), the small sum S never added to 1
in float32, and log1p in float64. Each row's loss is then the float64 loss to float32's relative
precision, 1e-7 losses included (2e-8 at a hand-computed 2.3e-7: tests/test_training.py), and a
mean over thousands of rows to about 1e-10. The gradient is softmax minus the one-hot over the
rows: exp(x_j - m) / T for j != l, with T the sum of every exp, and for the label exactly -S / T,
which 1 - exp(x_l - m) / T would lose to rounding when S is 1e-7. Within 1e-6 relative of
float64's.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from tdw.deferred_imports import torch

if TYPE_CHECKING:
    from torch import Tensor


@cache
def _autograd_function() -> type[torch.autograd.Function]:
    """The autograd Function, defined on first use: its base class is torch's, and this module is
    imported by the families, which `tdw index` reads without importing torch."""

    class _OnePassCrossEntropy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
            top = logits.amax(-1)
            exps = torch.exp(logits - top[:, None])
            column = labels[:, None]
            label_exp = exps.gather(-1, column)[:, 0]
            others = exps.scatter_(-1, column, 0.0).sum(-1)  # the label's exp left out: S
            label_logit = logits.gather(-1, column)[:, 0]
            rows = (top.double() - label_logit.double()) + torch.log1p((label_exp.double() - 1.0) + others.double())
            ctx.save_for_backward(exps, others, label_exp, labels)
            ctx.mark_non_differentiable(top, label_logit, others)
            return rows.mean(), top, label_logit, others

        @staticmethod
        def backward(ctx, grad_loss: Tensor, *_unused: Tensor) -> tuple[Tensor, None]:
            exps, others, label_exp, labels = ctx.saved_tensors
            scale = (grad_loss.to(exps.dtype) / exps.shape[0]) / (others + label_exp)  # per row: 1 / (n T)
            grad = exps * scale[:, None]  # the label's column is 0 here
            return grad.scatter_(-1, labels[:, None], (-others * scale)[:, None]), None

    return _OnePassCrossEntropy


def one_pass_cross_entropy(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(mean cross entropy as a float64 0-d tensor with its gradient, and per row, without
    gradients: the maximum logit, the label's logit, and S, the sum of exp(x_j - max) over every
    class but the label's) of float32 `logits` [rows, classes].

    The three per-row values give the accuracy without an argmax: the label is the only maximum
    when its logit equals the maximum and S < 1 (a second maximum adds exp(0) = 1 to S)."""
    return _autograd_function().apply(logits, labels)
