"""`tdw.deferred_imports`: a module named where it is declared and imported where first used."""

from __future__ import annotations

import subprocess
import sys


def test_a_deferred_module_imports_on_its_first_attribute_and_then_is_the_module():
    """In a fresh process: naming the module imports nothing, the first attribute imports it once,
    and every attribute is the real module's (the same objects, not copies)."""
    code = ("import sys; from tdw.deferred_imports import DeferredModule; wave_ = DeferredModule('wave'); "
            "named = 'wave' in sys.modules; before = repr(wave_); opened = wave_.open; import wave; "
            "print(named, 'not imported yet' in before, opened is wave.open, wave_.Error is wave.Error, "
            "'imported' in repr(wave_))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "True", "True", "True"], done.stdout + done.stderr


def test_the_deferred_torch_is_torch_once_used():
    """What the analyzers and families call `torch` computes as torch does."""
    import torch

    from tdw.deferred_imports import F
    from tdw.deferred_imports import torch as deferred

    assert deferred.float64 is torch.float64 and deferred.Tensor is torch.Tensor
    x = deferred.arange(4, dtype=deferred.float32)
    assert isinstance(x, torch.Tensor) and F.relu(x - 1).tolist() == [0.0, 0.0, 1.0, 2.0]
