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
    if args.job_db:
        from tdw.jobs.sweep import run_analysis_job

        trace = ({"trace_add": args.trace_add} if args.trace_add is not None
                 else {"trace": args.trace} if args.trace is not None else None)  # for the job lists
        outcome = run_analysis_job(args.run, args.job_db, names, epochs, args.force, args.device, args.workers, trace)
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
