"""One training epoch on a GPU as a replayed CUDA graph.

Why: a p=113 epoch is about 240 small kernels (the forward over the grid, its backward, AdamW
over 9 weights, the test forward), each a few microseconds of arithmetic on an H100. Launched
one by one from Python the device waits on the host most of the epoch. Captured once into a
CUDA graph, an epoch is one launch, and the arithmetic is the same kernels on the same
addresses, so a replayed epoch equals the eager one bit for bit and a run resumed or densified
(which captures again) reproduces the original.

A session opts in by providing:
  `graph_tensors()`  every tensor a step mutates in place (weights, optimizer moments and step
                     counters), so the warm-up steps that capture needs can be undone;
  `stage_epoch()`    the host writes this epoch's inputs (the learning rate) into device tensors
                     the graph reads, outside the graph;
  `device_step(with_test, take_step)`  the epoch's device work, with no host read in it;
  `advance()`        the host-side counters after a step.
A session drops its graphs (`forget`) whenever it replaces a tensor the graph holds (a restore
that loads new optimizer tensors, a stack that loses members).
"""

from __future__ import annotations

import os
import sys
from typing import Protocol

import torch
from torch import Tensor

WARMUP_STEPS = 2  # eager steps on a side stream before capture (lazy cuBLAS and optimizer setup)


class GraphableSession(Protocol):
    def graph_tensors(self) -> list[Tensor]: ...
    def device_step(self, with_test: bool, take_step: bool) -> Tensor: ...


def graphs_wanted(device: torch.device) -> bool:
    """On CUDA unless TDW_CUDA_GRAPHS=0 (the eager path, for comparison and debugging)."""
    return device.type == "cuda" and os.environ.get("TDW_CUDA_GRAPHS", "1") != "0"


class EpochGraphs:
    """The captured training step of one session, one graph per `with_test` value."""

    def __init__(self, session: GraphableSession) -> None:
        self.session = session
        self.graphs: dict[bool, tuple[torch.cuda.CUDAGraph, Tensor]] = {}
        self.failed = False

    def forget(self) -> None:
        self.graphs.clear()

    def replay(self, with_test: bool) -> Tensor | None:
        """This epoch's metrics from the graph (a copy: the graph's output is overwritten by the
        next replay), or None when capture is not possible here (the caller steps eagerly)."""
        if self.failed:
            return None
        if with_test not in self.graphs:
            try:
                self.graphs[with_test] = self.capture(with_test)
            except RuntimeError as error:  # an op that cannot be captured: say so once, go on eagerly
                self.failed = True
                print(f"tdw train: CUDA graph capture failed ({str(error).splitlines()[0]}); "
                      f"training without graphs", file=sys.stderr)
                return None
        graph, metrics = self.graphs[with_test]
        graph.replay()
        return metrics.clone()

    def capture(self, with_test: bool) -> tuple[torch.cuda.CUDAGraph, Tensor]:
        tensors = self.session.graph_tensors()
        saved = [t.detach().clone() for t in tensors]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self.session.device_step(with_test, True)
        torch.cuda.current_stream().wait_stream(side)
        after = self.session.graph_tensors()  # the warm-up may create state (a fresh AdamW's moments)
        with torch.no_grad():
            known = {id(t): s for t, s in zip(tensors, saved)}
            for tensor in after:
                if id(tensor) in known:
                    tensor.copy_(known[id(tensor)])
                else:
                    tensor.zero_()  # state created by the warm-up: a fresh optimizer's zeros
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            metrics = self.session.device_step(with_test, True)
        return graph, metrics
