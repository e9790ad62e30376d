"""AdamW with its state keyed by parameter name, so it round-trips through safetensors."""

from __future__ import annotations

import torch
from torch import nn

from tdw.config import VariantConfig
from tdw.families.base import LATEST_ARITHMETIC
from tdw.model.fast_forward import without_zero_biases


def trainable_parameters(model: nn.Module, config: VariantConfig) -> dict[str, nn.Parameter]:
    """All weights, plus the biases when `train_biases` (the demo keeps biases frozen at zero)."""
    params = {}
    for name, param in model.named_parameters():
        param.requires_grad_(config.trains(name))
        if param.requires_grad:
            params[name] = param
    return params


def forward_parameters(model: nn.Module, trainable: dict[str, nn.Parameter]) -> dict[str, nn.Parameter]:
    """What the family's loss reads while training: every parameter but the frozen biases that are
    zero (the default config's), which the fast forward then skips adding (`without_zero_biases`:
    bit-identical, 1.65 ms less of a 37 ms p=113 step)."""
    return without_zero_biases(dict(model.named_parameters()), keep=frozenset(trainable))


def make_optimizer(params: dict[str, nn.Parameter], config: VariantConfig, on_cuda_graph: bool = False,
                   arithmetic: int = LATEST_ARITHMETIC) -> torch.optim.AdamW:
    """`on_cuda_graph`: the step counters stay on the device (capturable) and the update is one
    fused kernel for all weights; unfused, AdamW was a third of a p=113 GPU epoch (about 30
    small kernels for 9 weights). On a CPU from arithmetic 3 (`tdw.training.arithmetic`) the
    update is fused too, one pass per weight instead of about ten ops (with the one-pass cross
    entropy, a p=113 step 1.089x faster against 1.062x without), in other roundings than the
    loop that runs trained with arithmetic 1 and 2 replay."""
    on_cpu = all(param.device.type == "cpu" for param in params.values())
    return torch.optim.AdamW(
        list(params.values()), lr=config.lr, weight_decay=config.weight_decay, betas=config.betas,
        capturable=on_cuda_graph, fused=on_cuda_graph or (on_cpu and arithmetic >= 3) or None,
    )


def optimizer_state_by_name(optimizer: torch.optim.AdamW, names: list[str]) -> dict[str, torch.Tensor]:
    flat: dict[str, torch.Tensor] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            flat[f"{names[index]}.{key}"] = torch.as_tensor(value).clone()
    return flat


def load_optimizer_state(optimizer: torch.optim.AdamW, names: list[str], flat: dict[str, torch.Tensor]) -> None:
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for index, name in enumerate(names):
        entries = {k[len(name) + 1 :]: v for k, v in flat.items() if k.startswith(name + ".") and k[len(name) + 1 :] in ("step", "exp_avg", "exp_avg_sq")}
        if entries:
            state[index] = entries
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)
