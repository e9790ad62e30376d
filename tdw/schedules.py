"""Learning-rate schedules as named policies with parameters.

A schedule is a pure function of the epoch, so a resumed or replayed run gets exactly the
learning rates of the original. Spec syntax: `name` or `name:key=value,key=value`, e.g.
`constant`, `warmup:epochs=10`, `step:every=1000,gamma=0.5`, `cosine:min_factor=0.01`,
`piecewise:200-2000=0.1` (lr x0.1 for epochs 200..1999; several ranges joined by `;`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tdw.errors import TdwError

SCHEDULE_NAMES = ("constant", "warmup", "step", "cosine", "piecewise")


@dataclass(frozen=True)
class LRSchedule:
    name: str = "constant"
    params: dict[str, Any] = field(default_factory=dict)

    def factor(self, epoch: int, num_epochs: int) -> float:
        """Multiplier applied to the base learning rate for the optimizer step taken at `epoch`."""
        p = self.params
        if self.name == "constant":
            return 1.0
        if self.name == "warmup":
            return min((epoch + 1) / p["epochs"], 1.0)
        if self.name == "step":
            return p["gamma"] ** (epoch // p["every"])
        if self.name == "cosine":
            progress = min(epoch / max(num_epochs - 1, 1), 1.0)
            lo = p["min_factor"]
            return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * progress))
        if self.name == "piecewise":
            for start, stop, mult in p["ranges"]:
                if start <= epoch < stop:
                    return mult
            return 1.0
        raise AssertionError(self.name)

    @property
    def label(self) -> str:
        """Short, path-safe suffix for the variant name ('' for the default constant schedule)."""
        p = self.params
        if "label" in p:
            return str(p["label"])
        if self.name == "constant":
            return ""
        if self.name == "warmup":
            return f"warmup{p['epochs']}"
        if self.name == "step":
            return f"step{p['every']}x{_num(p['gamma'])}"
        if self.name == "cosine":
            return f"cosine{_num(p['min_factor'])}"
        parts = [f"{a}-{b}x{_num(m)}" for a, b, m in p["ranges"]]
        return "lr" + "_".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRSchedule:
        params = dict(data.get("params", {}))
        if "ranges" in params:
            params["ranges"] = [tuple(r) for r in params["ranges"]]
        return validate(cls(data["name"], params))


def _num(x: float) -> str:
    return f"{x:g}".replace("-", "m")


def parse_schedule(spec: str) -> LRSchedule:
    """Parse a `--schedule` spec; raises TdwError naming what was wrong."""
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in SCHEDULE_NAMES:
        raise TdwError(f"--schedule {spec!r}: unknown schedule {name!r} (one of {', '.join(SCHEDULE_NAMES)})")
    params: dict[str, Any] = {}
    if name == "piecewise":
        ranges = []
        label = None
        for part in filter(None, (s.strip() for s in rest.split(";"))):
            if part.startswith("label="):
                label = part[len("label="):]
                continue
            try:
                span, mult = part.split("=")
                start, stop = span.split("-")
                ranges.append((int(start), int(stop), float(mult)))
            except ValueError:
                raise TdwError(f"--schedule {spec!r}: piecewise ranges look like 200-2000=0.1") from None
        params["ranges"] = ranges
        if label:
            params["label"] = label
    else:
        for part in filter(None, (s.strip() for s in rest.split(","))):
            key, eq, value = part.partition("=")
            if not eq:
                raise TdwError(f"--schedule {spec!r}: expected key=value, got {part!r}")
            params[key.strip()] = value.strip() if key.strip() == "label" else _to_number(spec, value)
    defaults = {"warmup": {"epochs": 10}, "step": {"every": 1000, "gamma": 0.5}, "cosine": {"min_factor": 0.0}}
    params = {**defaults.get(name, {}), **params}
    return validate(LRSchedule(name, params))


def _to_number(spec: str, value: str) -> float | int:
    try:
        number = float(value)
    except ValueError:
        raise TdwError(f"--schedule {spec!r}: {value!r} is not a number") from None
    return int(number) if number.is_integer() and "." not in value and "e" not in value else number


def validate(schedule: LRSchedule) -> LRSchedule:
    allowed = {
        "constant": set(),
        "warmup": {"epochs"},
        "step": {"every", "gamma"},
        "cosine": {"min_factor"},
        "piecewise": {"ranges"},
    }
    if schedule.name not in allowed:
        raise TdwError(f"schedule {schedule.name!r}: unknown (one of {', '.join(SCHEDULE_NAMES)})")
    unknown = set(schedule.params) - allowed[schedule.name] - {"label"}
    if unknown:
        raise TdwError(f"schedule {schedule.name!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
    p = schedule.params
    if schedule.name == "warmup" and not (isinstance(p["epochs"], int) and p["epochs"] >= 1):
        raise TdwError("schedule warmup: epochs must be an integer >= 1")
    if schedule.name == "step" and not (int(p["every"]) >= 1 and 0 < p["gamma"] <= 1):
        raise TdwError("schedule step: every must be >= 1 and gamma in (0, 1]")
    if schedule.name == "cosine" and not (0 <= p["min_factor"] <= 1):
        raise TdwError("schedule cosine: min_factor must be in [0, 1]")
    if schedule.name == "piecewise":
        if not p["ranges"]:
            raise TdwError("schedule piecewise: give at least one range, e.g. piecewise:200-2000=0.1")
        for start, stop, mult in p["ranges"]:
            if not (0 <= start < stop) or mult <= 0:
                raise TdwError(f"schedule piecewise: range {start}-{stop}={mult} needs 0 <= start < stop and a multiplier > 0")
    if "label" in p and not str(p["label"]).replace("-", "").replace("_", "").isalnum():
        raise TdwError(f"schedule label {p['label']!r}: use letters, digits, '-' and '_'")
    return schedule
