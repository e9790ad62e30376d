"""`--device auto|cpu|cuda`."""

import torch

from tdw.errors import TdwError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TdwError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    if name not in ("cpu", "cuda"):
        raise TdwError(f"--device {name!r}: expected auto, cpu or cuda")
    return torch.device(name)
