"""The training forward pass: only what the loss at the "=" position needs.

In a 1-layer causal model the logits at "=" depend on the a and b tokens only through
per-token tables: the query is a constant (the "=" token at position 2), keys and values of a
and b are tables over the p tokens, and the values fold through W_O into tables
[token, head, d_model]. The attention half is then computed for the whole p x p grid at once
as batched matmuls (no per-example gathers, whose scatter-add backward dominated), or, on a
CPU, for blocks of the train pairs only with the same bits (`equals_residual_pairs`), and the
MLP and unembedding run only on the rows the loss needs. Equal to
`HookedGrokkingTransformer(tokens)[:, -1]` in logits and gradients (tested to 1e-5). Forwards
that are only read (the test split, flatness) fold W_in and W_U into the tables instead
(`folded_readout_logits`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tdw.config import is_bias
from tdw.deferred_imports import F, torch

if TYPE_CHECKING:
    from jaxtyping import Float, Int
    from torch import Tensor


@dataclass
class TokenTables:
    """Everything attention at "=" needs, as tables over the p tokens: each head's score for an a,
    a b and the "=" itself, and what each source adds to the residual through W_V and W_O."""

    score_a: Tensor  # [token, head]
    score_b: Tensor  # [token, head]
    score_eq: Tensor  # [head]
    out_a: Tensor  # [token, head, d_model]
    out_b: Tensor  # [token, head, d_model]
    out_eq: Tensor  # [head, d_model]
    base: Tensor  # [d_model]: the "=" token's own embedding and b_O


def without_zero_biases(params: dict[str, Tensor], keep: frozenset[str] = frozenset()) -> dict[str, Tensor]:
    """`params` less the biases that are exactly zero (except those in `keep`: a trained bias must
    be there to get its gradient, zero or not). Every function here reads an absent bias as zero
    and then multiplies without adding it, bit-identical to adding the zeros: with the default
    config's biases (frozen at zero, as the TransformerLens demo has them) that saves the copies of
    b_in and the unembedding's bias into every [rows, d] product's output, 1.65 ms of a 37 ms
    p=113 training step."""
    return {name: value for name, value in params.items()
            if not is_bias(name) or name in keep or bool(value.count_nonzero())}


def plus(x: Tensor, bias: Tensor | None) -> Tensor:
    """x + bias, an absent bias being zero (`without_zero_biases`)."""
    return x if bias is None else x + bias


def token_tables(params: dict[str, Tensor], n_tokens: int) -> TokenTables:
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    pre = "blocks.0.attn."
    W_Q, W_K, W_V, W_O = (params[pre + w] for w in ("W_Q", "W_K", "W_V", "W_O"))
    b_Q, b_K, b_V, b_O = (params.get(pre + w) for w in ("b_Q", "b_K", "b_V", "b_O"))
    equals_token = n_tokens
    scale = W_Q.shape[-1] ** -0.5

    x_a = W_E[:n_tokens] + W_pos[0]  # [token, d_model]
    x_b = W_E[:n_tokens] + W_pos[1]
    x_eq = W_E[equals_token] + W_pos[2]  # [d_model]
    q = plus(torch.einsum("d,hde->he", x_eq, W_Q), b_Q)  # [head, d_head]
    score_a = (plus(torch.einsum("td,hde->the", x_a, W_K), b_K) * q).sum(-1) * scale  # [token, head]
    score_b = (plus(torch.einsum("td,hde->the", x_b, W_K), b_K) * q).sum(-1) * scale
    score_eq = (plus(torch.einsum("d,hde->he", x_eq, W_K), b_K) * q).sum(-1) * scale  # [head]

    v_out_bias = None if b_V is None else torch.einsum("he,hef->hf", b_V, W_O)
    out_a = plus(torch.einsum("td,hde,hef->thf", x_a, W_V, W_O), v_out_bias)  # [token, head, d_model]
    out_b = plus(torch.einsum("td,hde,hef->thf", x_b, W_V, W_O), v_out_bias)
    out_eq = plus(torch.einsum("d,hde,hef->hf", x_eq, W_V, W_O), v_out_bias)  # [head, d_model]
    return TokenTables(score_a, score_b, score_eq, out_a, out_b, out_eq, plus(x_eq, b_O))


def grid_pattern(t: TokenTables) -> Float[Tensor, "source a b head"]:
    """Each head's attention at "=" over its three sources (the a token, the b token, "=") for
    every pair: source first, so each source's pattern is one contiguous [a, b, head] block (bmm
    over a strided slice copies it batch by batch, a forward 2x slower, measured at p=113)."""
    n = t.score_a.shape[0]
    scores = torch.stack(
        (t.score_a[:, None].expand(n, n, -1), t.score_b[None].expand(n, n, -1), t.score_eq.expand(n, n, -1)),
        dim=0,
    )
    return torch.softmax(scores, dim=0)


def by_a_weights_and_tables(t: TokenTables, pattern: Tensor) -> tuple[Tensor, Tensor]:
    """What goes into the product batched over a: the weights [a, b, 2 head + 1] (the a source's
    pattern, the "=" source's and a column of ones) and the tables [a, 2 head + 1, d_model] (the a
    token's, the "=" token's, the same for every a, and the base).

    Why one product: the [a, b, d_model] grid is then written once and gets one add, of the b
    source's product batched over b. Three products and three full-grid adds cost 2.8 ms at p=113,
    this 1.9 ms, and the training step 2-3 ms less. (Batching the "=" table over a also keeps its
    gradient a sum of 113 small products: one [head, p*p] @ [p*p, d_model] product ran at ~0.3
    TFLOP/s on an H100.)"""
    n = t.score_a.shape[0]
    weights = torch.cat((pattern[0], pattern[2], torch.ones_like(pattern[2][..., :1])), dim=-1)
    tables = torch.cat((t.out_a, t.out_eq.expand(n, -1, -1), t.base.expand(n, 1, -1)), dim=1)
    return weights, tables


def equals_residual_grid(t: TokenTables) -> Float[Tensor, "pair d_model"]:
    """Residual stream after attention at "=", for every pair (a, b), rows ordered a * n + b."""
    n = t.score_a.shape[0]
    pattern = grid_pattern(t)  # [source, a, b, head]
    by_a = torch.bmm(*by_a_weights_and_tables(t, pattern))  # [a, b, d_model]
    by_b = torch.bmm(pattern[1].transpose(0, 1).contiguous(), t.out_b)  # [b, a, d_model]
    return (by_a + by_b.transpose(0, 1)).reshape(n * n, -1)


@dataclass(frozen=True)
class PairBlocks:
    """Where a set of pairs (a, b) sits in two padded layouts: [a, slot], each a's pairs in
    ascending b, and [b, slot], each b's pairs in ascending a, each padded to its largest group
    (with token 0, whose rows are computed and never read)."""

    b_in_a_slot: Tensor  # [token, width_a]: the b of each (a, slot)
    a_row: Tensor  # [pair]: each pair's row a * width_a + slot in the [a, slot] layout
    a_in_b_slot: Tensor  # [token, width_b]: the a of each (b, slot)
    b_row: Tensor  # [pair]


def pair_blocks(pairs: Int[Tensor, " batch"], n_tokens: int) -> PairBlocks:
    """`PairBlocks` of the pairs a * n + b (a repeated pair gets a slot per repeat)."""
    a, b = pairs // n_tokens, pairs % n_tokens

    def blocks(key: Tensor, other: Tensor) -> tuple[Tensor, Tensor]:
        order = torch.argsort(key * n_tokens + other, stable=True)  # by key, then by the other token
        counts = torch.bincount(key, minlength=n_tokens)
        first = torch.cumsum(counts, 0) - counts  # where each key's run begins in `order`
        slot = torch.empty_like(pairs)
        slot[order] = torch.arange(len(pairs), device=pairs.device) - first[key[order]]
        width = max(int(counts.max()), 1) if len(pairs) else 1
        other_in_slot = torch.zeros(n_tokens, width, dtype=pairs.dtype, device=pairs.device)
        other_in_slot[key, slot] = other
        return other_in_slot, key * width + slot

    b_in_a_slot, a_row = blocks(a, b)
    a_in_b_slot, b_row = blocks(b, a)
    return PairBlocks(b_in_a_slot, a_row, a_in_b_slot, b_row)


def equals_residual_pairs(t: TokenTables, blocks: PairBlocks) -> Float[Tensor, "batch d_model"]:
    """`equals_residual_grid(t)[pairs]`, bit for bit, values and gradients, with the grid's
    products run only on the pairs' blocks (`pair_blocks`) instead of all p x p pairs. (For pairs
    without repeats, as a split or a minibatch drawn without replacement is: a repeated pair's
    gradient is summed after the products here and before them in the grid, equal to rounding.)

    The attention pattern is still the grid's (a 3 x p x p x heads softmax, small); only its
    entries for the pairs are gathered into the blocks, so each pair's weights are the grid's
    bits. Each block is the grid's bmm with fewer rows: every output row is the same K = 9 (or
    4) products summed in the same order, and in the backward each table's gradient is the
    grid's sum over the same rows in the same order, less the test rows' exact zeros. That the
    BLAS gives those same bits is tested (residuals, losses and every gradient, here at one and
    two threads); it is what keeps runs trained by the grid path replaying bit for bit. At p=113
    (3,830 train pairs: blocks of 113 x 44 and 113 x 50 rows against 113 x 113) the rows' forward
    and backward take 3.7 ms against 4.2-4.7, a training step 1.04x (paired A/B)."""
    pattern = grid_pattern(t)  # [source, a, b, head]
    by_a_weights, by_a_tables = by_a_weights_and_tables(t, pattern)
    by_a = torch.bmm(by_a_weights.gather(1, blocks.b_in_a_slot[..., None].expand(-1, -1, by_a_weights.shape[-1])),
                     by_a_tables)  # [a, slot, d_model]
    by_b_weights = pattern[1].transpose(0, 1)  # [b, a, head]
    by_b = torch.bmm(by_b_weights.gather(1, blocks.a_in_b_slot[..., None].expand(-1, -1, by_b_weights.shape[-1])),
                     t.out_b)  # [b, slot, d_model]
    d_model = by_a.shape[-1]
    return by_a.reshape(-1, d_model).index_select(0, blocks.a_row) + by_b.reshape(-1, d_model).index_select(0, blocks.b_row)


def mlp_to_logits(params: dict[str, Tensor]) -> Tensor:
    """W_out @ W_U [d_mlp, vocab]: the MLP's output read straight into the logits."""
    return params["blocks.0.mlp.W_out"] @ params["unembed.W_U"]


