"""The one piece of state every view shares: which variant, epoch, neuron and head a researcher is
looking at, and the brushed epoch range. Widgets write it, clicks on plots write it, views read it;
no callback ever touches a plot directly."""

from __future__ import annotations

import bisect
import re

import param


def nearest_checkpoint(epochs: list[int], epoch: float) -> int:
    """The epoch of `epochs` (sorted) nearest to `epoch`, the earlier one on a tie."""
    if not epochs:
        return max(0, round(epoch))
    i = bisect.bisect_left(epochs, epoch)
    candidates = epochs[max(0, i - 1): i + 1]
    return min(candidates, key=lambda e: (abs(e - epoch), e))


def parse_pair(text: str) -> tuple[int, int]:
    """"4+29" -> (4, 29); (0, 0) for anything else (a URL may carry anything)."""
    try:
        a, b = (int(x) for x in text.split("+"))
        return (a, b) if a >= 0 and b >= 0 else (0, 0)
    except ValueError:
        return (0, 0)


TYPED_PAIR = re.compile(r"^\s*(\d+)\s*\+\s*(\d+)\s*$")


def typed_pair(text: str, p: int | None) -> str:
    """"4 + 29" -> "4+29", an input of a run of this `p`; a ValueError with the one line to show
    for anything else (the traced pair stays as it was)."""
    match = TYPED_PAIR.match(text)
    if not match:
        raise ValueError(f"{text.strip()!r} is not an input a+b (e.g. 4+29)")
    a, b = int(match[1]), int(match[2])
    if p is not None and max(a, b) >= p:
        raise ValueError(f"{a}+{b} is not an input of this run: a and b are below p = {p}")
    return f"{a}+{b}"


class WorkbenchState(param.Parameterized):
    variant = param.Selector(default=None, objects=[], doc="the variant on the Variant page")
    epoch = param.Integer(default=0, bounds=(0, None), doc="the selected checkpoint epoch")
    neuron = param.Integer(default=0, bounds=(0, None), doc="the neuron of the heatmap")
    head = param.Integer(default=0, bounds=(0, None), doc="the attention head")
    pair = param.String(default="0+0", doc="the input (a+b) traced in the Trace section")
    pinned = param.List(default=[], item_type=str, doc="pairs traced beside it: at most one train and one test pair")
    show_phases = param.Boolean(default=True, doc="shade the run's phases (training_phases) on over-epochs plots")
    epoch_range = param.Range(default=None, allow_None=True, doc="epochs brushed on any over-epochs plot")
    checkpoint_epochs = param.List(default=[], item_type=int, doc="the variant's checkpoints: what the epoch snaps to")
    page = param.Selector(default="Variant", objects=["Variant", "Compare", "SQL", "Reports", "Train", "Analyze"])
    open_sections = param.List(default=None, allow_None=True, item_type=str,
                               doc="the Variant page's open sections (None: each section's default)")
    report = param.String(default="", doc="the saved view open on the Reports page")
    compare = param.ListSelector(default=[], objects=[], doc="variants overlaid on the Compare page")
    align_at_turn = param.Boolean(default=False, doc="plot compared variants against epoch - turn epoch")
    log_epochs = param.Boolean(default=False, doc="epochs on a log axis, from epoch 1, on every over-epochs plot and the "
                                                  "Compare overlays (aligned there: epoch / turn epoch)")
    generation = param.Integer(default=0, doc="bumped when `tdw index` swaps in a new warehouse")

    def snap(self, epoch: float) -> int:
        """The checkpoint epoch nearest to `epoch` (a click or a typed value)."""
        return nearest_checkpoint(self.checkpoint_epochs, epoch)

    def checkpoint_index(self) -> int:
        """Where the selected epoch sits in the checkpoint list (the slider's position)."""
        epochs = self.checkpoint_epochs
        return epochs.index(self.epoch) if self.epoch in epochs else max(0, len(epochs) - 1)

    def pair_ab(self) -> tuple[int, int]:
        return parse_pair(self.pair)

    def keep_pairs_within(self, p: int) -> None:
        """The traced and pinned pairs, kept only where they are inputs of a run of this `p`: after a
        switch from the published run (p=113) to a p=17 run, 100+90 stayed traced ("not in the
        warehouse", with a hint to trace it that could not work). The traced one falls back to 0+0."""
        inside = lambda pair: max(parse_pair(pair)) < p
        if not inside(self.pair):
            self.pair = "0+0"
        kept = [pair for pair in self.pinned if inside(pair) and pair != self.pair]
        if kept != self.pinned:
            self.pinned = kept

    def pin(self, pair: str, split: str, splits: dict[str, str]) -> None:
        """Pin `pair` (of `split`) beside the traced one, replacing the pinned pair of the same split
        (`splits`: the split of each pinned pair), so one train and one test pair sit side by side."""
        self.pinned = [p for p in self.pinned if splits.get(p) != split and p != pair] + [pair]

    def go_to_epoch(self, epoch: float) -> None:
        self.epoch = self.snap(epoch)

    def set_variants(self, names: list[str]) -> None:
        self.param.variant.objects = names
        self.param.compare.objects = names
        if self.variant not in names:
            self.variant = names[0] if names else None
        self.compare = [v for v in self.compare if v in names] or names[: min(4, len(names))]
