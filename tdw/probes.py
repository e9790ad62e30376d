"""Probes: named sets of inputs (a, b), defined once and reused across runs.

A probe is a spec string, resolved against a run (its p and its train/test split) into a mask over
the p x p grid (a-major, as `grid_pairs` orders it):

- `grid` (every pair), `train`, `test`: the run's split;
- `sample:N`: N pairs drawn from a fixed seed, half train and half test (as far as each has them);
- an explicit list, `4+29,17+3`;
- a predicate over a, b and p, `a < b`, `(a + b) % p < 10`, `a == b and a % 2 == 0`: Python-like
  syntax (arithmetic, comparisons, and/or/not), parsed by our own evaluator (never `eval`), so a
  spec can name nothing but a, b and p;
- a union of any of these, `sample:1024 | 4+29 | a == b`: the pairs any of them selects (so a
  researcher adds the input they care about to a run's traced sample instead of replacing it).

Named probes live in the catalog (`tdw probe add NAME SPEC`) and, once indexed, in the warehouse
(`probes`, `probe_pairs`). The built-in names `grid`, `train` and `test` need no definition. The
per-input trace analyzers (logit lens, answer frequencies) compute on a run's traced probe
(`tdw analyze --trace PROBE`, or `--trace-add PROBE` for the union with the one it has), by
default `auto`: the grid when p <= 64, else `sample:1024`.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass

import numpy as np

from tdw.errors import TdwError

BUILT_IN = ("grid", "train", "test")
AUTO = "auto"
AUTO_GRID_MAX_P = 64  # the whole grid is traced up to this p (64 x 64 = 4,096 pairs)
AUTO_SAMPLE = 1024
SAMPLE_SEED = 20231  # sample:N draws the same pairs for every run of the same p and split
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
PAIR_LIST = re.compile(r"^\s*\d+\s*\+\s*\d+\s*(,\s*\d+\s*\+\s*\d+\s*)*$")
UNION = "|"  # never part of a predicate: `|` is not among its operators

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Mod: np.mod,
           ast.FloorDiv: np.floor_divide, ast.Pow: operator.pow}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}


@dataclass(frozen=True)
class Probe:
    """A parsed probe spec; `select` resolves it against one run."""

    spec: str
    kind: str  # grid | train | test | sample | pairs | predicate | union
    pairs: tuple[tuple[int, int], ...] = ()
    size: int = 0
    tree: ast.Expression | None = None
    parts: tuple[Probe, ...] = ()  # a union's probes

    def select(self, p: int, train_mask: np.ndarray) -> np.ndarray:
        """A boolean mask over the p * p grid (a-major); TdwError when the spec does not fit this run."""
        if self.kind == "union":
            return np.logical_or.reduce([part.select(p, train_mask) for part in self.parts])
        n = p * p
        if self.kind == "grid":
            return np.ones(n, dtype=bool)
        if self.kind == "train":
            return train_mask.copy()
        if self.kind == "test":
            return ~train_mask
        if self.kind == "sample":
            return sample_mask(p, train_mask, self.size)
        if self.kind == "pairs":
            mask = np.zeros(n, dtype=bool)
            for a, b in self.pairs:
                if a >= p or b >= p:
                    raise TdwError(f"probe {self.spec!r}: {a}+{b} is not an input of p={p} (a and b run 0..{p - 1})")
                mask[a * p + b] = True
            return mask
        a, b = np.divmod(np.arange(n, dtype=np.int64), p)
        result = _evaluate(self.tree.body, {"a": a, "b": b, "p": np.int64(p)}, self.spec)
        if not isinstance(result, np.ndarray) or result.dtype != bool:
            raise TdwError(f"probe {self.spec!r}: a predicate must be a comparison (e.g. a < b), not a number")
        return result


def sample_mask(p: int, train_mask: np.ndarray, size: int) -> np.ndarray:
    """`size` pairs, half from train and half from test where each has enough, from a fixed seed."""
    rng = np.random.default_rng(SAMPLE_SEED)
    train, test = np.flatnonzero(train_mask), np.flatnonzero(~train_mask)
    n_train = min(len(train), max(size // 2, size - len(test)))
    n_test = min(len(test), size - n_train)
    mask = np.zeros(p * p, dtype=bool)
    mask[rng.permutation(train)[:n_train]] = True
    mask[rng.permutation(test)[:n_test]] = True
    return mask


def parse_probe(spec: str) -> Probe:
    """A Probe from its spec, or TdwError naming what is wrong with it (one line)."""
    text = spec.strip()
    if not text:
        raise TdwError("probe: empty spec; give grid, train, test, sample:N, a list like 4+29,17+3 or a predicate like a < b")
    if UNION in text:
        return union([parse_probe(part) if part.strip() else _empty_part(spec) for part in text.split(UNION)])
    if text == AUTO:
        raise TdwError(f"probe {spec!r}: auto is what a run traces by default ({auto_spec(1)} up to p={AUTO_GRID_MAX_P}, "
                       f"else {auto_spec(AUTO_GRID_MAX_P + 1)}), known only with the run: give it to tdw analyze --trace")
    if text in BUILT_IN:
        return Probe(text, text)
    if text.startswith("sample:"):
        size = text.removeprefix("sample:")
        if not size.isdigit() or int(size) < 1:
            raise TdwError(f"probe {spec!r}: sample:N needs a positive whole number of pairs")
        return Probe(text, "sample", size=int(size))
    if PAIR_LIST.match(text):
        pairs = tuple(tuple(int(x) for x in item.split("+")) for item in text.replace(" ", "").split(","))
        return Probe(text, "pairs", pairs=pairs)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise TdwError(f"probe {spec!r}: not a probe; give grid, train, test, sample:N, a list like 4+29,17+3 "
                       "or a predicate over a, b and p like (a + b) % p < 10") from None
    _check(tree.body, spec)
    return Probe(text, "predicate", tree=tree)


def union(probes: list[Probe]) -> Probe:
    """The probe selecting what any of `probes` selects (unions within it flattened)."""
    parts = tuple(part for probe in probes for part in (probe.parts if probe.kind == "union" else (probe,)))
    return Probe(f" {UNION} ".join(part.spec for part in parts), "union", parts=parts)


def _empty_part(spec: str) -> Probe:
    raise TdwError(f"probe {spec!r}: nothing on one side of {UNION}; join probes like sample:1024 | 4+29")


def _check(node: ast.AST, spec: str) -> None:
    """Only what a predicate over a, b and p needs: names a/b/p, whole numbers, arithmetic, comparisons, and/or/not."""
    allowed = (ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.BinOp, ast.Compare, ast.Name,
               ast.Constant, ast.Load, *_BINARY, *_COMPARE)
    for child in ast.walk(node):
        if not isinstance(child, allowed):
            raise TdwError(f"probe {spec!r}: {type(child).__name__.lower()} is not allowed in a predicate "
                           "(use a, b, p, whole numbers, + - * // % **, comparisons, and/or/not)")
        if isinstance(child, ast.Name) and child.id not in ("a", "b", "p"):
            raise TdwError(f"probe {spec!r}: unknown name {child.id!r}; a predicate reads only a, b and p")
        if isinstance(child, ast.Constant) and (not isinstance(child.value, int) or isinstance(child.value, bool)):
            raise TdwError(f"probe {spec!r}: {child.value!r} is not a whole number")


def _evaluate(node: ast.AST, names: dict, spec: str):
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.Constant):
        return np.int64(node.value)
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, names, spec)
        return np.logical_not(value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, names, spec), _evaluate(node.right, names, spec)
        if isinstance(node.op, (ast.Mod, ast.FloorDiv)) and np.any(np.asarray(right) == 0):
            raise TdwError(f"probe {spec!r}: division by zero")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.BoolOp):
        values = [_evaluate(v, names, spec) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        return result
    if isinstance(node, ast.Compare):
        left, result = _evaluate(node.left, names, spec), None
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, names, spec)
            step = _COMPARE[type(op)](left, right)
            result = step if result is None else np.logical_and(result, step)
            left = right
        return np.broadcast_to(result, names["a"].shape).copy()
    raise TdwError(f"probe {spec!r}: cannot evaluate {type(node).__name__}")


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise TdwError(f"probe name {name!r}: use letters, digits, _ and - (starting with a letter or _), at most 64")
    if name in (*BUILT_IN, AUTO):
        raise TdwError(f"probe name {name!r}: built in; choose another name")
    return name


def auto_spec(p: int) -> str:
    """What `auto` traces at this p: the grid up to p = 64, else sample:1024."""
    return "grid" if p <= AUTO_GRID_MAX_P else f"sample:{AUTO_SAMPLE}"


def without_auto(spec: str, p: int) -> str:
    """The spec with each `auto` (alone or in a union) written as what it traces at this p."""
    return f" {UNION} ".join(auto_spec(p) if part.strip() == AUTO else part.strip() for part in spec.split(UNION))


def trace_probe(spec: str, p: int) -> Probe:
    """The probe a run's traces are computed on (`auto` as `auto_spec` says)."""
    return parse_probe(without_auto(spec, p))


def resolve_probe(text: str, named: dict[str, str]) -> Probe:
    """A probe given by name (one of `named`, the catalog's) or by spec."""
    text = text.strip()
    if UNION in text:
        return union([resolve_probe(part, named) if part.strip() else _empty_part(text) for part in text.split(UNION)])
    if text in named:
        return parse_probe(named[text])
    if NAME_PATTERN.match(text) and text not in (*BUILT_IN, AUTO) and text not in ("a", "b", "p"):
        known = ", ".join([*BUILT_IN, *named]) or "none"
        raise TdwError(f"probe {text!r}: no probe of that name (named probes: {known}; tdw probe add NAME SPEC)")
    return parse_probe(text)