def direct_logit_bias(params: dict[str, Tensor]) -> Tensor | None:
    """b_out @ W_U + b_U, what the biases after the MLP add to every row's logits (None: zero)."""
    b_out, b_U = params.get("blocks.0.mlp.b_out"), params.get("unembed.b_U")
    return b_U if b_out is None else plus(b_out @ params["unembed.W_U"], b_U)


def readout_logits(
    params: dict[str, Tensor], resid_mid: Float[Tensor, "batch d_model"]
) -> Float[Tensor, "batch d_vocab_out"]:
    """MLP and unembedding at "=": (post @ W_out + b_out + resid_mid) @ W_U + b_U (absent biases zero)."""
    W_U, W_in, b_in = params["unembed.W_U"], params["blocks.0.mlp.W_in"], params.get("blocks.0.mlp.b_in")
    mlp_post = (torch.mm(resid_mid, W_in) if b_in is None else torch.addmm(b_in, resid_mid, W_in)).relu_()
    # post @ (W_out @ W_U): d_mlp x vocab per example instead of d_mlp x d_model + d_model x vocab.
    bias = direct_logit_bias(params)
    direct = torch.mm(resid_mid, W_U) if bias is None else torch.addmm(bias, resid_mid, W_U)
    if torch._C._functorch.is_batchedtensor(direct):  # under the stacked trainer's vmap: addmm_ has no batching rule
        return torch.addmm(direct, mlp_post, mlp_to_logits(params))
    # in place: `addmm` would first copy `direct` into a fresh [batch, vocab] tensor (0.3-0.7 ms of
    # a p=113 step, same values and gradients); autograd allows it, as no backward reads `direct`
    return direct.addmm_(mlp_post, mlp_to_logits(params))


