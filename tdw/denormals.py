"""Flush denormal floats to zero on the CPU, in every thread torch computes on.

Why: late in training the train loss is ~1e-7, the wrong answers' probabilities fall below
float32's smallest normal number (1.2e-38), and the logits' gradient fills with denormals. An
x86 core multiplies those through microcode assists, tens of times slower: at epoch 14,000 of
the published p=113 configuration a CPU step took 205-217 ms, and 32 ms with denormals flushed
(26-30 ms at initialization, where there are none). The products of the backward pass that
read the logits' gradient went from about 1.5 to 23-78 ms each. A gradient entry below 1e-38
is nothing beside the ~1e-9 entries of the same tensor, so flushing changes no result a float32
run can represent; XLA flushes them on CPUs by default.

Threads copy the floating-point control register (MXCSR) of the thread that creates them, and
torch creates its OpenMP threads at its first parallel operation. So this must run before that
operation, at the start of a process: the compute commands, job workers and the test session
call it. Called later, it covers the calling thread and threads created afterwards only.
"""

from __future__ import annotations

applied = False


def flush_denormals_to_zero() -> bool:
    """Set flush-to-zero and denormals-are-zero for this thread and the threads it creates from
    now on; True where the CPU supports it (x86 with SSE3)."""
    global applied
    if not applied:
        import torch  # here: `tdw sql` and other light commands never load torch

        applied = torch.set_flush_denormal(True)
    return applied
