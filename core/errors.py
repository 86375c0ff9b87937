"""Errors a user can cause. Each carries one line that says what was wrong and with which file."""


class UserError(Exception):
    """A problem with the user's input; printed as one line, never as a traceback."""


class AudioError(UserError):
    """A file that cannot be used as audio (corrupt, empty, not audio, too long)."""


class StoreInUse(UserError):
    """Another process holds the DuckDB store open for writing."""


class ModelError(UserError):
    """An embedded or local model is missing, incomplete or fails its checksum."""


def first_line(e: BaseException, limit: int | None = None) -> str:
    """`Type: first line of the message` (at most `limit` characters of it), for wrapping a
    library's exception into one of ours without its traceback or a multi-line message."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:limit]}" if text else type(e).__name__
