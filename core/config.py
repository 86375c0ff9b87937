"""Paths and names shared by every command."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import UserError

# Where the store, the clip cache and the demo corpus live unless told otherwise.
DEFAULT_DATA_ROOT = Path(os.environ.get("CLONEBENCH_DATA", "datasets"))
DB_NAME = "clonebench.duckdb"

_SPEAKER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_db_path(data_root: Path | None = None) -> Path:
    return (data_root or DEFAULT_DATA_ROOT) / DB_NAME


def data_root_for(db_path: Path) -> Path:
    """The clip cache sits beside the store, so one folder holds a whole project."""
    return db_path.resolve().parent


def model_cache_dir() -> Path:
    """Models unpacked from wheels (joined Whisper-base, extracted YAMNet) are cached here."""
    root = os.environ.get("CLONEBENCH_MODEL_CACHE")
    return Path(root) if root else DEFAULT_DATA_ROOT.resolve() / "models"


def check_speaker_name(name: str) -> str:
    """Speaker names become path components: allow only names that cannot escape the data root."""
    if not _SPEAKER_RE.match(name) or ".." in name:
        raise UserError(
            f"invalid speaker name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name
