"""Seconds per epoch at p=113 (default config, full batch, test loss every epoch).

Compares, in one run and on the same weights and split:
  fast    tdw's trainer forward (only what the "=" logits need; attention over the grid as tables)
  hooked  tdw's HookedGrokkingTransformer trained naively (all 3 positions, hooks in place)
  tl      TransformerLens 4's native model, TransformerBridge.boot_native, same config
Each step is: train forward + backward + AdamW step, then the test loss under no_grad.
Prints medians over repeated epochs (the trainers' epochs taken in turn) and the ratios against
`tl` (the named baseline), and the fast step against its estimated limit: its matmul FLOPs
(counted by torch's FlopCounterMode) at the rate this CPU multiplies two 2048 x 2048 fp32
matrices, measured in the same run. The limit
is what the step would take if nothing but its matmuls cost time, each at that rate. A second,
tighter bound replays the step's own matrix products alone, each at its own shape and strides
(recorded below autograd, the backward's included): what the step would take if everything but
them were free.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import transformer_lens.model_bridge.sources  # noqa: F401
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from transformer_lens.model_bridge import TransformerBridge

from tdw.config import VariantConfig
from tdw.denormals import flush_denormals_to_zero
from tdw.families import get_family
from tdw.memory import reuse_freed_memory
from tdw.model.bridge import bridge_config, bridge_state_dict
from tdw.training.optimizer import forward_parameters, make_optimizer, trainable_parameters


def time_epochs(step, epochs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_interleaved(steps: dict, rounds: int, block: int = 5) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Median seconds per step of each of `steps`, timed in turn: every round runs each step once
    untimed, then `block` timed epochs of it back to back. Also each round's median per step, for
    ratios paired within a round.

    Why in turn: the machine's speed drifts from minute to minute (neighbours on a shared host), and
    timing the trainers one after another gave whichever ran in a slow minute a worse ratio (the
    fast trainer, timed first for 15 epochs, measured 3.9-4.7x where 40 epochs gave 5.7x). Why in
    blocks: a trainer runs its epochs back to back, its tensors warm in the caches; alternating
    single epochs evicts them every time (the fast trainer then measured 39-40 ms against ~30).
    Why paired: a slow minute that falls on one trainer's blocks moves the medians of all rounds,
    but only its own round's ratio."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    by_round: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            step()
            block_times = []
            for _ in range(block):
                start = time.perf_counter()
                step()
                block_times.append(time.perf_counter() - start)
            times[name] += block_times
            by_round[name].append(statistics.median(block_times))
    return {name: statistics.median(t) for name, t in times.items()}, by_round


def matmul_flops_per_second(size: int = 2048, repeats: int = 7) -> float:
    """What this machine does in a large fp32 matmul, with torch's threads: the rate the limit assumes."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = time_epochs(lambda: a @ b, repeats, warmup=2)
    return 2 * size**3 / seconds


