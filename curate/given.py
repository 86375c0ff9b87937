"""The user's transcripts, from any of the three places they come from, keyed by audio file.

- `--transcripts FILE.tsv`: `name<TAB>text` lines; name is a file name, a stem or a path ending.
- `--list FILE.list`: GPT-SoVITS training lists, `path|speaker|lang|text`, many speakers at once;
  relative paths are resolved against the list's folder.
- A `.lab` or `.txt` file beside the audio file, holding its text (MFA's convention).
- A corpus manifest (`--list FILE.csv` or `.parquet`): columns `path`, `speaker`, `lang` and,
  optionally, `text`; for corpora too big to list on a command line.

Every malformed line is reported on its own (`FILE:LINE: ...`) and the others are used. The
text goes to the store per recording (`given_transcripts`); `vet` splits it onto the clips.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from clonebench.core import gsvlist
from clonebench.core.config import check_speaker_name
from clonebench.core.errors import UserError
from clonebench.core.languages import GSV_CODES, VET_LANGS

from .results import SourceError

SIDECARS = (".lab", ".txt")
MANIFEST_SUFFIXES = (".csv", ".parquet")
MANIFEST_COLUMNS = ("path", "speaker", "lang")


@dataclass(frozen=True)
class TextLine:
    text: str
    source: str          # "FILE:LINE" or the sidecar path
    lang: str | None = None


@dataclass(frozen=True)
class ListEntry:
    path: Path
    speaker: str
    lang: str
    text: TextLine


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read {what} ({type(e).__name__})") from None


def _clean(text: str) -> str:
    return " ".join(text.split())


def read_tsv(path: Path) -> tuple[dict[str, TextLine], list[SourceError]]:
    """`name<TAB>text` lines -> {name: text}, plus one error per malformed line."""
    out, errors = {}, []
    for n, line in enumerate(_read_lines(path, "transcripts"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, text = line.partition("\t")
        if not sep or not name.strip() or not text.strip():
            errors.append(SourceError(f"{path}:{n}", f"{path}:{n}: expected 'name<TAB>text'"))
            continue
        out[name.strip()] = TextLine(_clean(text), f"{path}:{n}")
    return out, errors


def read_list(path: Path) -> tuple[list[ListEntry], list[SourceError]]:
    """A GPT-SoVITS `.list`: the good entries with their audio paths resolved against the list's
    folder, plus one error per malformed line."""
    path = Path(path)
    parsed, problems = gsvlist.parse(path)
    errors = [SourceError(p.split(": ", 1)[0], p) for p in problems]
    entries = []
    for e in parsed:
        where = f"{path}:{e.line}"
        try:
            check_speaker_name(e.speaker)
        except UserError as err:
            errors.append(SourceError(where, f"{where}: {err}"))
            continue
        audio = Path(e.path).expanduser()
        if not audio.is_absolute():
            audio = path.parent / audio
        entries.append(ListEntry(audio, e.speaker, e.lang, TextLine(e.text, where, e.lang)))
    return entries, errors


def read_manifest(path: Path) -> tuple[list[ListEntry], list[SourceError]]:
    """A corpus manifest (CSV with a header row, or Parquet): the good rows with their paths
    resolved against the manifest's folder, plus one error per bad row (`FILE:LINE: ...` for a
    CSV, `FILE:ROW: ...` for Parquet)."""
    path = Path(path)
    columns, rows = _manifest_rows(path)
    missing = [c for c in MANIFEST_COLUMNS if c not in columns]
    if missing:
        raise UserError(f"{path}: the manifest needs the columns {', '.join(MANIFEST_COLUMNS)} (and optionally text); "
                        f"{', '.join(missing)} missing")
    entries, errors = [], []
    for n, record in rows:
        where = f"{path}:{n}"
        file, speaker, lang = (str(record.get(c) or "").strip() for c in MANIFEST_COLUMNS)
        try:
            if None in record or not file:
                raise UserError("more fields than columns (quote a text with commas)" if None in record else "no path")
            check_speaker_name(speaker)
            lang = _manifest_lang(lang)
        except UserError as err:
            errors.append(SourceError(where, f"{where}: {err}"))
            continue
        audio = Path(file).expanduser()
        entries.append(ListEntry(audio if audio.is_absolute() else path.parent / audio, speaker, lang,
                                 TextLine(_clean(str(record.get("text") or "")), where, lang)))   # empty: no text given
    return entries, errors


def _manifest_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Column names (lower case) and (line or row number, record) pairs."""
    if path.suffix.lower() == ".parquet":
        from clonebench.store.tables import read_parquet

        return read_parquet(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = [c.strip().lower() for c in next(reader, [])]
            rows = []
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                record = dict(zip(header, values))
                if len(values) > len(header):
                    record[None] = values[len(header):]
                rows.append((reader.line_num, record))
            return header, rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path}: cannot read the manifest ({type(e).__name__}: {e})") from None


def _manifest_lang(code: str) -> str:
    """clonebench's codes (`vet --lang`) or GPT-SoVITS's (`all_zh` ...)."""
    code = code.lower()
    if code in VET_LANGS:
        return code
    if code in GSV_CODES:
        return GSV_CODES[code]
    raise UserError(f"unknown language {code!r} (use one of {', '.join(VET_LANGS)})")


def sidecar_text(audio: Path) -> TextLine | None:
    """The text of `audio.lab` or `audio.txt` beside the file, when there is one."""
    for suffix in SIDECARS:
        side = audio.with_suffix(suffix)
        if side.is_file():
            text = _clean(" ".join(_read_lines(side, "transcript")))
            if text:
                return TextLine(text, str(side))
    return None


class GivenTexts:
    """Looks up the user's text of an audio file: an explicit entry (TSV or list) first, then
    a sidecar file."""

    def __init__(self, by_name: dict[str, TextLine] | None = None, by_path: dict[Path, TextLine] | None = None):
        self.by_name = by_name or {}
        self.by_path = {p.resolve(): t for p, t in (by_path or {}).items()}

    def for_file(self, file: Path) -> TextLine | None:
        hit = self.by_path.get(file.resolve())
        if hit:
            return hit
        for key in (file.name, file.stem, str(file)):
            if key in self.by_name:
                return self.by_name[key]
        hit = next((t for k, t in self.by_name.items() if str(file).endswith("/" + k)), None)
        return hit or sidecar_text(file)
