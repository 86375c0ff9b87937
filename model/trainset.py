"""The training set: accepted clips from the store, their features cached on disk.

Selection (`training_set`): accepted clips with a transcript (the user's when given, else the
ASR text) in a language the front end reads (SPOKEN), 3-25 phones per second and 0.6-54 s long
(upstream's filters); speakers with less than MIN_SPEAKER_S of such audio are left out. Every
clip left out is reported with its reason. A deterministic ~10 % of each speaker's clips (by
hash of the clip id) is held out for validation.

Features (`FeatureCache`): phone ids, content features at 50 Hz, the 32 kHz waveform and its
linear spectrogram, per clip, in `<store folder>/features/<extractor version>/<clip id>.pt`.
The key is the clip id (derived from the recording's content hash and the clip's position)
plus the extractor version, so a second run does no work. For v2Pro/v2ProPlus each clip's
timbre vector (ERes2NetV2 on the whole 32 kHz clip, as upstream's 2-get-sv.py) is cached beside
them, under `features/timbre-<sv model name>/`, where `vet --sv-model` leaves them too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from clonebench.core.config import data_root_for
from clonebench.core.errors import UserError
from clonebench.core.languages import LANGUAGES
from clonebench.core.progress import progress_bar
from clonebench.store import Store

from .config import HOP
from .text.frontend import phonemize

log = logging.getLogger(__name__)
MIN_SPEAKER_S = 30.0
PHONES_PER_S = (3.0, 25.0)
DURATION_S = (0.6, 54.0)
VAL_SHARE = 0.1
SPOKEN = tuple(c for c, lang in LANGUAGES.items() if lang.speaks and c != "zh-en")   # a clip's own language
FEATURES_VERSION = "2"   # 2: HuBERT input never normalised, as upstream


@dataclass
class TrainClip:
    clip_id: str
    speaker: str
    lang: str
    text: str
    duration_s: float
    path_16k: str
    path_32k: str
    phones: list[int]
    val: bool = False


@dataclass
class TrainingSet:
    train: list[TrainClip]
    val: list[TrainClip]
    skipped: list[dict]            # {"clip_id" (a clip) or not (a speaker), "speaker", "kind", "reason", "duration_s"}
    data_hash: str

    @property
    def speakers(self) -> list[str]:
        return sorted({c.speaker for c in self.train})


def _held_out(clip_id: str) -> bool:
    return int(hashlib.sha256(clip_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < VAL_SHARE


def training_set(db: Path, speakers: list[str] | None = None, min_speaker_s: float = MIN_SPEAKER_S) -> TrainingSet:
    with Store(db, read_only=True) as store:
        views = store.accepted_clips()
        known = {s.speaker for s in store.speakers()}
    if speakers:
        missing = sorted(set(speakers) - known)
        if missing:
            raise UserError(f"speaker(s) not in {db}: {', '.join(missing)} (vet their recordings first)")
        views = [v for v in views if v.clip.speaker in speakers]
    kept, skipped = [], []
    for v in views:
        r = {"clip_id": v.clip.clip_id, "speaker": v.clip.speaker, "lang": v.lang, "text": v.text,
             "duration_s": v.clip.duration_s, "path_16k": v.clip.path_16k, "path_32k": v.clip.path_32k}
        kind = reason = None
        if not (r["text"] or "").strip():
            kind, reason = "no transcript", "no transcript"
        elif r["lang"] not in SPOKEN:
            kind, reason = "language", f"language {r['lang']!r}: the text front end reads {', '.join(SPOKEN)}"
        elif not DURATION_S[0] <= r["duration_s"] <= DURATION_S[1]:
            kind, reason = "length", f"{r['duration_s']:.1f} s is outside {DURATION_S[0]}-{DURATION_S[1]} s"
        phones: list[int] = []
        if reason is None:
            try:
                phones = phonemize(r["text"], r["lang"]).ids
            except UserError as e:
                kind, reason = "text", f"text: {e}"
        if reason is None:
            rate = len(phones) / r["duration_s"]
            if not PHONES_PER_S[0] <= rate <= PHONES_PER_S[1]:
                kind = "phones per second"
                reason = f"{rate:.1f} phones/s is outside {PHONES_PER_S[0]:.0f}-{PHONES_PER_S[1]:.0f} (transcript and audio disagree)"
        if reason:
            skipped.append({"clip_id": r["clip_id"], "speaker": r["speaker"], "kind": kind, "reason": reason,
                            "duration_s": r["duration_s"]})
            continue
        kept.append(TrainClip(r["clip_id"], r["speaker"], r["lang"], r["text"], r["duration_s"], r["path_16k"],
                              r["path_32k"], phones, _held_out(r["clip_id"])))
    seconds: dict[str, float] = {}
    for c in kept:
        seconds[c.speaker] = seconds.get(c.speaker, 0.0) + c.duration_s
    too_little = {s: t for s, t in seconds.items() if t < min_speaker_s}
    for s in sorted(set(speakers or []) - set(seconds)):
        too_little[s] = 0.0
    if speakers and too_little:
        raise UserError("too little usable audio: " + ", ".join(f"{s} {t:.0f} s" for s, t in sorted(too_little.items()))
                        + f" (need {min_speaker_s:.0f} s of accepted clips with transcripts per speaker)")
    for s, t in sorted(too_little.items()):
        skipped.append({"speaker": s, "kind": "too little audio", "duration_s": t,
                        "reason": f"only {t:.0f} s of usable audio (need {min_speaker_s:.0f} s)"})
    kept = [c for c in kept if c.speaker not in too_little]
    if not kept:
        raise UserError(f"no speaker in {db} has {min_speaker_s:.0f} s of accepted clips with transcripts: vet more audio")
    # every speaker keeps at least one training clip; validation only where there are enough clips
    val = [c for c in kept if c.val and sum(k.speaker == c.speaker for k in kept) >= 5]
    val_ids = {c.clip_id for c in val}
    train = [c for c in kept if c.clip_id not in val_ids]
    manifest = json.dumps([asdict(c) for c in kept], sort_keys=True).encode()
    return TrainingSet(train, val, skipped, hashlib.sha256(manifest).hexdigest())


class FeatureCache:
    def __init__(self, db: Path, extractor, timbre_model=None):
        self.extractor = extractor
        self.timbre_model = timbre_model
        self.features = data_root_for(db) / "features"
        self.root = self.features / f"{extractor.name}-{extractor.dim}-v{FEATURES_VERSION}"
        self.timbres: dict[str, torch.Tensor] = {}
        self.hits = self.misses = 0

    def path(self, clip: TrainClip) -> Path:
        return self.root / f"{clip.clip_id}.pt"

    def build(self, clips: list[TrainClip]) -> None:
        """Compute what is not cached yet. The encoders use every core for each clip."""
        from clonebench.core import audio

        from clonebench.core.atomic import atomic_save
        from .spectrogram import linear_spectrogram

        if self.timbre_model is not None:   # held in memory: 80 kB a clip (vetting may have made them)
            with progress_bar(len(clips), "timbre vectors") as advance:
                for c in clips:
                    self.timbres[c.clip_id] = self.timbre_model.timbre_of_clip(c.path_32k, self.features, c.clip_id)
                    advance()
        todo = [c for c in clips if not self.path(c).is_file()]
        self.hits += len(clips) - len(todo)
        with progress_bar(len(todo), "features") as advance:
            for c in todo:
                x32, _ = audio.read_wav(c.path_32k)
                x16, _ = audio.read_wav(c.path_16k)
                ssl = self.extractor.encode(x16)
                frames = min(ssl.shape[1], len(x32) // HOP) // 2 * 2      # even: the SoVITS content stride is 2
                wav = torch.from_numpy(np.asarray(x32[: frames * HOP], dtype=np.float32))
                spec = linear_spectrogram(wav[None])[0, :, :frames]
                atomic_save({"ssl": ssl[:, :frames].half(), "spec": spec.half(), "wav": wav.half(),
                             "phones": torch.tensor(c.phones)}, self.path(c))
                self.misses += 1
                advance()

    def load(self, clip: TrainClip) -> dict:
        item = torch.load(self.path(clip), weights_only=True)
        item["phones"] = torch.tensor(clip.phones)   # the text now (a reviewer may have corrected it since caching)
        if self.timbre_model is not None:
            item["timbre"] = self.timbres[clip.clip_id]
        return {k: v.float() if v.is_floating_point() else v for k, v in item.items()}
