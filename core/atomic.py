"""Atomic writes of torch files: a temporary file beside the target, then a rename, so a kill
never leaves half a file (checkpoints, feature caches, cached timbre vectors)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_save(obj, path: Path, tag: bytes | None = None) -> None:
    """`torch.save(obj)` to `path` atomically. `tag` overwrites the zip magic with upstream
    GPT-SoVITS's 2-byte version tag."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        if tag is not None:
            with open(tmp, "r+b") as f:
                f.write(tag)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
