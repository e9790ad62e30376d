"""The interface a model family implements: an architecture, the task it learns, and how the
analysis reads it.

Analyzers never name a family's weights or hooks. They ask the family: the token embedding and
unembedding (for Fourier measures), each neuron's activation over the input grid and its direct
effect on the logits, the weight matrices (for spectra), and which activation hooks exist under
which role (`hooks`: "neurons", "attention"). An analyzer that needs a role the family lacks is
skipped, and the pipeline says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from tdw.deferred_imports import F, torch
from tdw.model.one_pass_cross_entropy import one_pass_cross_entropy

if TYPE_CHECKING:  # torch and TransformerLens are imported where used (1.6 s each), not by `tdw index`
    from torch import Tensor
    from transformer_lens.ActivationCache import ActivationCache
    from transformer_lens.HookedRootModule import HookedRootModule

    from tdw.config import VariantConfig

ALL_HEADS = -1  # `head` of a weight matrix that is not one attention head's
# the newest of the arithmetics a family's training step can take (`tdw.training.arithmetic`)
LATEST_ARITHMETIC = 3


@dataclass
class TaskData:
    """The whole data set (the full input grid), its labels and the train/test split."""

    inputs: Tensor  # [example, ...] what the model is fed (tokens, or the (a, b) pair)
    labels: Tensor  # [example]
    train_idx: Tensor
    test_idx: Tensor

    def to(self, device: torch.device) -> TaskData:
        return TaskData(*(t.to(device) for t in (self.inputs, self.labels, self.train_idx, self.test_idx)))

    @property
    def train_mask(self) -> np.ndarray:
        """Which inputs of the grid (a-major, as a probe selects them) are in the train split: a
        sample probe draws half of its pairs from each split."""
        mask = np.zeros(len(self.labels), dtype=bool)
        mask[self.train_idx.cpu().numpy()] = True
        return mask


@dataclass
class LossResult:
    train_loss: Tensor  # scalar with grad
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None


class Family(Protocol):
    name: ClassVar[str]
    # the architecture parameters (tdw/parameters.py, `architecture=True`) this family reads; the
    # others are None in its configs, and giving one is an error naming the family
    uses: ClassVar[frozenset[str]]
    # its defaults where they differ from VariantConfig's (which are the published transformer run)
    defaults: ClassVar[dict[str, Any]]
    # activation roles -> hook names: "neurons" (the hidden units whose maps over the (a, b) grid
    # the neuron analyzers read), "attention" (TransformerLens `hook_pattern`), "residual" (the
    # residual stream after each layer, a tuple of hooks, for the logit lens), "heads" (each
    # attention head's output before W_O, [.., head, d_head], which an intervention can scale)
    hooks: ClassVar[dict[str, str | tuple[str, ...]]]
    # a neuron is specialized when its best frequency explains at least this share of its variance
    # over the grid (the SQL's neuron_clusters reads it from `variants`)
    specialized_share: ClassVar[float]
    # keyword arguments to the model's forward that compute only the answer's readout: every
    # analyzer and intervention reads activations there, so the others need not be computed
    readout_forward: ClassVar[dict[str, Any]]

    def build_model(self, config: VariantConfig) -> HookedRootModule:
        """The hooked reference model, initialized from `config.seed`."""

    def task_data(self, config: VariantConfig) -> TaskData:
        """Every input the task has (the p x p grid, a-major), its labels and the split from `config.data_seed`."""

    def loss_terms(self, params: dict[str, Tensor], labels: Tensor, train_idx: Tensor, test_idx: Tensor,
                   with_test: bool, arithmetic: int = LATEST_ARITHMETIC) -> tuple[Tensor, ...]:
        """(train loss with grad, train accuracy[, test loss, test accuracy]) as 0-d tensors.
        A pure tensor function, so the stacked trainer can `torch.func.vmap` it over S runs.
        `arithmetic`: the version of the step's rounding a run was trained with
        (`tdw.training.arithmetic`), so that it is continued and replayed bit for bit."""

    def losses(self, params: dict[str, Tensor], data: TaskData, with_test: bool) -> LossResult:
        """Train loss (with grad) and metrics through the family's fast forward."""

    def read_only_train_loss(self, params: dict[str, Tensor], data: TaskData) -> float:
        """The train loss of weights that are only read (no autograd), as cheaply as the family can:
        flatness evaluates 65 per checkpoint. Equal to `losses`' train loss to about 1e-7 relative."""

    def parameter_group(self, name: str) -> str:
        """Which group (embedding, attention, mlp, unembedding) a state-dict key belongs to."""

    def config_from_state_dict(self, state: dict[str, Tensor]) -> dict[str, int]:
        """Model dimensions read off a state dict (for importing foreign checkpoints)."""

    # --- how the analysis reads the model ----------------------------------------------------
    def answer_logits(self, logits: Tensor) -> Tensor:
        """The model's output over the grid -> the answer's logits [pair, p]."""

    def neuron_activations(self, cache: ActivationCache) -> Tensor:
        """The "neurons" hook's activations where the answer is read -> [pair, neuron]."""

    def embedding(self, weights: dict[str, Tensor], p: int) -> Tensor:
        """How the input tokens 0..p-1 enter the model -> [p, d] (rows: tokens)."""

    def unembedding(self, weights: dict[str, Tensor]) -> Tensor:
        """How the output is read into the p answer logits -> [d, p]."""

    def neuron_logits(self, weights: dict[str, Tensor]) -> Tensor:
        """Each neuron's direct effect on the answer logits -> [neuron, p]."""

    def weight_matrices(self, weights: dict[str, Tensor]) -> list[tuple[str, int, Tensor]]:
        """(short name, head or ALL_HEADS, matrix) for every weight matrix whose spectrum is measured;
        the first layer into the neurons is called W_in in every family (the SQL's PR of W_in)."""

    def with_embedding(self, weights: dict[str, Tensor], embedding: Tensor) -> dict[str, Tensor]:
        """`weights` with the token embedding replaced by `embedding` (`embedding`'s shape), for
        interventions on the input's frequencies."""


