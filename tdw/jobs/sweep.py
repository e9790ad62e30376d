"""A sweep: validate every grid point, skip complete runs, record one job per variant, run them
on an executor, and re-index after each finished job so results show up in the warehouse (and
the dashboard) while the rest still run. A failed job is reported and never stops the others."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tdw.config import VariantConfig, config_differences
from tdw.errors import TdwError
from tdw.jobs.executors import get_executor
from tdw.jobs.worker import Heartbeat, JobOutcome, worker_threads
from tdw.run_dir import RunDir
from tdw.training.device import resolve_device
from tdw.training.lifecycle import prepare_run, recorded_threads, resume_threads
from tdw.training.stacked import stack_key
from tdw.warehouse.catalog import Catalog, catalog_path


@dataclass
class SweepReport:
    sweep_id: int
    skipped: list[str] = field(default_factory=list)
    outcomes: list[JobOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.state != "done"]

    def summary(self) -> str:
        done = sum(o.state == "done" for o in self.outcomes)
        lines = [(f"sweep {self.sweep_id}: {done} done, {len(self.failed)} failed or cancelled, "
                 f"{len(self.skipped)} already complete")]
        lines += [f"  job {o.job_id} {o.variant}: {o.state}: {(o.error or '').splitlines()[0]}" for o in self.failed]
        return "\n".join(lines)


def is_complete(run: RunDir, analyze: bool) -> bool:
    if not run.exists() or run.read_metadata().get("status") != "complete":
        return False
    return not analyze or (run.artifacts_dir.exists() and any(run.artifacts_dir.iterdir()))


def extension_of(config: VariantConfig, results: Path) -> VariantConfig:
    """`--extend`: the grid point `config` as its existing run trained on to `config`'s length
    (`VariantConfig.extended_to`, with the grid's checkpoints past the run's end), or `config`
    itself where no run exists yet. Only the length may differ from the run's settings."""
    run = RunDir.for_config(results, config)
    if not run.exists():
        return config
    existing = run.read_config()
    other = [d for d in config_differences(existing, config) if not d.startswith("num_epochs:")]
    if other:
        raise TdwError(f"{run.path} exists with a different config ({'; '.join(other)}); "
                       "--extend trains runs on with their own settings, only longer")
    beyond = tuple(e for e in config.checkpoint_epochs if e > existing.final_epoch)
    return existing.extended_to(config.num_epochs, beyond)


def parse_stack(raw: str | int) -> int | str:
    """`--stack auto|N`: how many same-shape variants one worker trains as one stacked model."""
    if raw == "auto":
        return raw
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise TdwError(f"--stack {raw}: expected auto or a number of variants >= 1") from None
    if size < 1:
        raise TdwError(f"--stack {raw}: expected auto or a number of variants >= 1")
    return size


