"""CPU training steps late in a run, with denormals kept (the baseline) and flushed to zero.

Late in training the logits' gradient fills with denormal floats, which x86 cores multiply tens
of times slower (tdw/denormals.py). This starts the fast trainer at checkpoints of a real run
(default: the published p=113 run; its AdamW state where the run has it), times full-batch
steps at their weights (test loss included, as `tdw train` runs them; lr 0, so the weights stay
there), and prints the medians and their ratio. Each setting runs in a fresh process: the
setting must be made before torch creates its threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO.parent / "shared" / "runs" / "p113_seed999"


def time_steps(run_path: Path, epoch: int, steps: int, flush: bool) -> dict[str, float]:
    """In this process: `steps` training steps from the run's checkpoint at `epoch`."""
    import torch

    if flush:
        from tdw.denormals import flush_denormals_to_zero

        flush_denormals_to_zero()
    from tdw.families import get_family
    from tdw.memory import reuse_freed_memory
    from tdw.run_dir import RunDir
    from tdw.training.optimizer import load_optimizer_state, make_optimizer, trainable_parameters

    reuse_freed_memory()
    run = RunDir(run_path)
    config = run.read_config()
    family = get_family(config.family)
    data = family.task_data(config)
    model = family.build_model(config)
    model.load_state_dict(run.load_weights(epoch))
    params = trainable_parameters(model, config)
    optimizer = make_optimizer(params, config)
    if run.optimizer_path(epoch).exists():
        load_optimizer_state(optimizer, list(params), run.load_optimizer(epoch))
    for group in optimizer.param_groups:
        # lr 0: every step does all of a step's arithmetic, and the weights stay the checkpoint's,
        # so all the steps measure its regime (a fresh AdamW, where the run ships weights alone,
        # would first move every weight by ~lr and leave it)
        group["lr"] = 0.0
    all_params = dict(model.named_parameters())
    seconds, result = [], None
    for _ in range(steps):
        start = time.perf_counter()
        result = family.losses(all_params, data, with_test=True)
        result.train_loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
    return {"median_s": statistics.median(seconds[2:]), "train_loss": result.train_loss.item(),
            "test_loss": result.test_loss, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=PUBLISHED)
    parser.add_argument("--epochs", default="0,1500,5000,14000,24999", help="checkpoint epochs to start from")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--child", nargs=3, metavar=("EPOCH", "STEPS", "FLUSH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        epoch, steps, flush = int(args.child[0]), int(args.child[1]), args.child[2] == "1"
        print(json.dumps(time_steps(args.run, epoch, steps, flush)))
        return
    print(f"run {args.run}, {args.steps} steps from each checkpoint (median of the last {args.steps - 2})")
    print(f"{'epoch':>6} {'train loss':>11} {'kept, ms':>9} {'flushed, ms':>12} {'speed-up':>9}")
    for epoch in (int(e) for e in args.epochs.split(",")):
        figures = {}
        for flush in (False, True):
            out = subprocess.run([sys.executable, __file__, "--run", str(args.run), "--child", str(epoch), str(args.steps),
                                  str(int(flush))], capture_output=True, text=True, check=True).stdout
            figures[flush] = json.loads(out.strip().splitlines()[-1])
        kept, flushed = figures[False]["median_s"], figures[True]["median_s"]
        print(f"{epoch:>6} {figures[False]['train_loss']:>11.3g} {kept * 1000:>9.1f} {flushed * 1000:>12.1f} {kept / flushed:>8.2f}x")


if __name__ == "__main__":
    main()