@dataclass(frozen=True)
class PairBag:
    """A set of pairs as `folded_readout_logits` reads them: in grid order (a-major, without
    repeats), with each pair's 3 x heads + 1 table rows (its a token's per head, its b token's,
    the "=" token's, the base). It depends only on the pairs: the trainer's test split and
    flatness's train split make it once (`pair_bag` costs 0.33 ms at p=113's 8,939 test pairs)."""

    pairs: Tensor  # [pair] a * n + b, ascending
    a: Tensor  # [pair]
    b: Tensor  # [pair]
    rows: Tensor  # [pair, 3 heads + 1] the table rows each pair's bag sums


def pair_bag(pairs: Int[Tensor, " batch"], n_tokens: int, n_heads: int) -> PairBag:
    """The `PairBag` of the set of pairs `pairs` (a * n + b).

    Grid order because consecutive pairs then share their a token's table rows, which the bag
    reads from the L1 cache: 1.48 -> 1.02 ms over the 8,939 test pairs at p=113 (two threads).
    The order comes from a mask of the grid (0.07 ms; a sort took 0.44)."""
    ordered = torch.zeros(n_tokens * n_tokens, dtype=torch.bool, device=pairs.device).index_fill_(0, pairs, True)
    ordered = ordered.nonzero()[:, 0]
    a, b = ordered // n_tokens, ordered % n_tokens
    heads = torch.arange(n_heads, device=pairs.device)
    b_start, eq_start = n_tokens * n_heads, 2 * n_tokens * n_heads  # where each source's rows begin
    rows = torch.cat((a[:, None] * n_heads + heads, b_start + b[:, None] * n_heads + heads,
                      (eq_start + heads).expand(len(ordered), -1), a.new_full((len(ordered), 1), eq_start + n_heads)),
                     dim=1)
    return PairBag(ordered, a, b, rows)


