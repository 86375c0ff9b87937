"""Export the accepted set for upstream GPT-SoVITS tools, and read such a list back.

`<out>/<name>.list` has one line per clip, `path|speaker|lang|text` (upstream's training-list
format; paths absolute), with the clips as 32 kHz wavs in `<out>/wav32k/`. The timbre library
(each speaker's L2-normalised mean embedding of accepted clips) goes to `<out>/timbre/<speaker>.npy`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clonebench.errors import UserError
from clonebench.store import Store

LIST_LANGS = {"zh", "ja", "en", "ko", "yue"}


@dataclass(frozen=True)
class ListEntry:
    path: str
    speaker: str
    lang: str
    text: str


def export_gpt_sovits(db: Path, out: Path, speakers: list[str] | None = None, name: str = "clonebench") -> dict:
    from curate.speakers import ENCODER

    out = Path(out)
    with Store(db, read_only=True) as store:
        rows = store.rows(
            """SELECT v.clip_id, v.speaker, s.lang, v.text, c.path_32k FROM clip_verdicts v JOIN clips c USING (clip_id)
               JOIN speakers s ON s.speaker = v.speaker WHERE v.status = 'accepted' ORDER BY v.speaker, v.clip_id""")
        library = {r["speaker"]: np.asarray(r["vector"], np.float32) for r in store.rows(
            "SELECT speaker, vector FROM speaker_embeddings WHERE encoder = ?", [ENCODER])}
    if speakers:
        rows = [r for r in rows if r["speaker"] in speakers]
    entries, skipped = [], []
    (out / "wav32k").mkdir(parents=True, exist_ok=True)
    for r in rows:
        text = " ".join((r["text"] or "").split()).replace("|", " ")
        if not text:
            skipped.append({"clip_id": r["clip_id"], "reason": "no transcript"})
            continue
        if r["lang"] not in LIST_LANGS:
            skipped.append({"clip_id": r["clip_id"], "reason": f"language {r['lang']!r} has no GPT-SoVITS code"})
            continue
        wav = (out / "wav32k" / f"{r['clip_id']}.wav").resolve()
        shutil.copyfile(r["path_32k"], wav)
        entries.append(ListEntry(str(wav), r["speaker"], r["lang"], text))
    if not entries:
        raise UserError(f"nothing to export from {db}: no accepted clips with transcripts" +
                        (f" for {', '.join(speakers)}" if speakers else ""))
    list_path = out / f"{name}.list"
    list_path.write_text("".join(f"{e.path}|{e.speaker}|{e.lang}|{e.text}\n" for e in entries), encoding="utf-8")
    (out / "timbre").mkdir(exist_ok=True)
    exported = sorted({e.speaker for e in entries})
    timbre = [s for s in exported if s in library]
    for speaker in timbre:
        np.save(out / "timbre" / f"{speaker}.npy", library[speaker])
    return {"list": str(list_path), "clips": len(entries), "speakers": exported, "timbre": timbre, "skipped": skipped}


def read_list(path: Path) -> list[ListEntry]:
    """Parse a GPT-SoVITS training list; a malformed line is a one-line error naming it."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|", 3)
        if len(parts) != 4 or not all(p.strip() for p in parts):
            raise UserError(f"{path}:{n}: expected path|speaker|lang|text")
        if parts[2].lower() not in LIST_LANGS:
            raise UserError(f"{path}:{n}: unknown language {parts[2]!r} (use one of {', '.join(sorted(LIST_LANGS))})")
        out.append(ListEntry(parts[0], parts[1], parts[2].lower(), parts[3]))
    return out