class ResidualFamily(Protocol):
    """What a family with a residual stream ("residual" in `hooks`) adds, for the logit lens."""

    def residual_stream(self, cache: ActivationCache) -> dict[str, Tensor]:
        """{layer: [pair, d_model]} the residual stream where the answer is read, after each layer, in order."""

    def decode_residual(self, weights: dict[str, Tensor], residual: Tensor) -> Tensor:
        """The answer logits [pair, p] a residual [pair, d_model] would give, read straight out."""


def hook_names(family: Family, roles: set[str] | tuple[str, ...]) -> set[str]:
    """Every hook the family has under `roles` (a role may name one hook or several)."""
    names: set[str] = set()
    for role in roles:
        hooks = family.hooks.get(role, ())
        names.update((hooks,) if isinstance(hooks, str) else hooks)
    return names


def neuron_maps(family: Family, cache: ActivationCache, p: int) -> Tensor:
    """Each neuron's activation over the input grid as a map [neuron, a, b], contiguous map by
    map (the hook's [pair, neuron] transposed is a strided view, and every reader walks maps)."""
    return family.neuron_activations(cache).T.contiguous().reshape(-1, p, p)


# --- what the families share: the task a + b mod p, its split, the loss ------------------------
def grid_pairs(p: int) -> tuple[Tensor, Tensor]:
    """All pairs (a, b), a-major (row index a * p + b), as the TransformerLens Grokking demo orders them."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def split_pairs(config: VariantConfig) -> tuple[Tensor, Tensor]:
    """(train, test) row indices of the grid: a permutation drawn from `config.data_seed`, its first
    `train_frac` of the p * p pairs for training (the demo's split, so seed 598 gives its pairs)."""
    generator = torch.Generator().manual_seed(config.data_seed)
    perm = torch.randperm(config.p * config.p, generator=generator)
    n_train = int(config.train_frac * config.p * config.p)
    return perm[:n_train], perm[n_train:]


def cross_entropy_float64(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross entropy in float64, as Nanda's loss: late-training losses reach 1e-7 and float32 rounds them."""
    return F.cross_entropy(logits.to(torch.float64), labels)


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    return (logits.argmax(-1) == labels).to(torch.float64).mean()


def runs_eager_on_cpu(x: Tensor) -> bool:
    """Whether `x` is a CPU tensor outside vmap: where the losses select rows by their values
    (`argmax_hits`) and a family's read-only forwards may take other groupings of their sums
    (the transformer's `folded_readout_logits`). Under vmap (the stacked trainer) and on CUDA
    (whose step is one captured graph) selecting rows by value cannot run, and the forms those
    paths were built and measured with stay."""
    return x.device.type == "cpu" and not torch._C._functorch.is_batchedtensor(x)


def at_labels(values: Tensor, labels: Tensor) -> Tensor:
    """Each row's entry at its label."""
    return values.gather(-1, labels[..., None])[..., 0]


def argmax_hits(logits: Tensor, labels: Tensor, label_is_max: Tensor, max_is_unique: Tensor) -> Tensor:
    """`logits.argmax(-1) == labels` per row, from what a loss already knows: a row is a hit when
    its label's logit is the maximum and no other logit ties it (argmax takes the first of equal
    maxima). Only rows where the label is a maximum that may be tied are argmaxed.

    Why: torch's argmax over the 113 classes is a reduction with indices, 5-7x slower on a CPU
    than the plain maximum the loss takes anyway (0.59 against 0.09 ms over the 3,830 train rows
    at p=113, 1.1 against 0.24 over the 8,939 test rows). Only where rows can be selected by their
    values (`runs_eager_on_cpu`)."""
    unsure = label_is_max & ~max_is_unique
    if not bool(unsure.any()):
        return label_is_max
    rows = unsure.nonzero()[:, 0]
    return label_is_max.index_put((rows,), logits[rows].argmax(-1) == labels[rows])


_LOG_SURE = math.log(0.6)  # a label's log-probability above it makes its logit the only maximum, rounding included


def train_loss_and_accuracy(logits: Tensor, labels: Tensor, arithmetic: int = LATEST_ARITHMETIC) -> tuple[Tensor, Tensor]:
    """The loss that is trained, with its gradient, and the accuracy, without an argmax
    (`argmax_hits`) where rows can be selected by their values.

    From arithmetic 3, on a CPU outside vmap: `one_pass_cross_entropy` (float32, its own
    backward; the float64 loss to float32's relative precision, 1e-7 losses included).
    Otherwise, and for runs trained with arithmetic 1 or 2: `cross_entropy_float64` bit for bit,
    written out as float64 log-softmax and NLL (what `F.cross_entropy` runs) so that the label's
    log-probability can be read: above log 0.6, no other class can tie the label's logit (two
    equal maxima have a probability of at most 0.5 each)."""
    eager_cpu = runs_eager_on_cpu(logits)
    if arithmetic >= 3 and eager_cpu:
        loss, top, label_logit, others = one_pass_cross_entropy(logits, labels)
        with torch.no_grad():
            hits = argmax_hits(logits, labels, label_logit == top, others < 1.0)
        return loss, hits.to(torch.float64).mean(-1)
    log_probs = torch.log_softmax(logits.to(torch.float64), dim=-1)
    loss = F.nll_loss(log_probs, labels)
    with torch.no_grad():
        if eager_cpu:
            label_is_max = at_labels(logits, labels) == logits.amax(-1)
            max_is_unique = at_labels(log_probs, labels) > _LOG_SURE
            hits = argmax_hits(logits, labels, label_is_max, max_is_unique)
        else:
            hits = logits.argmax(-1) == labels
    return loss, hits.to(torch.float64).mean(-1)


def read_out_loss_and_accuracy(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Cross entropy (float64) and accuracy of logits that are only read (the test split), in one
    pass over float32 logits.

    Why not `cross_entropy_float64` and `accuracy`: they convert the logits to float64, take a
    float64 log-softmax and then an argmax, three passes that cost 2.5 ms per epoch at p=113
    (8,939 test rows); this costs 1.5. It keeps float64's accuracy where float32 would lose it:
    with m the row's maximum, the loss is (m - x_label) + log1p(sum of exp(x_j - m) over every j
    but the first maximum), the difference taken in float64 (exact for float32 inputs) and the
    small sum never added to 1 in float32. The terms are float32 (7 significant digits each), so
    the loss is the float64 loss to about 1e-7 relative at any size, 1e-7 included.

    On a CPU the maximum's index is not taken (a maximum with its index is a reduction 5x slower
    than `amax`, 1.8-2.2 ms of this at p=113): the terms below the maximum are picked by the sign
    of x_j - m (-1 below it, 0 at it), which gives the same sum bit for bit (IEEE rounding is
    symmetric), and the same signs find the rows whose maximum is tied, the only rows where that
    sum is not the one above; those few are summed as above. The accuracy is `argmax_hits`'s.
    Every path gives the same bits."""
    with torch.no_grad():  # only read: the temporaries below are overwritten in place
        label_logit = at_labels(logits, labels)
        if runs_eager_on_cpu(logits):
            top = logits.amax(-1)
            shifted = logits - top[..., None]
            exps = torch.exp(shifted)
            signs = shifted.sign_()  # -1 below the maximum, 0 at each maximum
            others = -exps.mul_(signs).sum(-1)  # the sum below the maximum, bit for bit
            tied = signs.sum(-1) + logits.shape[-1] > 1  # more than one 0: a tied maximum
            hits = argmax_hits(logits, labels, label_logit == top, ~tied)
            if bool(tied.any()):
                rows = tied.nonzero()[:, 0]
                chosen = logits[rows]
                others[rows] = below_first_maximum(chosen, top[rows], chosen.argmax(-1))
        else:
            top, top_index = logits.max(dim=-1)
            others = below_first_maximum(logits, top, top_index)
            hits = top_index == labels
        loss = (top.to(torch.float64) - label_logit.to(torch.float64) + torch.log1p(others.to(torch.float64))).mean(-1)
    return loss, hits.to(torch.float64).mean(-1)


def below_first_maximum(logits: Tensor, top: Tensor, top_index: Tensor) -> Tensor:
    """Per row, the float32 sum of exp(x_j - m) over every j but the first maximum's."""
    exps = torch.exp(logits - top[..., None])
    if torch._C._functorch.is_batchedtensor(exps):  # under the stacked trainer's vmap: scatter_ has no batching rule
        return exps.scatter(-1, top_index[..., None], 0.0).sum(-1)
    # in place on the fresh temporary: `scatter` would copy all of it first
    return exps.scatter_(-1, top_index[..., None], 0.0).sum(-1)


class FamilyBase:
    """What every family's `losses` is: its `loss_terms` read out (families subclass this)."""

    readout_forward: ClassVar[dict[str, Any]] = {}  # the model's plain forward is already only the readout

    def loss_terms(self, params: dict[str, Tensor], labels: Tensor, train_idx: Tensor, test_idx: Tensor,
                   with_test: bool, arithmetic: int = LATEST_ARITHMETIC) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def read_only_train_loss(self, params: dict[str, Tensor], data: TaskData) -> float:
        """Without a faster form of its own, a family's `losses` under no_grad."""
        with torch.no_grad():
            return float(self.losses(params, data, with_test=False).train_loss)

    def losses(self, params: dict[str, Tensor], data: TaskData, with_test: bool) -> LossResult:
        with_test = with_test and len(data.test_idx) > 0
        terms = self.loss_terms(params, data.labels, data.train_idx, data.test_idx, with_test)
        test_loss = test_acc = None
        if with_test:
            test_loss, test_acc = terms[2].item(), terms[3].item()
        return LossResult(terms[0], terms[1].item(), test_loss, test_acc)
