"""GPU training: the published p=113 run and a stacked sweep, end to end through `tdw train`'s
functions, with the epoch step replayed from CUDA graphs against the eager step (the named
baseline: TDW_CUDA_GRAPHS=0, the trainer as it was before graphs).

Prints, in one run on the device present:
  - the published configuration (p=113, 30% train, test loss every epoch, default checkpoints)
    for --epochs epochs (default 25,000: the whole run) with graphs, and the same first
    --baseline-epochs both ways, in s/epoch and the speed-up;
  - a stack of --stack p=113 variants (seeds 0..S-1) for --epochs, and --baseline-epochs both ways;
  - achieved FLOP/s (matmul FLOPs of one epoch counted by torch's FlopCounterMode, times epochs,
    over the wall time, checkpoints included) against the device's fp32 peak (tdw trains in
    fp32 without TF32, so the tensor cores' figures do not apply);
  - whether a checkpoint replayed by `tdw densify` equals the original bit for bit, for a
    single run and a stack member.

    python benchmarks/gpu_training.py                       # on a CUDA machine
    python benchmarks/gpu_training.py --epochs 5000 --stack 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from tdw.config import VariantConfig
from tdw.run_dir import RunDir
from tdw.training.densify import densify
from tdw.training.stacked import train_stacked
from tdw.training.trainer import TrainingSession, train

# dense fp32 (non-tensor-core) peaks, TFLOP/s, from NVIDIA's data sheets
FP32_PEAK_TFLOPS = {"H100 80GB HBM3": 66.9, "H100 PCIe": 51.2, "H200": 66.9, "A100": 19.5}


def fp32_peak(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((peak for key, peak in FP32_PEAK_TFLOPS.items() if key in name), None)


def flops_per_epoch(config: VariantConfig, root: Path) -> int:
    """Matmul FLOPs of one training epoch (train forward and backward, test forward)."""
    session = TrainingSession(RunDir(root / "flops"), config, torch.device("cuda"))
    with FlopCounterMode(display=False) as counter:
        session.device_step(with_test=True, take_step=True)
    return counter.get_total_flops()


def timed(graphs: bool, work) -> float:
    os.environ["TDW_CUDA_GRAPHS"] = "1" if graphs else "0"
    torch.cuda.synchronize()
    started = time.perf_counter()
    work()
    torch.cuda.synchronize()
    return time.perf_counter() - started


def published(epochs: int, seed: int = 999) -> VariantConfig:
    return VariantConfig(num_epochs=epochs, seed=seed)


def replays_exactly(run: RunDir) -> bool:
    """Delete a middle checkpoint, densify it back, compare every weight."""
    epochs = run.checkpoint_epochs()
    epoch = epochs[len(epochs) // 2]
    original = run.load_weights(epoch)
    run.checkpoint_path(epoch).unlink()
    run.optimizer_path(epoch).unlink(missing_ok=True)
    densify(run.path, [epoch], device="cuda", progress=False)
    replayed = run.load_weights(epoch)
    return all(torch.equal(original[k], replayed[k]) for k in original)


def report(label: str, seconds: float, epochs: int, flops: int, peak: float | None, baseline: float | None = None
           ) -> None:
    achieved = flops * epochs / seconds / 1e12
    share = f" = {achieved / peak:.1%} of the fp32 peak" if peak else ""
    versus = f", {baseline / seconds:.2f}x the eager step" if baseline else ""
    print(f"  {label:<44} {seconds:8.2f} s  {seconds / epochs * 1e3:7.3f} ms/epoch  "
          f"{achieved:6.2f} TFLOP/s{share}{versus}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25000)
    parser.add_argument("--baseline-epochs", type=int, default=2000)
    parser.add_argument("--stack", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's fp32 peak, if not known")
    args = parser.parse_args()
    if not torch.cuda.is_available():  # `make bench` runs it everywhere; it measures only on a GPU
        print("gpu_training.py: no CUDA device here; nothing to measure")
        return
    name = torch.cuda.get_device_name()
    peak = fp32_peak(name, args.peak_tflops)
    root = Path(tempfile.mkdtemp(prefix="tdw-gpu-bench-"))
    try:
        flops = flops_per_epoch(published(args.epochs), root)
        print(f"{name}, torch {torch.__version__}; fp32 peak {peak or '?'} TFLOP/s; "
              f"one p=113 epoch = {flops / 1e9:.2f} GFLOP of matmuls", flush=True)

        print(f"published configuration (p=113, seed 999), first {args.baseline_epochs} epochs:")
        short = published(args.baseline_epochs)
        eager = timed(False, lambda: train(short, root / "eager", device="cuda", progress=False))
        report("eager step (baseline)", eager, args.baseline_epochs, flops, peak)
        graphed = timed(True, lambda: train(short, root / "graphs", device="cuda", progress=False))
        report("CUDA graph step", graphed, args.baseline_epochs, flops, peak, eager)
        print(f"  densify replays a checkpoint bit for bit: "
              f"{replays_exactly(RunDir.for_config(root / 'graphs', short))}", flush=True)
        whole = timed(True, lambda: train(published(args.epochs), root / "whole", device="cuda", progress=False))
        report(f"the whole run, {args.epochs} epochs, CUDA graphs", whole, args.epochs, flops, peak)

        print(f"a stack of {args.stack} p=113 variants (seeds 0..{args.stack - 1}), first "
              f"{args.baseline_epochs} epochs:")
        stack = [published(args.baseline_epochs, seed) for seed in range(args.stack)]
        eager = timed(False, lambda: train_stacked(stack, root / "stack-eager", device="cuda", progress=False))
        report("eager step (baseline)", eager, args.baseline_epochs, flops * args.stack, peak)
        graphed = timed(True, lambda: train_stacked(stack, root / "stack-graphs", device="cuda", progress=False))
        report("CUDA graph step", graphed, args.baseline_epochs, flops * args.stack, peak, eager)
        print(f"  densify replays a member's checkpoint bit for bit: "
              f"{replays_exactly(RunDir.for_config(root / 'stack-graphs', stack[-1]))}", flush=True)
        full = [published(args.epochs, seed) for seed in range(args.stack)]
        whole = timed(True, lambda: train_stacked(full, root / "stack-whole", device="cuda", progress=False))
        report(f"{args.stack} x {args.epochs} epochs, CUDA graphs", whole, args.epochs, flops * args.stack, peak)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
