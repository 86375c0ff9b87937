"""What `clonebench serve` needs; an unsafe or impossible setting fails here, in one line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from clonebench.core.errors import UserError
from clonebench.core.keys import check_exposure, read_api_keys
from clonebench.model.spec import ModelSpec


@dataclass(frozen=True)
class ServeOptions:
    model: ModelSpec
    db: Path
    host: str = "127.0.0.1"
    port: int = 9880
    max_chars: int = 150                 # per sentence: longer sentences are cut between words
    max_input_chars: int = 4096          # per request (OpenAI's limit)
    max_batch: int = 8
    batch_memory_mb: int | None = None   # the most a batch's KV cache may hold; None: 512 on a CPU, 8192 on CUDA
    batch_window_ms: float = 10.0
    continuous: bool = False             # continuous batching (serve.worker.ContinuousWorker)
    queue: int = 64
    voices_cache: int = 32
    request_timeout_s: float = 120.0
    max_body_bytes: int = 65536
    api_keys: Path | None = None
    ref_dir: Path | None = None          # api_v2's ref_audio_path may name files under it, and nothing else
    weights_dir: Path | None = None      # api_v2's /set_*_weights may load files under it, and nothing else
    insecure: bool = False
    key_hashes: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        if self.batch_memory_mb is None:
            object.__setattr__(self, "batch_memory_mb", 8192 if self.model.device.startswith("cuda") else 512)
        for name in ("max_chars", "max_input_chars", "max_batch", "batch_memory_mb", "queue", "voices_cache"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
        if self.batch_window_ms < 0 or self.request_timeout_s <= 0:
            raise UserError("--batch-window-ms cannot be negative and the request timeout must be positive")
        if not Path(self.db).is_file():
            raise UserError(f"--db {self.db}: no such file")
        for name in ("ref_dir", "weights_dir"):
            folder = getattr(self, name)
            if folder is not None:
                if not Path(folder).is_dir():
                    raise UserError(f"--{name.replace('_', '-')} {folder}: no such folder")
                object.__setattr__(self, name, Path(folder).resolve())
        keys = read_api_keys(self.api_keys, os.environ.get("CLONEBENCH_API_KEYS"))
        object.__setattr__(self, "key_hashes", frozenset(keys))
        check_exposure(self.host, keys, self.insecure, "serve voices")


def inside(folder: Path | None, name: str, option: str) -> Path:
    """`name` (relative to `folder`, or absolute) as a file inside `folder`; anything else is
    refused (403), so a client can never make the server read a file the operator did not offer."""
    from .protocol import HTTPError

    if folder is None:
        raise HTTPError(403, f"this server reads no files named by clients: start it with {option} DIR")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder):
        raise HTTPError(403, f"{name!r} is outside the server's {option}")
    if not path.is_file():
        raise HTTPError(404, f"{name!r}: no such file in the server's {option}")
    return path
