"""Ingest: find audio files, hash them, decode, slice at silences, cache 32 kHz and 16 kHz clips.

A recording is keyed by the SHA-256 of its bytes, so the same file is never ingested twice.
Each recording is committed in one transaction after its clip files are on disk: a kill
leaves either the whole recording or none of it, and a re-run rewrites the same file names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clonebench.core import audio
from clonebench.core.errors import AudioError, UserError
from clonebench.instruments.registry import sha256_file
from clonebench.store import Clip, GivenText, Recording, Store

from .given import GivenTexts
from .results import SourceError
from .slicer import SLICER_VERSION, SliceConfig, slice_audio

log = logging.getLogger(__name__)


@dataclass
class IngestOptions:
    speaker: str
    clips_dir: Path  # <data root>/clips/<speaker>
    slicing: SliceConfig
    max_recording_s: float


def clip_id(sha: str, start_s: float, end_s: float) -> str:
    return f"{sha[:16]}-{int(round(start_s * 1000)):08d}-{int(round(end_s * 1000)):08d}"


@dataclass(frozen=True)
class SlicedRecording:
    """A new recording decoded and sliced, its clip files written: what the store registers."""
    recording: Recording
    clips: list[Clip]
    metrics: dict[str, dict[str, float]]


def ingest_file(store: Store, path: Path, sha: str, opts: IngestOptions) -> int:
    """Decode, slice and register one new recording. Returns the number of clips."""
    return commit_recording(store, slice_recording(path, sha, opts))


def slice_recording(path: Path, sha: str, opts: IngestOptions) -> SlicedRecording:
    """Decode and slice one recording and write its clips' 32 kHz and 16 kHz files (no store)."""
    decoded = audio.decode(path, max_duration_s=opts.max_recording_s)
    x16 = audio.resample(decoded.samples, decoded.sample_rate, 16000)
    spans = slice_audio(x16, 16000, opts.slicing)
    clips, metrics = [], {}
    for start, end in spans:
        cid = clip_id(sha, start, end)
        a, b = int(start * decoded.sample_rate), int(end * decoded.sample_rate)
        raw = decoded.samples[a:b]
        p32, p16 = opts.clips_dir / f"{cid}.32k.wav", opts.clips_dir / f"{cid}.16k.wav"
        audio.write_wav(p32, audio.resample(raw, decoded.sample_rate, 32000), 32000)
        audio.write_wav(p16, x16[int(start * 16000) : int(end * 16000)], 16000)
        clips.append(Clip(cid, sha, opts.speaker, start, end, end - start, str(p32), str(p16), SLICER_VERSION))
        metrics[cid] = {"duration_s": end - start,
                        "clip_ratio": float(np.mean(decoded.clipped[a:b])) if b > a else 0.0}
    rec = Recording(sha, opts.speaker, str(path), decoded.codec, decoded.sample_rate, decoded.channels,
                    decoded.duration_s, audio.DECODER_VERSION)
    return SlicedRecording(rec, clips, metrics)


def commit_recording(store: Store, sliced: SlicedRecording) -> int:
    """Register a sliced recording and its clips in one transaction; a recording with no clip is
    registered too (so a re-run knows it) and reported as an error."""
    store.add_recording(sliced.recording, sliced.clips, sliced.metrics, f"{audio.DECODER_VERSION}+{SLICER_VERSION}")
    if not sliced.clips:
        raise nothing_to_vet(Path(sliced.recording.source))
    return len(sliced.clips)


def error_message(path: Path, e: UserError | OSError) -> str:
    """The one line an input that failed is reported with."""
    return str(e) if isinstance(e, UserError) else f"{path}: {e.strerror or type(e).__name__}"


def owner_error(path: Path, owner: str) -> UserError:
    return UserError(f"{path}: this recording is already enrolled for speaker {owner!r}")


def nothing_to_vet(path: Path) -> AudioError:
    return AudioError(f"{path}: no sound above the silence threshold, nothing to vet")


def ingest(store: Store, files: list[Path], texts: GivenTexts, opts: IngestOptions, progress=None) -> list[SourceError]:
    """Ingest every file and record its given text; return the files that failed. Files already in the
    store are skipped (their text is updated when a new one is given)."""
    errors = []
    for path in files:
        try:
            sha = sha256_file(path)
            owner = store.recording_owner(sha)
            if owner is not None and owner != opts.speaker:
                raise owner_error(path, owner)
            if owner is None:
                n = ingest_file(store, path, sha, opts)
                log.info("%s: %d clips", path, n)
            elif not store.clip_count(sha):
                raise nothing_to_vet(path)
            given = texts.for_file(path)
            if given:
                store.put_given_text(GivenText(sha, given.text, given.source, given.lang))
        except (UserError, OSError) as e:
            msg = error_message(path, e)
            store.log_error(str(path), opts.speaker, msg)
            errors.append(SourceError(str(path), msg))
            log.error(msg)
        if progress:
            progress()
    return errors