def folded_bag_weights_and_tables(params: dict[str, Tensor], t: TokenTables, bag: PairBag) -> tuple[Tensor, Tensor, Tensor]:
    """What `folded_readout_logits` bags: each pair's weights [pair, 3 heads + 1] (its attention
    pattern, and 1 for the base row) and the token tables folded into the pre-activations
    [rows, d_mlp] and into the direct logits [rows, vocab]."""
    d_model = t.out_eq.shape[1]
    pattern = torch.softmax(torch.stack((t.score_a[bag.a], t.score_b[bag.b], t.score_eq.expand(len(bag.a), -1))), dim=0)
    weights = torch.cat((pattern[0], pattern[1], pattern[2], pattern.new_ones(len(bag.a), 1)), dim=1)
    table = torch.cat((t.out_a.reshape(-1, d_model), t.out_b.reshape(-1, d_model), t.out_eq, t.base[None]))
    # the base row has weight 1 in every bag: the biases join it, once per pair
    into_mlp = plus_on_last_row(table @ params["blocks.0.mlp.W_in"], params.get("blocks.0.mlp.b_in"))
    into_logits = plus_on_last_row(table @ params["unembed.W_U"], direct_logit_bias(params))
    return weights, into_mlp, into_logits


# The read-only products' output is padded to a multiple of 16 columns (one AVX-512 register of
# float32, a 64-byte cache line), and their rows taken in chunks whose pre-activations stay in the
# cache between the bag that writes them and the product that reads them (`folded_readout_logits`).
OUTPUT_COLUMNS_MULTIPLE = 16
READOUT_CHUNK_BYTES = 2 << 20


