"""The hooked model is TransformerLens-compatible, and the fast forward equals it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformer_lens.model_bridge.sources  # noqa: F401  (attaches boot_native)
from safetensors.torch import load_file
from transformer_lens.model_bridge import TransformerBridge

from tdw.config import VariantConfig
from tdw.families import get_family
from tdw.families.base import read_out_loss_and_accuracy, train_loss_and_accuracy
from tdw.families.mlp import analytic_solution
from tdw.model import (
    TransformerShape,
    equals_position_logits,
    equals_residual_grid,
    equals_residual_pairs,
    fast_forward,
    folded_readout_logits,
    pair_bag,
    pair_blocks,
    readout_logits,
    token_tables,
)
from tdw.model.bridge import bridge_config, bridge_state_dict
from tdw.model.fast_forward import folded_bag_weights_and_tables, mlp_to_logits, without_zero_biases
from tdw.model.transformer import HookedGrokkingTransformer
from tests.conftest import torch_threads

P = 23
PUBLISHED_CHECKPOINTS = Path(__file__).resolve().parents[2] / "shared/runs/p113_seed999/checkpoints"


def random_model(seed: int = 0, with_biases: bool = True) -> HookedGrokkingTransformer:
    model = HookedGrokkingTransformer(TransformerShape(d_vocab=P + 1, d_vocab_out=P, d_model=64, n_heads=4, d_head=16, d_mlp=96))
    model.init_weights(seed)
    if with_biases:
        generator = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.split(".")[-1].startswith("b_"):
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model


def grid_tokens(p: int) -> torch.Tensor:
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack((a, b, torch.full_like(a, p)), dim=1)


def test_logits_equal_transformerlens_native_model_given_same_weights():
    model = random_model()
    bridge = TransformerBridge.boot_native(bridge_config(model.shape))
    bridge.load_state_dict(bridge_state_dict(model.state_dict()))
    tokens = grid_tokens(P)
    with torch.no_grad():
        ours, theirs = model(tokens), bridge(tokens)
    assert ours.shape == theirs.shape == (P * P, 3, P)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_run_with_cache_uses_transformerlens_hook_names():
    model = random_model()
    _, cache = model.run_with_cache(grid_tokens(P)[:7])
    for name in ("hook_embed", "hook_pos_embed", "blocks.0.attn.hook_pattern", "blocks.0.mlp.hook_post", "blocks.0.hook_resid_post"):
        assert name in cache
    assert cache["blocks.0.attn.hook_pattern"].shape == (7, 4, 3, 3)
    assert cache["blocks.0.mlp.hook_post"].shape == (7, 3, 96)
    # causal: "a" attends only to itself
    assert torch.allclose(cache["blocks.0.attn.hook_pattern"][:, :, 0, 0], torch.ones(7, 4))


def test_final_position_forward_equals_the_full_forward_at_the_answer():
    """The analysis's forward (Family.readout_forward) computes the MLP and unembedding at "="
    alone; every hook it keeps equals the full forward's last position, the keys all positions."""
    model = random_model(seed=3)
    tokens = grid_tokens(P)
    with torch.no_grad():
        full_logits, full = model.run_with_cache(tokens)
        last_logits, last = model.run_with_cache(tokens, final_position_only=True)
    assert last_logits.shape == (P * P, 1, P)
    assert torch.allclose(last_logits[:, 0], full_logits[:, -1], atol=1e-6)
    for name in ("blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.hook_resid_mid",
                 "blocks.0.mlp.hook_post", "blocks.0.hook_resid_post"):
        query_axis = 2 if name.endswith("pattern") else 1
        assert last[name].shape[query_axis] == 1, name
        assert torch.allclose(last[name].select(query_axis, 0), full[name].select(query_axis, -1), atol=1e-6), name
    for name in ("blocks.0.hook_resid_pre", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v"):
        assert torch.equal(last[name], full[name]), name
    # nothing was masked at the last query: it sees a, b and "=" (the full pattern's row 2)
    assert (last["blocks.0.attn.hook_pattern"] > 0).all()


def test_state_dict_uses_transformerlens_names_and_shapes():
    shapes = {k: tuple(v.shape) for k, v in random_model().state_dict().items()}
    assert shapes["embed.W_E"] == (P + 1, 64)
    assert shapes["pos_embed.W_pos"] == (3, 64)
    assert shapes["blocks.0.attn.W_Q"] == (4, 64, 16)
    assert shapes["blocks.0.attn.W_O"] == (4, 16, 64)
    assert shapes["blocks.0.mlp.W_in"] == (64, 96)
    assert shapes["unembed.W_U"] == (64, P)


def test_fast_forward_logits_and_gradients_equal_hooked_model():
    model = random_model(seed=5)
    params = dict(model.named_parameters())
    tokens = grid_tokens(P)
    subset = torch.randperm(P * P, generator=torch.Generator().manual_seed(0))[:200]
    labels = (tokens[subset, 0] + tokens[subset, 1]) % P

    reference = model(tokens[subset])[:, -1]
    torch.nn.functional.cross_entropy(reference, labels).backward()
    reference_grads = {k: v.grad.clone() for k, v in params.items()}
    model.zero_grad()

    fast = equals_position_logits(params, tokens[subset, 0], tokens[subset, 1], P)
    torch.nn.functional.cross_entropy(fast, labels).backward()
    assert torch.allclose(fast, reference, atol=1e-5)
    for name, param in params.items():
        assert torch.allclose(param.grad, reference_grads[name], atol=1e-5), name


@pytest.mark.parametrize("arithmetic", [1, 2, 3])
def test_the_trained_loss_and_its_gradients_equal_the_hooked_models_in_every_arithmetic(arithmetic):
    """What a training step differentiates (`loss_terms`, each arithmetic's residuals and cross
    entropy) against the hooked model's float64 `F.cross_entropy` on the same train split: the
    loss to 1e-6 relative, every weight's gradient to 1e-5."""
    model = random_model(seed=7)
    params = dict(model.named_parameters())
    tokens = grid_tokens(P)
    labels = (tokens[:, 0] + tokens[:, 1]) % P
    order = torch.randperm(P * P, generator=torch.Generator().manual_seed(1))
    train_idx, test_idx = order[:150], order[150:]

    reference = torch.nn.functional.cross_entropy(model(tokens[train_idx])[:, -1].double(), labels[train_idx])
    reference.backward()
    reference_grads = {name: value.grad.clone() for name, value in params.items()}
    model.zero_grad()

    family = get_family("modular_addition")
    loss = family.loss_terms(params, labels, train_idx, test_idx, False, arithmetic)[0]
    loss.backward()
    assert loss.dtype == torch.float64 and abs(loss.item() / reference.item() - 1) < 1e-6
    for name, param in params.items():
        assert torch.allclose(param.grad, reference_grads[name], atol=1e-5), name


def test_folded_readout_logits_equal_the_hooked_models_logits_and_the_products():
    """The read-only path (the test split's, flatness's), with W_in and W_U folded into the token
    tables, gives the hooked model's logits at "=" for the bag's pairs, biases included, and the
    grid-and-products path's to float rounding. The bag holds the pairs asked (given in any
    order, with repeats) once each, in grid order."""
    model = random_model(seed=8)
    params = {name: value.detach() for name, value in model.named_parameters()}
    tokens = grid_tokens(P)
    asked = torch.cat((torch.randperm(P * P, generator=torch.Generator().manual_seed(2))[:150], torch.tensor([0, 0, P * P - 1])))
    bag = pair_bag(asked, P, 4)
    assert torch.equal(bag.pairs, torch.unique(asked)) and bag.rows.shape == (len(bag.pairs), 13)
    with torch.no_grad():
        reference = model(tokens[bag.pairs])[:, -1]
        tables = token_tables(params, P)
        ours = folded_readout_logits(params, tables, bag)
        products = readout_logits(params, equals_residual_grid(tables)[bag.pairs])
        unbiased = {name: value for name, value in params.items() if not name.split(".")[-1].startswith("b_")}
        without = folded_readout_logits(unbiased, token_tables(unbiased, P), bag)
    assert ours.shape == reference.shape == (len(bag.pairs), P)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert torch.allclose(ours, products, rtol=1e-6, atol=1e-6)
    # the biases really move the logits, so the comparisons above cover them (b_in and b_out @ W_U + b_U join
    # the base row, once per pair)
    assert (ours - without).abs().max() > 0.1


def one_product_readout_logits(params: dict[str, torch.Tensor], tables, bag) -> torch.Tensor:
    """`folded_readout_logits` as one product over every pair at the vocabulary's own width (the
    code before session 37, which trained every run's recorded test losses until then)."""
    weights, into_mlp, into_logits = folded_bag_weights_and_tables(params, tables, bag)
    mlp_pre = F.embedding_bag(bag.rows, into_mlp, per_sample_weights=weights, mode="sum")
    direct = F.embedding_bag(bag.rows, into_logits, per_sample_weights=weights, mode="sum")
    return direct.addmm_(mlp_pre.relu_(), mlp_to_logits(params))


@pytest.mark.parametrize("threads", [1, 2])
def test_the_read_outs_chunks_of_padded_products_equal_one_product_bit_for_bit(threads, monkeypatch):
    """The read-only logits are taken in chunks of rows, each product writing 128 columns for the
    vocabulary's 113 (`folded_readout_logits`), and are still one product's bits at the vocabulary's
    width: the BLAS sums each output in the same order whatever rows and columns it is given. That
    is what keeps the test losses of runs trained before the chunks replaying bit for bit, so it is
    checked where it matters, at the published run's checkpoints (initialization, memorization,
    circuit formation, cleanup, the end), on both its splits (8,939 and 3,830 rows, in 9 and 4
    chunks), at one and two threads; and with biases on a small model, its 23
    columns padded to 32, its 200 pairs in 5 chunks of 40 rows."""
    config = VariantConfig(p=113, seed=999, data_seed=598, train_frac=0.3)
    family = get_family(config.family)
    data = family.task_data(config)
    checkpoints = [family.build_model(config).state_dict()]
    checkpoints += [load_file(PUBLISHED_CHECKPOINTS / f"checkpoint_epoch_{epoch:05d}.safetensors")
                    for epoch in (1500, 9000, 14000, 24999)]
    cases = [(without_zero_biases(params), 113, split) for params in checkpoints for split in (data.test_idx, data.train_idx)]
    biased = random_model(seed=7, with_biases=True)
    small = ({name: value.detach() for name, value in biased.named_parameters()}, P,
             torch.randperm(P * P, generator=torch.Generator().manual_seed(3))[:200])
    with torch_threads(threads), torch.no_grad():
        for params, p, pairs in cases:
            bag = pair_bag(pairs, p, 4)
            tables = token_tables(params, p)
            ours, reference = folded_readout_logits(params, tables, bag), one_product_readout_logits(params, tables, bag)
            assert ours.shape == reference.shape == (len(pairs), p)
            assert torch.equal(ours, reference)
        monkeypatch.setattr(fast_forward, "READOUT_CHUNK_BYTES", 45 * 96 * 4)  # 45 rows of the small model's 96 neurons
        params, p, pairs = small
        bag, tables = pair_bag(pairs, p, 4), token_tables(params, p)
        ours, reference = folded_readout_logits(params, tables, bag), one_product_readout_logits(params, tables, bag)
    assert "unembed.b_U" in params and torch.equal(ours, reference)
    with torch.no_grad():
        assert folded_readout_logits(params, tables, pair_bag(pairs[:0], p, 4)).shape == (0, p)  # no pairs, no chunk


@pytest.mark.parametrize("family_name", ["modular_addition", "mlp"])
def test_read_only_train_loss_equals_the_training_forwards(family_name):
    """Each family's read-only train loss (flatness's 65 per checkpoint) is its training forward's
    float64 cross entropy to 1e-6 relative, at initialization and, for the MLP's exact adder, at
    losses of 3e-4 and 4e-8, where a float32 loss would have lost the digits."""
    config = VariantConfig(p=P, family=family_name, **({} if family_name == "modular_addition" else
                                                        {"d_model": None, "n_heads": None, "d_head": None}))
    family = get_family(family_name)
    data = family.task_data(config)
    cases = [family.build_model(config).state_dict()]
    if family_name == "mlp":
        exact = analytic_solution(P, [1, 5, 9])
        cases += [{name: value.float() * (scale if name == "W_U" else 1) for name, value in exact.items()} for scale in (2, 4)]
    losses = []
    for params in cases:
        with torch.no_grad():
            reference = float(family.losses(params, data, with_test=False).train_loss)
        assert family.read_only_train_loss(params, data) == pytest.approx(reference, rel=1e-6)
        losses.append(reference)
    assert losses[0] > 1.0 and (family_name == "modular_addition" or losses[-1] < 1e-7)


def test_absent_zero_biases_give_the_same_logits_and_gradients_bit_for_bit():
    """The trainer leaves out the biases frozen at zero (the default config's) and the fast forward
    skips adding them: logits and every weight's gradient are identical to adding the zeros, so
    runs are byte for byte what they were. A nonzero bias, or one in `keep` (trained), stays."""
    model = random_model(seed=4, with_biases=False)
    params = dict(model.named_parameters())
    tokens = grid_tokens(P)
    rows = torch.randperm(P * P, generator=torch.Generator().manual_seed(1))[:300]
    labels = (tokens[rows, 0] + tokens[rows, 1]) % P
    fewer = without_zero_biases(params)
    assert set(params) - set(fewer) == {name for name in params if name.split(".")[-1].startswith("b_")}
    results = []
    for given in (params, fewer):
        logits = equals_position_logits(given, tokens[rows, 0], tokens[rows, 1], P)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        results.append((logits.detach(), {name: p.grad.clone() for name, p in fewer.items()}))
        model.zero_grad()
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.equal(results[0][1][name], results[1][1][name]) for name in fewer)
    assert "blocks.0.mlp.b_in" in without_zero_biases(params, keep=frozenset({"blocks.0.mlp.b_in"}))
    assert without_zero_biases(dict(random_model(seed=4).named_parameters())).keys() == params.keys()


