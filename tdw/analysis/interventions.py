"""Interventions: change one part of a checkpoint's computation and record, per input, what that
did to its loss, margin and correctness against the unmodified model.

What can be changed (each scaled by `gain`; 0 ablates):
- a frequency (its cos and sin components, or one of them), `where`:
  - `embed`: the frequency-k component of the token embedding (its projection onto cos/sin(w_k t)
    over the tokens t), so the model never sees that frequency of its inputs;
  - `neurons`: the neurons whose activation is specialized on frequency k at that checkpoint (best
    frequency k, explaining at least the family's `specialized_share` of their variance);
  - `logits`: the frequency-k component of the answer logits over the answers c;
- a list of neurons (the family's "neurons" hook);
- an attention head (the family's "heads" hook; a family without heads says so in one line).

Results are tidy Parquet, `RUN/artifacts/interventions/<spec>__epoch_<E>.parquet`, one row per
(epoch, input, measure, model) with model `baseline` or `intervened`; `tdw index` puts them in the
warehouse (`interventions`, and the `intervention_effects` mart), keyed by the spec's text, so
"which inputs does ablating frequency 14 break" is one query.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tdw.analysis.analyzer import TableSpec
from tdw.analysis.artifacts import file_digest, read_manifest, tidy, write_manifest
from tdw.analysis.key_frequencies import specialized_frequency
from tdw.analyzers.input_outcomes import outcomes
from tdw.atomic import write_with
from tdw.config import VariantConfig
from tdw.deferred_imports import torch
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.families.base import Family, hook_names, neuron_maps
from tdw.locks import exclusive
from tdw.probes import Probe
from tdw.run_dir import RunDir

if TYPE_CHECKING:
    from torch import Tensor

WHERE = ("embed", "neurons", "logits")
COMPONENTS = ("both", "cos", "sin")
TABLE = "interventions"
SPEC = TableSpec({"intervention": pl.Utf8, "a": pl.Int16, "b": pl.Int16, "split": pl.Utf8,
                  "measure": pl.Utf8, "model": pl.Utf8})
MEASURES = ("loss", "margin", "correct")


@dataclass(frozen=True)
class Intervention:
    """What to change: exactly one of frequency, neurons, head; scaled by gain."""

    frequency: int | None = None
    where: str = "embed"
    component: str = "both"  # of the frequency: cos, sin or both (embed and logits)
    neurons: tuple[int, ...] = ()
    head: int | None = None
    gain: float = 0.0

    def __post_init__(self) -> None:
        chosen = sum((self.frequency is not None, bool(self.neurons), self.head is not None))
        if chosen != 1:
            raise TdwError("intervene: give exactly one of --ablate-frequency K, --ablate-neurons N,N, --ablate-head H")
        if self.frequency is not None and self.where not in WHERE:
            raise TdwError(f"--where {self.where}: one of {', '.join(WHERE)}")
        if self.component not in COMPONENTS:
            raise TdwError(f"--component {self.component}: one of {', '.join(COMPONENTS)}")
        if self.component != "both" and (self.frequency is None or self.where == "neurons"):
            raise TdwError(f"--component {self.component}: only with --ablate-frequency K --where embed or logits")
        if not math.isfinite(self.gain):
            raise TdwError(f"--gain {self.gain}: must be a finite number (0 ablates, 0.5 halves, 2 doubles)")

    @property
    def key(self) -> str:
        """The spec as text: how the warehouse names it."""
        gain = f"gain={self.gain:g}"
        if self.frequency is not None:
            part = "" if self.component == "both" else f" component={self.component}"
            return f"frequency={self.frequency}{part} where={self.where} {gain}"
        if self.neurons:
            return f"neurons={','.join(map(str, self.neurons))} {gain}"
        return f"head={self.head} {gain}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.=,-]+", "_", self.key).replace(",", "-")[:120]


def frequency_projector(p: int, k: int, dtype: torch.dtype | None = None, component: str = "both") -> Tensor:
    """[p, p] the orthogonal projector onto span{cos(w_k t), sin(w_k t)} over t = 0..p-1 (or onto
    one of them): (2/p) cos(w_k t) cos(w_k t') + (2/p) sin(w_k t) sin(w_k t') = (2/p) cos(w_k (t - t'))
    for 0 < k < p/2. In float64 unless `dtype` says otherwise."""
    t = torch.arange(p, dtype=torch.float64)
    w = 2 * math.pi * k / p
    cos, sin = torch.cos(w * t), torch.sin(w * t)
    projector = torch.zeros(p, p, dtype=torch.float64)
    if component in ("both", "cos"):
        projector += (2.0 / p) * torch.outer(cos, cos)
    if component in ("both", "sin"):
        projector += (2.0 / p) * torch.outer(sin, sin)
    return projector if dtype is None else projector.to(dtype)


def specialized_neurons(maps: Tensor, frequency: int, share: float) -> list[int]:
    """Neurons [neuron, a, b] whose best frequency is `frequency` with at least `share` of their variance."""
    return torch.nonzero(specialized_frequency(maps, share) == frequency).flatten().tolist()


def check(intervention: Intervention, family: Family, config: VariantConfig, weights: dict[str, Tensor]) -> None:
    """One line naming what does not fit this run."""
    p = config.p
    if intervention.frequency is not None and not 0 < intervention.frequency <= (p - 1) // 2:
        raise TdwError(f"--ablate-frequency {intervention.frequency}: frequencies of p={p} run 1..{(p - 1) // 2}")
    if intervention.neurons:
        n = family.neuron_logits(weights).shape[0]
        bad = [i for i in intervention.neurons if not 0 <= i < n]
        if bad:
            raise TdwError(f"--ablate-neurons: neuron {bad[0]} does not exist (the model has neurons 0..{n - 1})")
    if intervention.head is not None:
        if "heads" not in family.hooks:
            raise TdwError(f"--ablate-head: family {family.name} has no attention heads")
        if not 0 <= intervention.head < config.n_heads:
            raise TdwError(f"--ablate-head {intervention.head}: the model has heads 0..{config.n_heads - 1}")


def intervened_logits(intervention: Intervention, family: Family, model, weights: dict[str, Tensor],
                      inputs: Tensor, p: int) -> tuple[Tensor, Tensor, list[int]]:
    """(baseline answer logits, intervened answer logits, neurons scaled) over `inputs`."""
    g = intervention.gain
    model.load_state_dict(weights)
    readout = family.readout_forward
    baseline_out, cache = model.run_with_cache(inputs, names_filter=lambda name: name in hook_names(family, ("neurons",)),
                                               **readout)
    baseline = family.answer_logits(baseline_out)
    if intervention.frequency is not None and intervention.where == "logits":
        projector = frequency_projector(p, intervention.frequency, baseline.dtype, intervention.component).to(baseline.device)
        return baseline, baseline - (1 - g) * baseline @ projector, []
    if intervention.frequency is not None and intervention.where == "embed":
        embedding = family.embedding(weights, p)
        projector = frequency_projector(p, intervention.frequency, embedding.dtype, intervention.component).to(embedding.device)
        model.load_state_dict(family.with_embedding(weights, embedding - (1 - g) * projector @ embedding))
        try:
            return baseline, family.answer_logits(model(inputs, **readout)), []
        finally:
            model.load_state_dict(weights)
    if intervention.head is not None:
        head = intervention.head

        def scale_head(z: Tensor, hook) -> Tensor:
            z[..., head, :] *= g
            return z
        return baseline, family.answer_logits(model.run_with_hooks(inputs, fwd_hooks=[(family.hooks["heads"], scale_head)], **readout)), []
    if intervention.neurons:
        chosen = list(intervention.neurons)
    else:  # the neurons specialized on the frequency at this checkpoint, over the full grid
        chosen = specialized_neurons(neuron_maps(family, cache, p), intervention.frequency, family.specialized_share)
    index = torch.tensor(chosen, dtype=torch.long, device=inputs.device)

    def scale_neurons(activation: Tensor, hook) -> Tensor:
        activation[..., index] *= g
        return activation
    logits = model.run_with_hooks(inputs, fwd_hooks=[(family.hooks["neurons"], scale_neurons)], **readout)
    return baseline, family.answer_logits(logits), chosen


@dataclass
class InterventionResult:
    key: str
    files: list[Path]
    summary: list[str]  # one line per epoch


def run_intervention(run_dir: str | Path, intervention: Intervention, epochs: list[int], probe: Probe) -> InterventionResult:
    """Apply `intervention` at each of `epochs` over `probe`'s inputs and write the results (every
    epoch is checked before anything is written)."""
    run = RunDir(run_dir)
    config = run.read_config()
    family = get_family(config.family)
    p = config.p
    available = set(run.checkpoint_epochs())
    missing = [e for e in epochs if e not in available]
    if missing:
        raise TdwError(f"--epoch {missing[0]}: the run has no checkpoint there "
                       f"({len(available)} checkpoints, {min(available, default=0)}..{max(available, default=0)})")
    data = family.task_data(config)
    train = data.train_mask
    mask = probe.select(p, train)
    rows = torch.from_numpy(np.flatnonzero(mask))
    if len(rows) == 0:
        raise TdwError(f"--probe {probe.spec}: selects no input of this run")
    model = family.build_model(config)
    check(intervention, family, config, run.load_weights(epochs[0]))
    frames, summary = [], []
    with torch.no_grad():
        for epoch in epochs:
            weights = run.load_weights(epoch)
            baseline, changed, chosen = intervened_logits(intervention, family, model, weights, data.inputs, p)
            labels = data.labels[rows]
            measured = {name: outcomes(logits[rows], labels) for name, logits in (("baseline", baseline), ("intervened", changed))}
            frame = outcome_frame(intervention.key, rows, p, train, measured)
            frames.append((epoch, tidy(frame, SPEC, config.name, epoch)))
            before, after = (float((m[:, 2] == 0).double().mean()) for m in measured.values())
            extra = f", {len(chosen)} neurons scaled" if intervention.frequency is not None and intervention.where == "neurons" else ""
            summary.append(f"epoch {epoch}: accuracy {before:.1%} -> {after:.1%} on {len(rows)} inputs{extra}")
    folder = run.artifacts_dir / TABLE
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with exclusive(run.path, "analyze", "analyzed"):  # the manifest is the pipeline's too
        manifest = read_manifest(run.artifacts_dir)
        for epoch, frame in frames:
            path = folder / f"{intervention.slug}__epoch_{epoch:05d}.parquet"
            write_with(path, lambda tmp, frame=frame: frame.write_parquet(tmp, compression="zstd"))
            manifest[str(path.relative_to(run.artifacts_dir))] = file_digest(path)
            paths.append(path)
        write_manifest(run.artifacts_dir, manifest)
    return InterventionResult(intervention.key, paths, summary)


def outcome_frame(key: str, rows: Tensor, p: int, train: np.ndarray, measured: dict[str, Tensor]) -> pl.DataFrame:
    """Long rows: per input, measure (loss, margin, correct) and model (baseline, intervened)."""
    parts = []
    index = rows.numpy()
    split = np.where(train[index], "train", "test")
    for model_name, values in measured.items():
        columns = {"loss": values[:, 3], "margin": values[:, 1], "correct": (values[:, 2] == 0).double()}
        for measure in MEASURES:
            parts.append(pl.DataFrame({"intervention": key, "a": index // p, "b": index % p, "split": split,
                                       "measure": measure, "model": model_name,
                                       "value": columns[measure].float().numpy()}))
    return pl.concat(parts)
