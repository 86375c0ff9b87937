"""Export the accepted set for upstream GPT-SoVITS tools.

`<out>/<name>.list` has one line per clip, `path|speaker|lang|text` (upstream's training-list
format, written by `clonebench.core.gsvlist`, which also reads it; absolute paths; each clip's text from the store, the user's when
given), with the clips as 32 kHz wavs in `<out>/wav32k/`. The timbre library
(each speaker's L2-normalised mean embedding of accepted clips) goes to `<out>/timbre/<speaker>.npy`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from clonebench.core import gsvlist
from clonebench.core.errors import UserError
from clonebench.store import ASR, GIVEN, REVIEWED, Store

from .reviews import write_manifest

FORMATS = ("gpt-sovits",)


def export(db: Path, out: Path, fmt: str = "gpt-sovits", speakers: list[str] | None = None) -> dict:
    """`clonebench export`: the accepted set in one of FORMATS."""
    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}: use {' or '.join(FORMATS)}")
    return export_gpt_sovits(db, out, speakers)


def export_gpt_sovits(db: Path, out: Path, speakers: list[str] | None = None, name: str = "clonebench") -> dict:
    from clonebench.instruments.speakers import ENCODER

    out = Path(out)
    with Store(db, read_only=True) as store:
        clips = store.accepted_clips(speakers)
        library = store.speaker_embeddings(ENCODER)
    entries, skipped = [], []
    (out / "wav32k").mkdir(parents=True, exist_ok=True)
    for v in clips:
        text = " ".join((v.text or "").split()).replace("|", " ")
        if not text:
            skipped.append({"clip_id": v.clip.clip_id, "reason": "no transcript"})
            continue
        if gsvlist.list_code(v.lang) is None:
            skipped.append({"clip_id": v.clip.clip_id, "reason": f"language {v.lang!r} has no GPT-SoVITS code"})
            continue
        wav = (out / "wav32k" / f"{v.clip.clip_id}.wav").resolve()
        shutil.copyfile(v.clip.path_32k, wav)
        entries.append(gsvlist.ListEntry(str(wav), v.clip.speaker, v.lang, text))
    if not entries:
        raise UserError(f"nothing to export from {db}: no accepted clips with transcripts" +
                        (f" for {', '.join(speakers)}" if speakers else ""))
    list_path = gsvlist.write_list(out / f"{name}.list", entries)
    listed = {Path(e.path).stem: e.text for e in entries}
    write_manifest(list_path, [v for v in clips if v.clip.clip_id in listed], listed)
    (out / "timbre").mkdir(exist_ok=True)
    exported = sorted({e.speaker for e in entries})
    timbre = [s for s in exported if s in library]
    for speaker in timbre:
        np.save(out / "timbre" / f"{speaker}.npy", library[speaker])
    return {"list": str(list_path), "clips": len(entries), "speakers": exported, "timbre": timbre, "skipped": skipped,
            "text_sources": {k: sum(v.text_kind == k for v in clips) for k in (REVIEWED, GIVEN, ASR)}}
