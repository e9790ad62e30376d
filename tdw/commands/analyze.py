"""tdw analyze: run analyzers over a run's checkpoints into tidy Parquet."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "analyze",
        help="analyze a run's checkpoints",
        description="Run analyzers over every checkpoint (one load and at most one forward pass per "
        "checkpoint) into RUN/artifacts/<table>/*.parquet. Re-running skips what is up to date.",
    )
    cmd.add_argument("run", nargs="?", help="run directory, e.g. results/modular_addition/p53_seed999")
    cmd.add_argument("--analyzers", default=None, help="comma-separated analyzer names (default: all but the opt-in llc; see --list)")
    cmd.add_argument("--epochs", default=None, help="only these checkpoint epochs: list and start:stop:step ranges")
    cmd.add_argument("--force", action="store_true", help="recompute even up-to-date artifacts")
    cmd.add_argument("--device", default="cpu", help="cpu or cuda")
    cmd.add_argument("--workers", type=workers_argument, default="auto", metavar="N",
                     help="analyze the checkpoints in N processes, each with its share of the threads (default auto: "
                     "on a CPU one per thread, at most 2, and one per 16 checkpoints to analyze; on a GPU one)")
    cmd.add_argument("--list", action="store_true", help="list the analyzers and exit")
    cmd.add_argument("--trace", default=None, metavar="PROBE",
                     help="compute the per-input traces (logit_lens, answer_frequencies) on this probe, a name "
                     "(tdw probe) or a spec, from now on for this run (default: auto, the grid up to p=64, else sample:1024)")
    cmd.add_argument("--trace-add", default=None, metavar="PROBE",
                     help="add these inputs (a name, a spec, a list like 4+29,17+3) to the run's traced probe: its "
                     "traces are computed on the union from now on, and now (the traced analyzers only, unless "
                     "--analyzers names others; an analyzed trace keeps its inputs and computes the new ones)")
    cmd.add_argument("--llc-step", default=None, metavar="FACTOR",
                     help="the llc analyzer's SGLD step for this run from now on, as a fraction of the default in "
                     "(0, 1], or auto: the largest of 1, 1/2, 1/4, 1/8 whose chains are sound at --epochs (default: "
                     "5 checkpoints across the run); then re-estimates the run's LLC where it has one and at --epochs")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse whose catalog names the probes (--trace, --trace-add)")
    cmd.add_argument("--trajectory-basis", default=None, metavar="NAME",
                     help="instead of RUN's analyzers: fit the shared trajectory basis NAME (one PCA of several "
                     "same-shape runs' trajectories) on --variants, or refit it on its members")
    cmd.add_argument("--variants", default=None, metavar="A,B,...",
                     help="with --trajectory-basis: the runs to fit it on, variant names or run directories")
    cmd.add_argument("--results", default="results", help="with --trajectory-basis: where the runs are")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.add_argument("--job-db", default=None, metavar="DB",
                     help="run as a job tracked in the catalog beside this warehouse, and re-index it when done "
                     "(what the dashboard's Analyze page does)")
    return cmd


def workers_argument(text: str) -> int | str:
    """--workers: "auto" or a whole number (>= 1 is checked where the run is analyzed)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number or auto") from None


def run(args: argparse.Namespace) -> int:
    from tdw.analysis.pipeline import AnalysisPipeline
    from tdw.analyzers import all_analyzers
    from tdw.epoch_spec import parse_epoch_spec
    from tdw.errors import TdwError

    if args.list:
        for name, analyzer in all_analyzers().items():
            opt_in = "" if analyzer.default else " (opt-in: run when named)"
            print(f"{name:<22} v{analyzer.version}  {analyzer.requires:<11} {analyzer.description}{opt_in}")
        return 0
    if args.trajectory_basis is not None:
        return fit_basis(args)
    if args.variants is not None:
        raise TdwError("--variants: only with --trajectory-basis NAME")
    if not args.run:
        raise TdwError("RUN: which run directory to analyze (e.g. results/modular_addition/p53_seed999)")
    names = [n.strip() for n in args.analyzers.split(",") if n.strip()] if args.analyzers else None
    if names is None and args.trace_add is not None:  # inputs added to a run's traces: those traces, not a full analysis
        names = [name for name, analyzer in all_analyzers().items() if analyzer.traced]
    epochs = parse_epoch_spec(args.epochs, "--epochs") if args.epochs else None
    if args.trace is not None and args.trace_add is not None:
        raise TdwError("--trace and --trace-add: give one (--trace replaces the traced probe, --trace-add adds to it)")
    if args.trace is not None or args.trace_add is not None:
        set_trace(args.run, args.trace if args.trace is not None else args.trace_add, args.db, add=args.trace_add is not None)
    if args.llc_step is not None:
        names, epochs = set_llc_step(args.run, args.llc_step, names, epochs)
        if names is not None and not names:
            return 0
    if args.job_db:
        from tdw.jobs.sweep import run_analysis_job

        said = ({"trace_add": args.trace_add} if args.trace_add is not None  # what the job lists say it does
                else {"trace": args.trace} if args.trace is not None else {})
        if args.llc_step is not None:
            said["llc_step"] = args.llc_step.strip()
        outcome = run_analysis_job(args.run, args.job_db, names, epochs, args.force, args.device, args.workers, said or None)
        print(f"job {outcome.job_id} {outcome.variant}: {outcome.state}" + (f": {outcome.error.splitlines()[0]}" if outcome.error else ""))
        return 0 if outcome.state == "done" else 1
    report = AnalysisPipeline(args.run, device=args.device).run(names, epochs, args.force, progress=not args.quiet,
                                                                workers=args.workers)
    print(report.summary())
    return 0