def folded_readout_logits(params: dict[str, Tensor], t: TokenTables, bag: PairBag) -> Float[Tensor, "batch d_vocab_out"]:
    """`readout_logits` of the residuals at "=" of the bag's pairs (in `bag.pairs`' order), for
    forwards that are only read (no autograd): the test split's every epoch, flatness's 65 train
    losses per checkpoint.

    Each pair's residual at "=" is a weighted sum of 3 x heads + 1 table rows (`PairBag.rows`),
    weighted by the attention pattern. Its products with W_in and W_U are linear, so they are
    taken once on the table, (2p + 1) x heads + 1 rows (909 at p=113), instead of on every pair
    (8,939 test rows), and each pair's pre-activations and direct logits are one weighted
    `embedding_bag` of the folded rows. At p=113 that is 60 million multiply-adds in place of 586
    for the pre-activations: the test split's read-out 1.9 ms less per epoch, a flatness loss
    7.4 -> 6.3 ms on one core.

    What is left is the product of the activations with W_out @ W_U, [8,939, 512] @ [512, 113] at
    p=113, 9.7 of the test split's 13.8 ms per epoch. Its 113 output columns fit the BLAS's
    vector registers badly, so the product writes 128 (zero columns of W_out @ W_U and of the
    direct logits, sliced off after); and it runs on equal chunks of at most 2 MiB of
    pre-activations, each made by the bag just before the product reads it from the cache. Each
    output is the same sum in the same order (MKL blocks the 512 inner terms alike whatever rows
    and columns it is given), so the logits are the one product's bits, which keeps every run's
    test losses replaying bit for bit; measured on an AMD EPYC, and tested wherever the suite runs
    at the published run's checkpoints, at one and two threads. (Not for a handful of rows: MKL
    takes other paths there, and a product of 5 to 11 rows gave other bits at two threads, hence
    equal chunks, never a short last one; from 12 rows to 1,100 every size gave the same bits.) Measured at p=113 (AMD EPYC, two threads): the
    read-out 14.2 -> 11.2 ms, a training step 1.077x faster (paired A/B, 12 rounds).

    The sums are grouped differently from `readout_logits` (equal to about 1e-6 relative,
    tested). Training keeps the residual rows and their products: they are what the run's
    weights are made of, bit for bit, and the bag's backward is a scatter-add over the tables,
    slower than the products it would save (measured: a p=113 step 0.94x)."""
    weights, into_mlp, into_logits = folded_bag_weights_and_tables(params, t, bag)
    to_logits = mlp_to_logits(params)
    vocab = to_logits.shape[1]
    padding = (0, -vocab % OUTPUT_COLUMNS_MULTIPLE)
    logits = F.embedding_bag(bag.rows, F.pad(into_logits, padding), per_sample_weights=weights, mode="sum")
    to_logits = F.pad(to_logits, padding)
    pairs = len(bag.rows)
    chunks = max(1, -(-pairs // max(1, READOUT_CHUNK_BYTES // (into_mlp.shape[1] * into_mlp.element_size()))))
    bounds = [pairs * i // chunks for i in range(chunks + 1)]  # equal chunks: none of a few rows
    for start, end in itertools.pairwise(bounds):
        rows = slice(start, end)
        mlp_pre = F.embedding_bag(bag.rows[rows], into_mlp, per_sample_weights=weights[rows], mode="sum")
        logits[rows].addmm_(mlp_pre.relu_(), to_logits)
    return logits[:, :vocab]


def plus_on_last_row(rows: Tensor, bias: Tensor | None) -> Tensor:
    """`rows` with `bias` added to its last row, in place (an absent bias being zero)."""
    if bias is not None:
        rows[-1] += bias
    return rows


def equals_position_logits(
    params: dict[str, Tensor], a: Int[Tensor, " batch"], b: Int[Tensor, " batch"], n_tokens: int
) -> Float[Tensor, "batch d_vocab_out"]:
    """Logits at "=" for the pairs (a, b) through the whole grid (the stacked trainer's and CUDA's path)."""
    grid = equals_residual_grid(token_tables(params, n_tokens))
    return readout_logits(params, grid[a * n_tokens + b])
