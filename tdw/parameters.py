"""A variant's parameters, declared once.

Each `Parameter` names the `VariantConfig` field it sets and carries everything the rest of the tool
derives from it: the flag (`tdw train --lr`, `tdw sweep --lr 1e-3,3e-3`, the `lr` key of a sweep's
TOML grid), its help, how one value is read from text, whether a sweep may list several values and
the suffix that then tells the variants apart, the Train page's field, and the warehouse column of
the `variants` view. Adding a hyper-parameter is a field on `VariantConfig` and one entry here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from tdw.config import DEFAULT_FAMILY, VariantConfig
from tdw.errors import TdwError
from tdw.schedules import parse_schedule


def parse_betas(text: str) -> tuple[float, float]:
    try:
        betas = tuple(float(x) for x in str(text).split(","))
    except ValueError:
        raise ValueError("expected two numbers 'b1,b2'") from None
    if len(betas) != 2:
        raise ValueError("expected two numbers 'b1,b2'")
    return betas  # type: ignore[return-value]


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("expected true or false")
    return value in ("true", "1", "yes")


@dataclass(frozen=True)
class Parameter:
    field: str  # the VariantConfig field it sets
    help: str
    parse: Callable[[str], Any]  # one value from its text (a flag, an item of a sweep list, a form field)
    flag: str = ""  # the command-line and sweep key, without dashes (default: the field's name)
    sweep: bool = True  # a sweep may list several values
    separator: str = ","  # between a sweep's values
    suffix: str | None = None  # added to variant names when a sweep varies it and the default name does not show it
    column: pl.DataType | None = None  # its column in the warehouse's `variants` view (None: not a column)
    form: str | None = None  # its label on the Train page (None: not on the form)
    form_value: str = ""  # the form's starting text
    default_text: str | None = None  # the default as typed, where its value does not print as one (a tuple)
    architecture: bool = False  # a model dimension: only families that list it in `Family.uses` read it

    @property
    def key(self) -> str:
        return self.flag or self.field

    @property
    def option(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def default(self) -> Any:
        spec = VariantConfig.__dataclass_fields__[self.field]
        return spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default

    def read(self, raw: Any) -> Any:
        """One value; text is parsed, anything else (a TOML number, a default) is taken as it is.
        A bad value is one line naming the option and the value."""
        if not isinstance(raw, str):
            return raw
        try:
            return self.parse(raw.strip())
        except TdwError as error:  # a parser that already names the option (schedules) keeps its line
            raise TdwError(str(error) if str(error).startswith(self.option) else f"{self.option} {raw!r}: {error}") from None
        except (ValueError, TypeError) as error:
            kind = {int: "not an integer", float: "not a number"}.get(self.parse, str(error))
            raise TdwError(f"{self.option} {raw!r}: {kind}") from None

    def read_list(self, raw: Any) -> list:
        """A sweep's values: 'a,b' (schedules 'a|b'), a TOML list, or one value."""
        items = raw if isinstance(raw, list) else raw.split(self.separator) if isinstance(raw, str) else [raw]
        values = [self.read(item) for item in items if not (isinstance(item, str) and not item.strip())]
        if not values:
            raise TdwError(f"{self.option}: no values")
        return values


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("family", "model family (architecture + task), one module in tdw/families/; each has its own defaults",
              str, form="family", form_value=DEFAULT_FAMILY),
    Parameter("p", "the modulus, an integer >= 3: the task is a + b mod p (primes, as in the literature, give the "
              "clean Fourier picture; any p trains)", int, column=pl.Int32, form="p (prime moduli)", form_value="53"),
    Parameter("seed", "model initialization seed", int, column=pl.Int64, form="seeds", form_value="1,2"),
    Parameter("data_seed", "seed of the train/test split", int, column=pl.Int64),
    Parameter("train_frac", "fraction of the p*p pairs used for training", float, suffix="frac", column=pl.Float64,
              form="train fraction", form_value="0.5"),
    Parameter("lr", "AdamW base learning rate", float, suffix="lr", column=pl.Float64, form="learning rates",
              form_value="0.003"),
    Parameter("weight_decay", "AdamW weight decay", float, suffix="wd", column=pl.Float64),
    Parameter("betas", "AdamW betas, 'b1,b2'", parse_betas, sweep=False, default_text="0.9,0.98"),
    Parameter("num_epochs", "number of epochs (full-batch steps)", int, flag="epochs", column=pl.Int32, form="epochs",
              form_value="3000"),
    Parameter("eval_every", "evaluate the test split every N epochs (and at every checkpoint)", int, sweep=False),
    Parameter("lr_schedule", "LR schedule: constant | warmup:epochs=10 | step:every=1000,gamma=0.5 | "
              "cosine:min_factor=0.01 | piecewise:200-2000=0.1 (';' joins ranges); add label=NAME to name it",
              parse_schedule, flag="schedule", separator="|", default_text="constant"),
    Parameter("d_model", "residual width", int, suffix="dm", column=pl.Int32, form="d_model", form_value="128", architecture=True),
    Parameter("n_heads", "attention heads", int, suffix="h", column=pl.Int32, form="n_heads", form_value="4", architecture=True),
    Parameter("d_head", "width of each head", int, suffix="dh", column=pl.Int32, form="d_head", form_value="32", architecture=True),
    Parameter("d_mlp", "MLP neurons", int, suffix="dmlp", column=pl.Int32, form="d_mlp", form_value="512", architecture=True),
    Parameter("train_biases", "train biases too (the published run keeps them at zero)", parse_bool, sweep=False),
)

BY_KEY: dict[str, Parameter] = {p.key: p for p in PARAMETERS}
SWEEPABLE: dict[str, Parameter] = {p.key: p for p in PARAMETERS if p.sweep}
BY_FIELD: dict[str, Parameter] = {p.field: p for p in PARAMETERS}


def build_config(given: dict[str, Any], strict: bool = True, **settings: Any) -> VariantConfig:
    """A validated config from the values a user gave (field -> value; `family` among them or the
    default) on top of that family's defaults. Architecture parameters the family does not read are
    None; giving one is an error naming the family when `strict` (one family), and is dropped for
    that family otherwise (a grid over several families). `settings` are the non-parameter fields
    (checkpoint_epochs, name)."""
    # the registry imports torch: only when a config is built, not for every command's parser
    from tdw.families import get_family

    family_name = given.get("family") or DEFAULT_FAMILY
    family = get_family(family_name)  # an unknown one: one line listing the known families
    values = {**family.defaults, **given, "family": family_name}
    for parameter in PARAMETERS:
        if parameter.architecture and parameter.field not in family.uses:
            if parameter.field in given and strict:
                raise TdwError(f"{parameter.option} {given[parameter.field]!r}: family {family_name} has no "
                               f"{parameter.field} (its dimensions: {', '.join(sorted(family.uses))})")
            values[parameter.field] = None
    return VariantConfig(**values, **settings)


def variant_row(config: VariantConfig) -> dict[str, Any]:
    """The `variants` columns of one run's config: every parameter with a column, and the schedule."""
    row: dict[str, Any] = {"family": config.family, "variant": config.name}
    row.update({p.field: getattr(config, p.field) for p in PARAMETERS if p.column is not None})
    row["schedule"] = json.dumps(config.lr_schedule.to_dict())
    row["schedule_label"] = config.lr_schedule.label
    return row


def variant_schema() -> dict[str, pl.DataType]:
    return {"family": pl.Utf8, "variant": pl.Utf8, **{p.field: p.column for p in PARAMETERS if p.column is not None},
            "schedule": pl.Utf8, "schedule_label": pl.Utf8}