def addmm_in_place_flops(self_shape, a_shape, b_shape, out_shape=None, **kwargs) -> int:
    """FLOPs of `acc.addmm_(a, b)`: torch's counter knows `addmm`, not the in-place form."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


MATRIX_PRODUCTS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.addmm_.default,
                   torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default}


class RecordMatrixProducts(TorchDispatchMode):
    """Every matrix product a step dispatches (the backward's included), as (op, arguments)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in MATRIX_PRODUCTS:
            self.calls.append((func, args, kwargs or {}))
        return func(*args, **(kwargs or {}))


def replayed_products_seconds(step, repeats: int = 7) -> float:
    """The step's matrix products alone: each replayed on fresh tensors of its shapes and
    strides, median of `repeats`, summed."""
    with RecordMatrixProducts() as recorder:
        step()

    def fresh(value):
        if not isinstance(value, torch.Tensor):
            return value
        extent = 1 + sum((size - 1) * stride for size, stride in zip(value.shape, value.stride(), strict=True))
        storage = torch.randn(extent, dtype=value.dtype, device=value.device)  # expanded inputs keep stride 0
        return storage.as_strided(value.shape, value.stride())

    total = 0.0
    for func, args, kwargs in recorder.calls:
        args = [fresh(a) for a in args]
        total += time_epochs(lambda func=func, args=args, kwargs=kwargs: func(*args, **kwargs), repeats, warmup=1)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=int, default=113)
    parser.add_argument("--rounds", type=int, default=12, help="rounds of 5 timed epochs per trainer, the trainers in turn")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--allocator", choices=("tdw", "default"), default="tdw",
                        help="tdw: freed memory kept for reuse, as `tdw train` runs (tdw.memory); default: glibc's")
    args = parser.parse_args()
    flush_denormals_to_zero()  # as the CLI's compute commands (tdw.denormals)
    if args.allocator == "tdw":
        reuse_freed_memory()
    device = torch.device(args.device)

    config = VariantConfig(p=args.p)
    family = get_family(config.family)
    data = family.task_data(config).to(device)
    tokens, labels = data.inputs, data.labels
    train_idx, test_idx = data.train_idx, data.test_idx

    model = family.build_model(config).to(device)
    params = trainable_parameters(model, config)
    all_params = forward_parameters(model, params)  # as the trainer: the frozen zero biases left out
    optimizer = make_optimizer(params, config)

    def fast_step() -> None:
        result = family.losses(all_params, data, with_test=True)
        result.train_loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def naive_step_for(module, optimizer):
        def step() -> None:
            logits = module(tokens[train_idx])[:, -1]
            F.cross_entropy(logits.double(), labels[train_idx]).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                F.cross_entropy(module(tokens[test_idx])[:, -1].double(), labels[test_idx])
        return step

    hooked = family.build_model(config).to(device)
    hooked_opt = make_optimizer(trainable_parameters(hooked, config), config)

    bridge = TransformerBridge.boot_native(bridge_config(model.shape, seed=config.seed), device=device)
    bridge.load_state_dict(bridge_state_dict(model.state_dict()))
    bridge_params = [p for n, p in bridge.named_parameters() if not n.endswith("bias")]
    for n, p in bridge.named_parameters():
        p.requires_grad_(not n.endswith("bias"))
    bridge_opt = torch.optim.AdamW(bridge_params, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)

    results, by_round = time_interleaved({"fast": fast_step, "hooked": naive_step_for(hooked, hooked_opt),
                                "tl": naive_step_for(bridge, bridge_opt)}, rounds=args.rounds)
    print(f"p={args.p} train={len(train_idx)} test={len(test_idx)} device={device} threads={torch.get_num_threads()} "
          f"allocator: {args.allocator}")
    print(f"{'trainer':<8} {'s/epoch (median)':>18} {'speed-up vs tl':>15}")
    for name, seconds in results.items():
        print(f"{name:<8} {seconds:>18.4f} {results['tl'] / seconds:>14.2f}x")
    paired = sorted(tl / fast for tl, fast in zip(by_round["tl"], by_round["fast"]))
    print(f"fast vs tl paired within each round: median {statistics.median(paired):.2f}x "
          f"(quartiles {paired[len(paired) // 4]:.2f}-{paired[(3 * len(paired)) // 4]:.2f}x over {len(paired)} rounds)")
    if device.type == "cpu":
        with FlopCounterMode(display=False, custom_mapping={torch.ops.aten.addmm_: addmm_in_place_flops}) as counter:
            fast_step()
        flops = counter.get_total_flops()
        rate = matmul_flops_per_second()
        limit = flops / rate
        print(f"fast step: {flops / 1e9:.2f} GFLOP of matmuls; this CPU's fp32 matmul rate {rate / 1e9:.0f} GFLOP/s "
              f"(2048 x 2048): limit {limit * 1000:.1f} ms/epoch; the fast trainer is at {limit / results['fast']:.0%} "
              f"of it; at the limit it would be {results['tl'] / limit:.2f}x tl")
        products = replayed_products_seconds(fast_step)
        print(f"fast step's own matrix products, replayed alone at their shapes: {products * 1000:.1f} ms/epoch "
              f"({products / results['fast']:.0%} of the step); with everything else free it would be "
              f"{results['tl'] / products:.2f}x tl")


if __name__ == "__main__":
    main()