def stack_tasks(configs: list[VariantConfig], stack: int | str, device: str) -> list[list[VariantConfig]]:
    """Group same-shape variants into stacks. `auto` stacks every same-shape variant on a GPU,
    where one run leaves the device idle, and none on a CPU, where separate workers are as fast
    (benchmarks/sweep_throughput.py measures both)."""
    size = (len(configs) if device == "cuda" else 1) if stack == "auto" else int(stack)
    groups: dict[tuple, list[VariantConfig]] = {}
    for config in configs:
        groups.setdefault(stack_key(config), []).append(config)
    tasks = []
    for group in groups.values():
        chunks = -(-len(group) // size)
        tasks += [group[i::chunks] for i in range(chunks)]
    return tasks


def run_sweep(configs: list[VariantConfig], results: str | Path, db: str | Path, executor: str = "local",
              workers: int = 1, address: str | None = None, analyze: bool = False, index: bool = True,
              on_outcome: Callable[[JobOutcome], None] | None = None, device: str = "auto",
              stack: int | str = "auto", extend: bool = False) -> SweepReport:
    """`extend`: the grid's existing runs are trained on to its length (`tdw extend` for each),
    each in its own job (a run is extended by the trainer that wrote it); new ones are trained."""
    results, db = Path(results), Path(db)
    if not isinstance(workers, int) or workers < 1:
        raise TdwError(f"--workers {workers}: must be an integer >= 1")
    # a clash with an existing run is one line, before anything runs
    torch_device = resolve_device(device)
    stack = parse_stack(stack)
    growing: set[str] = set()
    if extend:
        configs = [extension_of(config, results) for config in configs]
        growing = {c.name for c in configs if (run := RunDir.for_config(results, c)).exists() and run.read_config() != c}
    prepared = {config.name: prepare_run(config, results, force=False) for config in configs
                if config.name not in growing}
    device = torch_device.type
    stack = 1 if extend else stack  # a run is extended by the trainer that wrote it, alone
    runner = get_executor(executor, workers, address)
    catalog = Catalog(catalog_path(db))
    try:
        todo = [c for c in configs
                if c.name in growing or not is_complete(RunDir.for_config(results, c), analyze)]
        sweep_id = catalog.create_job("sweep", {"variants": [c.name for c in configs], "executor": executor,
                                                "workers": workers, "analyze": analyze, "device": device,
                                                "stack": stack, "extend": extend}, total=len(todo))
        report = SweepReport(sweep_id, skipped=[c.name for c in configs if c not in todo])
        tasks = []
        for stacked in stack_tasks(todo, stack, device):
            task = []
            for config in stacked:
                # an extension trains on the thread count the run records, like a resume: its slots
                threads = (recorded_threads(RunDir.for_config(results, config), torch_device) if config.name in growing
                           else resume_threads(*prepared[config.name], torch_device))
                params = {"config": config.to_dict(), "results": str(results.resolve()), "analyze": analyze,
                          "device": device, "stacked_with": len(stacked), "threads": threads or worker_threads(),
                          "extend": extend}
                job_id = catalog.create_job("train", params, variant=config.name, total=config.num_epochs,
                                            sweep_id=sweep_id)
                task.append((job_id, "train", params))
            tasks.append(task)
        catalog.update_job(sweep_id, state="running")
        with Heartbeat(catalog, sweep_id) as beat:  # the sweep beats too, so only a dead one goes stale
            for outcome in runner.run(tasks, str(catalog.path.resolve())):
                report.outcomes.append(outcome)
                beat.progress = len(report.outcomes)
                if index and outcome.state == "done":
                    from tdw.warehouse.indexer import build_index

                    build_index(results, db)
                if on_outcome:
                    on_outcome(outcome)
            beat.flush()
        if index and not tasks and not db.exists():
            from tdw.warehouse.indexer import build_index

            build_index(results, db)
        catalog.update_job(sweep_id, state="failed" if report.failed else "done",
                           error=report.summary() if report.failed else None)
        return report
    finally:
        runner.close()
        catalog.dispose()


def run_analysis_job(run_path: str | Path, db: str | Path, analyzers: list[str] | None = None,
                     epochs: list[int] | None = None, force: bool = False, device: str = "cpu",
                     workers: int | str = 1, said: dict[str, str] | None = None) -> JobOutcome:
    """Analyze one run as a catalog job in this process (with `tdw analyze`'s own options: force,
    device, worker processes), then re-index its results folder. `said` records, for the job
    lists, what the command changed before the job: the traced probe ({"trace": spec} or
    {"trace_add": spec}) and the llc step ({"llc_step": "auto" or a factor})."""
    from tdw.jobs.worker import run_job
    from tdw.warehouse.indexer import build_index

    run, db = RunDir(run_path), Path(db)
    if not run.exists():
        raise TdwError(f"{run_path}: not a run directory (no config.json)")
    catalog = Catalog(catalog_path(db))
    try:
        spec = {"run": str(run.path.resolve()), "analyzers": analyzers, "epochs": epochs, "force": force,
                "device": device, "workers": workers, **(said or {})}
        job_id = catalog.create_job("analyze", spec, variant=run.read_config().name, total=len(run.checkpoint_epochs()))
    finally:
        catalog.dispose()
    outcome = run_job(job_id, "analyze", {**spec, "variant": run.read_config().name},
                      str(catalog_path(db).resolve()))
    if outcome.state == "done":
        build_index(run.path.parent.parent, db)
    return outcome