def fit_basis(args: argparse.Namespace) -> int:
    from tdw.analysis.shared_basis import check_name, fit_shared_basis, resolve_members
    from tdw.errors import TdwError

    if args.run:
        raise TdwError(f"{args.run}: --trajectory-basis takes its runs from --variants, not RUN")
    name = check_name(args.trajectory_basis)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants is not None else None
    result = fit_shared_basis(name, resolve_members(args.results, name, variants), args.results)
    print(f"trajectory basis {name}: fitted on {len(result.members)} runs ({', '.join(result.members)})")
    for group, ratio in result.explained.items():
        print(f"  {group:<12} explained variance " + ", ".join(f"PC{i + 1} {r:.1%}" for i, r in enumerate(ratio)))
    print("wrote artifacts/trajectory_basis/" + f"{name}.parquet in each run; run tdw index to query trajectory_basis, trajectory_loops")
    return 0


def set_llc_step(run: str, text: str, names: list[str] | None, epochs: list[int] | None) -> tuple[list[str] | None, list[int] | None]:
    """Record the llc step for the run (a bad value, or a calibration with no sound step, is one
    line and records nothing) and say what to analyze now: the analyzers named, at the epochs
    given; else llc alone, where the run has LLC estimates and at the epochs given (none of
    either: nothing now, ([], None))."""
    import math

    from tdw.analysis.artifacts import artifact_epochs
    from tdw.analyzers.llc import STEP_FACTOR, calibrate_step, check_step_factor, step_factor
    from tdw.errors import TdwError
    from tdw.locks import exclusive
    from tdw.run_dir import RunDir

    run_dir = RunDir(run)
    if not run_dir.exists():
        raise TdwError(f"{run}: not a run directory (no config.json)")
    before = step_factor(run_dir.analysis_settings("llc"), run_dir.analysis_settings_path)
    if text.strip() == "auto":
        available = run_dir.checkpoint_epochs()
        if not available:
            raise TdwError(f"{run}: no checkpoints to calibrate the llc step on")
        chosen_epochs = epochs or sorted({available[round(i * (len(available) - 1) / 4)] for i in range(5)})
        calibration = calibrate_step(run_dir, chosen_epochs)
        print(f"{run_dir.variant}: the LLC of all weights at each step factor (unsound: a chain spiked or left the finite numbers)")
        print(f"{'factor':>8} " + " ".join(f"{epoch:>10}" for epoch in calibration.epochs))
        for factor, row in calibration.trials.items():
            cells = ["-" if epoch not in row else "unsound" if math.isnan(row[epoch]) else f"{row[epoch]:.2f}"
                     for epoch in calibration.epochs]
            print(f"{factor:>8g} " + " ".join(f"{cell:>10}" for cell in cells))
        if calibration.chosen is None:
            raise TdwError(f"--llc-step auto: no step down to {min(calibration.trials):g} of the default is sound at "
                           f"epochs {', '.join(map(str, calibration.epochs))}; nothing recorded")
        factor = calibration.chosen
    else:
        factor = check_step_factor(text.strip(), "--llc-step")
    settings = {key: value for key, value in run_dir.analysis_settings("llc").items() if key != STEP_FACTOR}
    # never under a running analysis of the run (one line, nothing written); the default is kept as
    # no setting, so estimates made before settings existed stay up to date
    with exclusive(run_dir.path, "analyze", "analyzed"):
        run_dir.write_analysis_settings("llc", settings if factor == 1 else {**settings, STEP_FACTOR: factor})
    print(f"{run_dir.variant}: llc step factor {factor:g} from now on (was {before:g})")
    if names is not None:
        return names, epochs
    # the run's estimates are redone with the new step, so one run's LLC series has one step
    estimated = set(artifact_epochs(run_dir.artifacts_dir, "llc")) & set(run_dir.checkpoint_epochs())
    redo = sorted(estimated | set(epochs or []))
    if not redo:
        print(f"no LLC estimates to redo; estimate some: tdw analyze {run} --analyzers llc --epochs 0:E:S")
        return [], None
    return ["llc"], redo


def set_trace(run: str, text: str, db: str, add: bool = False) -> None:
    """Resolve the probe (a bad one is one line, and nothing is written) and keep its spec in the run;
    with `add`, the union of the run's traced probe and this one (the published run's 1,024 sampled
    inputs stay traced beside the one a researcher asks about)."""
    from tdw.errors import TdwError
    from tdw.families import get_family
    from tdw.probes import AUTO, resolve_probe, trace_probe, union, without_auto
    from tdw.run_dir import RunDir
    from tdw.warehouse.catalog import named_probes

    run_dir = RunDir(run)
    config = run_dir.read_config()
    p, named = config.p, named_probes(db)
    train = get_family(config.family).task_data(config).train_mask  # a sample's pairs follow the run's split
    if text.strip() == AUTO and not add:
        spec = AUTO
    else:
        probe = resolve_probe(without_auto(text, p), named)
        if add:
            traced = trace_probe(run_dir.trace_spec(), p)
            if not (probe.select(p, train) & ~traced.select(p, train)).any():
                print(f"{run_dir.variant}: {probe.spec} is traced already (probe {traced.spec})")
                return
            probe = union([traced, probe])
        spec = probe.spec
    if not trace_probe(spec, p).select(p, train).any():  # resolving it also checks that it fits this run
        raise TdwError(f"--trace {text.strip()}: selects no input of {run_dir.variant} (p={p}); nothing would be traced")
    run_dir.write_trace_spec(spec)
