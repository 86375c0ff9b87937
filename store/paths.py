"""File paths as the store records them: a path inside the store's folder is kept relative to
that folder (POSIX form), so the folder can be moved or shared whole; a path outside it (the
user's recordings elsewhere, a run folder elsewhere) stays absolute. Reads resolve a relative
path against the folder the store file is in now, so callers only ever see absolute paths."""

from __future__ import annotations

import os
from pathlib import Path, PurePath, PurePosixPath

# folders of the store's folder whose files keep their place under it (`<folder>/clips/<speaker>/`,
# `<folder>/eval_audio/<run>/`): what a migration may find again after the folder was moved
_CLIPS, _EVAL_AUDIO = "clips", "eval_audio"


def stored(path: str | os.PathLike | None, folder: Path) -> str | None:
    """The form in which the store at `folder` records `path` (a relative one is taken from the
    working directory)."""
    if path is None:
        return None
    absolute = Path(os.path.abspath(path))
    for candidate in (absolute, absolute.resolve()):
        if candidate.is_relative_to(folder):
            return candidate.relative_to(folder).as_posix()
    return str(path) if Path(path).is_absolute() else str(absolute)


def resolved(value: str | None, folder: Path) -> str | None:
    """The absolute path a recorded `value` names for the store now at `folder`."""
    if value is None or PurePath(value).is_absolute():
        return value
    return str(folder / value)


def moved(value: str, folder: Path) -> str | None:
    """For an absolute path recorded before the store's folder was moved: its tail from
    `clips/<speaker>/<file>` or `eval_audio/...` on, when that file is under `folder` now."""
    parts = PurePath(value).parts
    if len(parts) >= 3 and parts[-3] == _CLIPS:
        tail = parts[-3:]
    elif _EVAL_AUDIO in parts[:-1]:
        tail = parts[len(parts) - 1 - parts[::-1].index(_EVAL_AUDIO):]
    else:
        return None
    rel = PurePosixPath(*tail)
    return rel.as_posix() if (folder / rel).is_file() else None
