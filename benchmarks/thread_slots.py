"""Why a sweep hands out thread slots: training processes side by side on this machine's cores,
each timing p=113 training steps (default config, test loss every epoch) for a fixed time, in one run.

A sweep's workers train on one thread each, and a run resumes on the thread count that trained
it (bit-exact), so a run that `tdw train` trained on two threads, resumed by a sweep, would run on
two threads beside another one-thread worker: three threads on two cores. The local pool now
gives such a job both slots (tdw.jobs.executors.local_executor). Prints, for each arrangement,
every process's median ms per step and the steps per second of all of them together, against
the named baseline: two one-thread workers side by side (what a sweep runs otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

ARRANGEMENTS = {  # name -> the thread count of each process running at once
    "one thread, alone": [1],
    "two threads, alone": [2],
    "two one-thread workers side by side (baseline)": [1, 1],
    "two threads beside a one-thread worker (oversubscribed)": [2, 1],
}


def time_steps(threads: int, seconds: float, p: int) -> None:
    """Child process: `threads` torch threads, training steps for `seconds`; prints the step times."""
    from tdw.child_processes import set_up_compute_worker

    set_up_compute_worker(threads)
    from tdw.config import VariantConfig
    from tdw.families import get_family
    from tdw.training.optimizer import forward_parameters, make_optimizer, trainable_parameters

    config = VariantConfig(p=p)
    family = get_family(config.family)
    data = family.task_data(config)
    model = family.build_model(config)
    params = trainable_parameters(model, config)
    all_params = forward_parameters(model, params)
    optimizer = make_optimizer(params, config)

    def step() -> None:
        family.losses(all_params, data, with_test=True).train_loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    times, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(" ".join(f"{t:.6f}" for t in times))


def arrangement(threads: list[int], seconds: float, p: int) -> list[list[float]]:
    """Every process's step times, the processes started together."""
    processes = [subprocess.Popen([sys.executable, __file__, "--child", str(n), "--seconds", str(seconds), "--p", str(p)],
                                  stdout=subprocess.PIPE, text=True) for n in threads]
    outputs = [process.communicate()[0] for process in processes]
    if any(process.returncode for process in processes):
        raise SystemExit("a timing process failed")
    return [[float(t) for t in out.split()] for out in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each arrangement trains")
    parser.add_argument("--p", type=int, default=113)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        time_steps(args.child, args.seconds, args.p)
        return
    rates = {}
    print(f"p={args.p}, {args.seconds:.0f} s per arrangement; per process: threads, median ms per step")
    for name, threads in ARRANGEMENTS.items():
        results = arrangement(threads, args.seconds, args.p)
        medians = [statistics.median(times) * 1000 for times in results]
        rates[name] = sum(len(times) for times in results) / args.seconds
        each = ", ".join(f"{n} thread{'s' if n > 1 else ''}: {m:.1f} ms" for n, m in zip(threads, medians, strict=True))
        print(f"{name:<58} {each:<40} {rates[name]:6.1f} steps/s")
    baseline = rates["two one-thread workers side by side (baseline)"]
    for name, rate in rates.items():
        print(f"  {name:<58} {rate / baseline:5.2f}x the baseline's steps per second")


if __name__ == "__main__":
    main()
