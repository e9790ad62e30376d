"""Safetensors files that carry the SHA-256 of their own tensor data.

The digest sits in the file's header metadata (`tdw.sha256`), computed over the bytes after the
header, so the file stays a plain safetensors file any tool can read, and tdw can tell a flipped
bit or a truncated file from a good one when it reads it. Files written before checksums (no
`tdw.sha256`) are read as they are and reported as unverified.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from tdw import atomic
from tdw.errors import CorruptFileError

if TYPE_CHECKING:  # torch is imported where tensors are made: `tdw list` and `tdw verify` need none
    import torch

DIGEST_KEY = "tdw.sha256"


def encode(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """Safetensors bytes whose metadata holds the SHA-256 of the tensor data. The data section's
    layout does not depend on the header (offsets are relative to its start), so it is the same
    in the first serialization, which is hashed, and the second, which records the hash."""
    from safetensors.torch import save

    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    draft = save(cpu, metadata)
    digest = hashlib.sha256(draft[8 + header_length(draft):]).hexdigest()
    return canonical(save(cpu, {**metadata, DIGEST_KEY: digest}))


def canonical(blob: bytes) -> bytes:
    """The same safetensors file with its header's keys sorted, so equal tensors and metadata give
    equal bytes. Why: safetensors writes the metadata from a hash map whose order changes from one
    map to the next, so two identical runs wrote checkpoints that differed byte for byte (and
    `sha256sum` could not tell a reproduced run from a different one). Tensor offsets are relative
    to the data section, which stays as it is; the header is padded with spaces to 8 bytes, as
    safetensors pads it."""
    header, data = split(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def header_length(blob: bytes) -> int:
    if len(blob) < 8:
        raise ValueError("shorter than a safetensors header")
    (length,) = struct.unpack("<Q", blob[:8])
    if 8 + length > len(blob):
        raise ValueError("header runs past the end of the file")
    return length


def split(blob: bytes) -> tuple[dict, bytes]:
    """(header, data section) of safetensors bytes; ValueError when they cannot be a file."""
    length = header_length(blob)
    try:
        header = json.loads(blob[8:8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"unreadable header ({error.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise ValueError("unreadable header")  # noqa: TRY004 - bad file content, not a caller's type error
    return header, blob[8 + length:]


def write(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    atomic.write_bytes(path, encode(tensors, metadata))


def checked(blob: bytes, tensors: bool = True) -> tuple[dict[str, torch.Tensor], bool]:
    """(tensors, whether a digest was recorded and matched); ValueError when the bytes are bad.
    With tensors=False the file is parsed and checked without torch (`tdw verify`) and no tensors
    are returned."""
    header, data = split(blob)
    recorded = (header.get("__metadata__") or {}).get(DIGEST_KEY)
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
        raise ValueError("checksum mismatch")
    try:
        if not tensors:
            from safetensors import deserialize

            deserialize(blob)  # every tensor's dtype, shape and offsets checked against the data
            return {}, recorded is not None
        from safetensors.torch import load

        # sorted: the reader's own order changes from one process to the next
        return dict(sorted(load(blob).items())), recorded is not None
    except Exception as error:  # noqa: BLE001 - the Rust binding's SafetensorError has no importable base
        raise ValueError(str(error).splitlines()[0]) from None


def read(path: str | Path, device: str | torch.device = "cpu", remedy: str = "") -> dict[str, torch.Tensor]:
    """The tensors, after checking the recorded digest; CorruptFileError names the file and the remedy."""
    path = Path(path)
    try:
        tensors, _ = checked(path.read_bytes())
    except ValueError as error:
        raise CorruptFileError(path, str(error), remedy) from None
    return tensors if str(device) == "cpu" else {k: v.to(device) for k, v in tensors.items()}


def verify(path: str | Path, remedy: str = "") -> str:
    """'ok', 'unverified' (readable, but written before checksums), or raises CorruptFileError."""
    path = Path(path)
    try:
        _, verified = checked(path.read_bytes(), tensors=False)
    except ValueError as error:
        raise CorruptFileError(path, str(error), remedy) from None
    return "ok" if verified else "unverified"


def digest(path: str | Path) -> str:
    """The file's content digest: the recorded one (only the header is read), or for a file
    written before checksums, the SHA-256 of its data computed now."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) == 8:
            (length,) = struct.unpack("<Q", head)
            try:
                header = json.loads(handle.read(min(length, 100_000_000)))
                recorded = (header.get("__metadata__") or {}).get(DIGEST_KEY)
            except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
                recorded = None
            if recorded:
                return recorded
    blob = Path(path).read_bytes()
    try:
        _, data = split(blob)
    except ValueError:
        data = blob
    return hashlib.sha256(data).hexdigest()
