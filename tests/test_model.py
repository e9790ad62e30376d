"""The hooked model is TransformerLens-compatible, and the fast forward equals it."""

from __future__ import annotations

import torch
import transformer_lens.model_bridge.sources  # noqa: F401  (attaches boot_native)
from transformer_lens.model_bridge import TransformerBridge

from tdw.model import HookedGrokkingTransformer, TransformerShape, equals_position_logits
from tdw.model.bridge import bridge_config, bridge_state_dict

P = 23


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
