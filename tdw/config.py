"""The variant: everything that determines a training run, validated, named and stored as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from tdw.epoch_spec import default_checkpoint_epochs
from tdw.errors import TdwError
from tdw.schedules import LRSchedule
from tdw.schedules import validate as validate_schedule

MAX_P = 1000  # the p x p grid and the p-token vocabulary grow quadratically; beyond this, nothing fits
DEFAULT_FAMILY = "modular_addition"
DEFAULT_DATA_SEED = 598  # the TransformerLens Grokking demo's split seed


def is_bias(name: str) -> bool:
    """A parameter named `...b_*` (TransformerLens's naming: b_Q, b_in, b_U, ...)."""
    return name.split(".")[-1].startswith("b_")


@dataclass(frozen=True)
class VariantConfig:
    """One training variant. Defaults are the published p=113 grokking run (Nanda et al. 2023)."""

    family: str = DEFAULT_FAMILY
    p: int = 113
    seed: int = 999
    data_seed: int = DEFAULT_DATA_SEED
    train_frac: float = 0.3
    # architecture: a family reads some of these (`Family.uses`); the others are None in its configs
    d_model: int | None = 128
    n_heads: int | None = 4
    d_head: int | None = 32
    d_mlp: int | None = 512
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    num_epochs: int = 25000
    checkpoint_epochs: tuple[int, ...] = ()
    eval_every: int = 1
    lr_schedule: LRSchedule = field(default_factory=LRSchedule)
    train_biases: bool = False  # the TransformerLens demo freezes all biases at zero
    name: str = ""

    def __post_init__(self) -> None:
        if not self.checkpoint_epochs:
            object.__setattr__(self, "checkpoint_epochs", tuple(default_checkpoint_epochs(self.num_epochs)))
        else:
            epochs = sorted({int(e) for e in self.checkpoint_epochs} | {self.num_epochs - 1})
            object.__setattr__(self, "checkpoint_epochs", tuple(epochs))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        self.validate()
        if not self.name:
            object.__setattr__(self, "name", self.default_name())

    def validate(self) -> None:
        def bad(option: str, value: Any, why: str) -> TdwError:
            return TdwError(f"{option} {value}: {why}")

        for option, value in (("--train-frac", self.train_frac), ("--lr", self.lr),
                              ("--weight-decay", self.weight_decay), ("--betas", self.betas)):
            if not all(math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,))):
                raise bad(option, value, "must be a finite number")
        if not isinstance(self.p, int) or self.p < 3:
            raise bad("--p", self.p, "must be an integer >= 3")
        if self.p > MAX_P:
            raise bad("--p", self.p, f"too large (the p x p grid is the data set; at most {MAX_P})")
        if not 0 < self.train_frac < 1:
            raise bad("--train-frac", self.train_frac, "must be in (0, 1)")
        if int(self.train_frac * self.p * self.p) < 1:
            raise bad("--train-frac", self.train_frac, "leaves no training pair")
        if self.lr <= 0:
            raise bad("--lr", self.lr, "must be > 0")
        if self.weight_decay < 0:
            raise bad("--weight-decay", self.weight_decay, "must be >= 0")
        if not all(0 <= b < 1 for b in self.betas):
            raise bad("--betas", self.betas, "each must be in [0, 1)")
        if self.num_epochs < 1:
            raise bad("--epochs", self.num_epochs, "must be >= 1")
        if self.eval_every < 1:
            raise bad("--eval-every", self.eval_every, "must be >= 1")
        for dim in ("d_model", "n_heads", "d_head", "d_mlp"):
            if getattr(self, dim) is not None and getattr(self, dim) < 1:
                raise bad(f"--{dim.replace('_', '-')}", getattr(self, dim), "must be >= 1")
        outside = [e for e in self.checkpoint_epochs if not 0 <= e < self.num_epochs]
        if outside:
            raise bad("--checkpoints", outside[0], f"is outside [0, {self.num_epochs}) (the run's epochs)")
        validate_schedule(self.lr_schedule)
        if self.name and not all(c.isalnum() or c in "-_." for c in self.name):
            raise bad("--name", self.name, "use letters, digits, '-', '_' and '.'")

    def trains(self, name: str) -> bool:
        """Whether training updates the parameter `name`: every weight, the biases only with
        `train_biases` (the optimizer, flatness's perturbations and LLC's sampler all ask this)."""
        return self.train_biases or not is_bias(name)

    def default_name(self) -> str:
        """p{p}_seed{seed}, after the family's name for families other than the default (variant
        names are unique across the warehouse), then the data-seed and schedule suffixes."""
        name = f"p{self.p}_seed{self.seed}"
        if self.family != DEFAULT_FAMILY:
            name = f"{self.family}_{name}"
        if self.data_seed != DEFAULT_DATA_SEED:
            name += f"_data{self.data_seed}"
        if self.lr_schedule.label:
            name += f"_{self.lr_schedule.label}"
        return name

    @property
    def final_epoch(self) -> int:
        return self.num_epochs - 1

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lr_schedule"] = self.lr_schedule.to_dict()
        data["betas"] = list(self.betas)
        data["checkpoint_epochs"] = list(self.checkpoint_epochs)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise TdwError(f"config: unknown field(s) {', '.join(sorted(unknown))}")
        data = dict(data)
        if "lr_schedule" in data and isinstance(data["lr_schedule"], dict):
            data["lr_schedule"] = LRSchedule.from_dict(data["lr_schedule"])
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        if "checkpoint_epochs" in data:
            data["checkpoint_epochs"] = tuple(data["checkpoint_epochs"])
        return cls(**data)

    def replace(self, **changes: Any) -> VariantConfig:
        data = self.to_dict()
        data.update(changes)
        if "lr_schedule" in changes and isinstance(changes["lr_schedule"], LRSchedule):
            data["lr_schedule"] = changes["lr_schedule"].to_dict()
        return VariantConfig.from_dict(data)

    def extended_to(self, num_epochs: int, checkpoints: tuple[int, ...] = ()) -> VariantConfig:
        """This run trained on to `num_epochs` (`tdw extend`), with the checkpoints it has and
        those of `checkpoints` (default: the default schedule of the longer run) past its last
        epoch. Its epochs so far are the longer run's first ones only if every learning rate
        they took stays as it was: a schedule that depends on the length (cosine) is refused."""
        if num_epochs < self.num_epochs:
            raise TdwError(f"--epochs {num_epochs}: the run already has {self.num_epochs} epochs; extend trains it longer")
        if num_epochs == self.num_epochs:
            return self
        schedule = self.lr_schedule
        moved = next((e for e in range(self.num_epochs)
                      if schedule.factor(e, self.num_epochs) != schedule.factor(e, num_epochs)), None)
        if moved is not None:
            raise TdwError(f"--epochs {num_epochs}: the run's {schedule.name} schedule depends on its length, so "
                           f"epoch {moved}'s learning rate would change; train a new variant instead")
        inside = [e for e in checkpoints if e <= self.final_epoch and e not in self.checkpoint_epochs]
        if inside:
            raise TdwError(f"--checkpoints {inside[0]}: inside the trained epochs (0..{self.final_epoch}); "
                           f"add it with `tdw densify`")
        wanted = checkpoints or tuple(default_checkpoint_epochs(num_epochs))
        beyond = tuple(e for e in wanted if e > self.final_epoch)
        return self.replace(num_epochs=num_epochs, checkpoint_epochs=self.checkpoint_epochs + beyond)


def config_differences(a: VariantConfig, b: VariantConfig) -> list[str]:
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: {da[k]!r} != {db[k]!r}" for k in sorted(da) if da[k] != db[k] and k != "checkpoint_epochs"]
