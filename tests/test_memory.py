"""tdw.memory: a compute process keeps freed memory, so a tensor allocated again does not
page-fault again (each fault is a kernel zero-fill of 4 KiB: 1.8 us on this machine)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import resource, sys
    import torch
    from tdw.memory import reuse_freed_memory
    if sys.argv[1] == "keep":
        assert reuse_freed_memory()
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):  # the first rounds grow the heap; the last is what a long training run sees
        before = faults()
        for _ in range(5):
            x = torch.empty(16_000_000)  # 64 MB, above glibc's largest mmap threshold
            x.fill_(1.0)
            del x
        print(faults() - before)
""")


def faults_per_round(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1])


def test_a_process_that_keeps_freed_memory_does_not_fault_on_reallocation():
    default, kept = faults_per_round("default"), faults_per_round("keep")
    assert default > 5 * 15_000  # every 64 MB allocation faults its ~15,600 pages again
    assert kept < 2_000  # the same blocks are reused


def test_the_compute_commands_keep_freed_memory_and_library_callers_are_left_alone():
    from tdw.cli import COMPUTE_COMMANDS

    assert {"train", "analyze", "densify", "sweep"} <= COMPUTE_COMMANDS
    assert "serve" not in COMPUTE_COMMANDS and "sql" not in COMPUTE_COMMANDS
