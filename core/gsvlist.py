"""GPT-SoVITS training lists: `path|speaker|lang|text`, one clip per line.

`vet --list` reads them (many speakers at once) and `export --format gpt-sovits` writes them.
Upstream's language codes are zh, ja, en, ko and yue, plus `all_*` variants meaning the same
language without mixed-script handling; clonebench reads both and writes the plain ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .languages import GSV_CODES, LANGUAGES


@dataclass(frozen=True)
class ListEntry:
    path: str          # as written in the list
    speaker: str
    lang: str          # clonebench's code (all_zh -> zh)
    text: str
    line: int = 0      # 1-based line number in the file it was read from


def parse(path: Path) -> tuple[list[ListEntry], list[str]]:
    """The well-formed entries of a list, and a `FILE:LINE: what is wrong` message for each other line."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the list ({type(e).__name__})") from None
    entries, errors = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|", 3)]
        if len(parts) != 4 or not all(parts):
            errors.append(f"{path}:{n}: expected path|speaker|lang|text")
        elif parts[2].lower() not in GSV_CODES:
            errors.append(f"{path}:{n}: unknown language {parts[2]!r} (use one of {', '.join(sorted(GSV_CODES))})")
        else:
            entries.append(ListEntry(parts[0], parts[1], GSV_CODES[parts[2].lower()], " ".join(parts[3].split()), n))
    return entries, errors


def read_list(path: Path) -> list[ListEntry]:
    """A list that must be wholly well-formed: the first bad line is a one-line error."""
    entries, errors = parse(path)
    if errors:
        raise UserError(errors[0])
    return entries


def list_code(lang: str) -> str | None:
    """GPT-SoVITS's code for one of clonebench's languages; None when upstream has none."""
    known = LANGUAGES.get(lang)
    return known.gsv if known else None


def format_line(e: ListEntry) -> str:
    return f"{e.path}|{e.speaker}|{list_code(e.lang) or e.lang}|{' '.join(e.text.split()).replace('|', ' ')}\n"


def write_list(path: Path, entries: list[ListEntry]) -> Path:
    """Write entries as a list upstream's tools read (UTF-8, one line each, `|` kept out of the text)."""
    path = Path(path)
    path.write_text("".join(format_line(e) for e in entries), encoding="utf-8")
    return path
