"""tdw intervene: ablate or scale a frequency, neurons or a head at chosen checkpoints, and record
each input's loss, margin and correctness against the unmodified model (tdw/analysis/interventions.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "intervene",
        help="ablate or scale a frequency, neurons or a head; record per-input effects",
        description="Apply one intervention at the given checkpoints and write per-input results to "
        "RUN/artifacts/interventions/ (tdw index puts them in the warehouse: interventions, "
        "intervention_effects, intervention_summary). Example: tdw intervene RUN --epoch 3000 "
        "--ablate-frequency 14 --where embed",
    )
    cmd.add_argument("run", help="run directory, e.g. results/modular_addition/p53_seed999")
    cmd.add_argument("--epoch", required=True, help="checkpoint epochs: a list and start:stop:step ranges, or 'last'")
    cmd.add_argument("--ablate-frequency", type=int, default=None, metavar="K", help="change frequency K")
    cmd.add_argument("--where", default="embed", choices=["embed", "neurons", "logits"],
                     help="with --ablate-frequency: in the token embedding, in the neurons specialized on K, or in the logits")
    cmd.add_argument("--component", default="both", choices=["both", "cos", "sin"],
                     help="with --ablate-frequency --where embed or logits: only the cos or the sin component")
    cmd.add_argument("--ablate-neurons", default=None, metavar="N,N", help="change these neurons")
    cmd.add_argument("--ablate-head", type=int, default=None, metavar="H", help="change this attention head's output")
    cmd.add_argument("--gain", type=float, default=0.0, help="scale the component by this (0 ablates)")
    cmd.add_argument("--probe", default="grid", help="which inputs to record: a probe name or spec (tdw probe)")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse whose catalog names the probes")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.analysis.interventions import Intervention, run_intervention
    from tdw.epoch_spec import parse_epoch_spec
    from tdw.errors import TdwError
    from tdw.probes import resolve_probe
    from tdw.run_dir import RunDir
    from tdw.warehouse.catalog import named_probes

    run_dir = RunDir(args.run)
    run_dir.read_config()  # one line when it is not a run
    if args.epoch.strip() == "last":
        epochs = run_dir.checkpoint_epochs()[-1:]
        if not epochs:
            raise TdwError(f"{args.run}: no checkpoints")
    else:
        epochs = parse_epoch_spec(args.epoch, "--epoch")
    neurons: tuple[int, ...] = ()
    if args.ablate_neurons is not None:
        try:
            neurons = tuple(int(n) for n in args.ablate_neurons.split(",") if n.strip())
        except ValueError:
            raise TdwError(f"--ablate-neurons {args.ablate_neurons}: a comma-separated list of neuron numbers") from None
        if not neurons:
            raise TdwError("--ablate-neurons: name at least one neuron")
    intervention = Intervention(frequency=args.ablate_frequency, where=args.where, component=args.component, neurons=neurons,
                                head=args.ablate_head, gain=args.gain)
    probe = resolve_probe(args.probe, named_probes(args.db))
    result = run_intervention(run_dir.path, intervention, epochs, probe)
    print(f"{result.key} on {run_dir.read_config().name}:")
    for line in result.summary:
        print(f"  {line}")
    print(f"wrote {len(result.files)} files under {run_dir.artifacts_dir / 'interventions'}; run tdw index to query them")
    return 0