def test_the_cpu_test_split_through_folded_tables_equals_the_products():
    """On a CPU the training step's test loss takes the folded tables, its pairs in grid order;
    under vmap and on CUDA the grid's rows and the products. Both give the same loss to float
    rounding and the same accuracy, and the trained loss is untouched (the same bits)."""
    config = VariantConfig(p=P, seed=3)
    family = get_family(config.family)
    data = family.task_data(config)
    params = {name: value.detach() for name, value in random_model(seed=5).named_parameters()}
    with torch.no_grad():
        terms = family.loss_terms(params, data.labels, data.train_idx, data.test_idx, with_test=True)
        grid = equals_residual_grid(token_tables(params, P))
        products = read_out_loss_and_accuracy(readout_logits(params, grid.index_select(0, data.test_idx)),
                                              data.labels.index_select(0, data.test_idx))
        train = train_loss_and_accuracy(readout_logits(params, grid.index_select(0, data.train_idx)),
                                        data.labels.index_select(0, data.train_idx))
    assert float(terms[2]) == pytest.approx(float(products[0]), rel=1e-6) and float(terms[2]) > 1.0
    assert float(terms[3]) == float(products[1]) and 0.0 < float(terms[3]) < 1.0
    assert torch.equal(terms[0], train[0]) and torch.equal(terms[1], train[1])
    assert not torch.equal(terms[2], products[0])  # really the other path: its sums are grouped otherwise


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", ["p23_biases", "p113_published_split"])
def test_residuals_of_the_pairs_blocks_equal_the_grids_rows_bit_for_bit(case, threads):
    """The train rows' residuals computed in blocks of the pairs only (`equals_residual_pairs`)
    are the grid's rows bit for bit, and so is every gradient through them: the BLAS sums each
    row (and each table's gradient) in the same order when the blocks have fewer rows. That is
    what keeps a run trained on the grid replaying bit for bit, so it is checked at the published
    configuration's shapes and split, at one and two threads, and on a small model with biases
    and a random subset of the pairs."""
    if case == "p23_biases":
        p, params = P, dict(random_model(seed=6).named_parameters())
        pairs = torch.randperm(P * P, generator=torch.Generator().manual_seed(4))[:160]  # unordered, as a split is
    else:
        config = VariantConfig(p=113)
        family = get_family(config.family)
        p, params, pairs = 113, dict(family.build_model(config).named_parameters()), family.task_data(config).train_idx
    weights = torch.randn(len(pairs), params["embed.W_E"].shape[1], generator=torch.Generator().manual_seed(1))
    with torch_threads(threads):
        results = []
        for rows_of in (lambda t: equals_residual_grid(t).index_select(0, pairs),
                        lambda t: equals_residual_pairs(t, pair_blocks(pairs, p))):
            rows = rows_of(token_tables(params, p))
            (rows * weights).sum().backward()
            results.append((rows.detach(), {name: value.grad for name, value in params.items()}))
            for value in params.values():
                value.grad = None
    (grid_rows, grid_grads), (block_rows, block_grads) = results
    assert torch.equal(block_rows, grid_rows)
    assert all(torch.equal(block_grads[name], grid_grads[name]) for name in grid_grads if grid_grads[name] is not None)
    assert grid_grads["blocks.0.attn.W_K"].abs().max() > 0  # the gradient reaches the attention scores
