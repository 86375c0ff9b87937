"""Plumbing shared by the models a user keeps on disk: offline mode, `kind:PATH` specs, file
checks with one-line errors, content hashes, and a pickle pre-check.

Nothing here downloads. Loaders call `enforce_offline()` before importing a hub-aware library,
so an incomplete folder fails on the missing file instead of reaching for the network.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

from clonebench.core.errors import ModelError
from clonebench.instruments.registry import sha256_file

# Hugging Face (transformers, speechbrain's fetcher, pyannote's hub calls) and pyannote's
# usage telemetry, which would otherwise post to a server on every model load.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "PYANNOTE_METRICS_ENABLED": "false",
}


def enforce_offline() -> None:
    os.environ.update(OFFLINE_ENV)


@dataclass(frozen=True)
class Spec:
    """`kind` or `kind:PATH` as given to --asr, --speaker-encoder, --overlap or --utmos."""

    option: str
    kind: str
    path: Path | None

    @classmethod
    def parse(cls, option: str, value: str, local_kinds: tuple[str, ...], builtin: tuple[str, ...] = ()) -> "Spec":
        kind, sep, path = value.partition(":")
        if not sep and kind in builtin:
            return cls(option, kind, None)
        if kind not in local_kinds or not path:
            choices = [*builtin, *(f"{k}:PATH" for k in local_kinds)]
            raise ModelError(f"{option} {value!r}: write one of {', '.join(choices)}")
        return cls(option, kind, Path(path).expanduser())


def require(spec: Spec, files: list[str], what: str) -> Path:
    """The folder of a spec, with every listed file present and not empty."""
    folder = spec.path
    if folder is None or not folder.exists():
        raise ModelError(f"{spec.option} {spec.kind}:{folder}: no such {what} folder")
    if not folder.is_dir():
        raise ModelError(f"{spec.option} {spec.kind}:{folder}: expected a folder ({what}), found a file")
    missing = [f for f in files if not (folder / f).is_file()]
    empty = [f for f in files if f not in missing and (folder / f).stat().st_size == 0]
    if missing or empty:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"empty {', '.join(empty)}"] if empty else [])
        raise ModelError(f"{spec.option} {spec.kind}:{folder}: incomplete {what} folder: {'; '.join(problems)}")
    return folder


def content_sha256(paths: list[Path]) -> str:
    """One SHA-256 over several files (names and contents), for a model kept as a folder."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def check_weights_only(path: Path, label: str, allowed: tuple = ()):
    """Refuse a torch file that needs more than tensors and plain data to unpickle; return what
    it holds (a loader that reads torch files itself takes that, and reads the file once).

    Some libraries load their own checkpoints with `weights_only=False` (pyannote does), which
    runs whatever a crafted pickle asks for. Reading the file first with torch's weights-only
    unpickler, which never calls anything it was not told about, keeps such a file out.
    `allowed` names the library classes its format legitimately stores.
    """
    import torch

    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        asked = re.search(r"GLOBAL (\S+)", str(e))
        if asked:
            detail = f"it asks to call {asked.group(1)}, which a weights file never needs"
        else:
            detail = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ModelError(f"{label}: {path}: refused: {detail}") from None
