"""Denormals are flushed to zero in every thread torch computes on, in tdw's compute processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

# 1e-30 * 1e-10 = 1e-40, below float32's smallest normal (1.2e-38): kept as a denormal, or
# flushed to 0. Four million of them, so torch splits the product over both threads.
COUNT_DENORMALS = (
    "import torch; torch.set_num_threads(2); x = torch.full((1 << 22,), 1e-30); "
    "print(int((x * 1e-10).count_nonzero()))"
)


def nonzero_after(setup: str) -> int:
    result = subprocess.run([sys.executable, "-c", setup + COUNT_DENORMALS], capture_output=True, text=True, check=True)
    return int(result.stdout)


@pytest.mark.parametrize("setup", [
    "from tdw.denormals import flush_denormals_to_zero; assert flush_denormals_to_zero(); ",
    "from tdw.jobs.worker import set_worker_threads; set_worker_threads(); ",  # a sweep's job worker
    # the CLI flushes after parsing: importing every command and building the parser must not
    # have made torch's threads yet
    ("from tdw.cli import build_parser; build_parser().parse_args(['train', '--p', '13']); "
     "from tdw.denormals import flush_denormals_to_zero; flush_denormals_to_zero(); "),
])
def test_denormals_flush_to_zero_in_every_thread(setup):
    assert nonzero_after("") == 1 << 22  # without it, all four million are kept
    assert nonzero_after(setup) == 0


def test_flushing_after_the_first_parallel_op_misses_the_threads_already_made():
    """Why the compute commands flush first thing: threads inherit the setting when created."""
    late = nonzero_after("import torch; torch.set_num_threads(2); (torch.ones(1 << 22) * 2).sum(); "
                         "from tdw.denormals import flush_denormals_to_zero; flush_denormals_to_zero(); ")
    assert 0 < late < 1 << 22  # the calling thread's share flushed, the pool thread's kept
