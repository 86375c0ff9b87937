"""Screening stages. Each writes its figures for one clip (or one packed ASR batch) in one
transaction and marks the stage done with its producer version, so finished work survives a
kill and a newer model version re-screens only what it changed.

Every stage is a `measure_*` (the models' work: a clip's files in, a record of figures out, no
store) and a `commit_*` (the record into the store). One process does both (`vet`); on a Ray
cluster the workers measure and the driver alone commits (`curate/cluster.py`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from clonebench.core import audio
from clonebench.core.syllables import count_syllables
from clonebench.core.text_checks import repetition, script_share
from clonebench.instruments.asr import ClipTranscript, Transcriber
from clonebench.instruments.dnsmos import DNSMOS
from clonebench.instruments.dnsmos import PRODUCER as DNSMOS_PRODUCER
from clonebench.instruments.scenes import PRODUCER as SCENES_PRODUCER
from clonebench.instruments.scenes import SceneClassifier
from clonebench.instruments.vad import FRAME_S, SileroVAD, speech_mask
from clonebench.instruments.vad import PRODUCER as VAD_PRODUCER
from clonebench.instruments.yamnet import PRODUCER as YAMNET_PRODUCER
from clonebench.instruments.yamnet import YAMNet
from clonebench.store import Clip, Store, Transcript, Word

from . import acoustics

log = logging.getLogger(__name__)

SIGNAL_STAGE = "signal"
# DNSMOS is the dearest screen (0.2 s per 9 s window) and only adds to what the blind SNR and the
# scene classifier already see where the background is audible: it runs on clips whose SNR reads
# under this. Above it, every clip measured read DNSMOS BAK >= 2.5 (the noise threshold) except
# two voices at once, which the scene classifier calls (benchmarks/RESULTS.md).
DNSMOS_BELOW_SNR_DB = 35.0
SIGNAL_PRODUCER = " + ".join([VAD_PRODUCER, acoustics.PRODUCER, f"{DNSMOS_PRODUCER} under {DNSMOS_BELOW_SNR_DB:g} dB",
                              YAMNET_PRODUCER, SCENES_PRODUCER])
ASR_STAGE = "asr"
ASR_BATCH_S = 120.0  # audio per ASR commit: several packed windows, small enough to lose little on a kill
OVERLAP_STAGE = "overlap"


def embed_stage(encoder_name: str) -> str:
    """One embedding stage per encoder, so clips embedded by one encoder stay done when
    another is tried."""
    return f"embed:{encoder_name}"


class SignalScreens:
    """VAD, SNR, loudness, bandwidth, reverb, DNSMOS, YAMNet and the scene classifier."""

    def __init__(self) -> None:
        self.vad = SileroVAD()
        self.dnsmos = DNSMOS()
        self.yamnet = YAMNet()
        self.scenes = SceneClassifier()

    def run(self, store: Store, clip: Clip) -> None:
        commit_signal(store, self.measure(clip))

    def measure(self, clip: Clip) -> SignalFigures:
        x16, _ = audio.read_wav(clip.path_16k)
        x32, _ = audio.read_wav(clip.path_32k)
        speech = speech_mask(self.vad.probabilities(x16))
        values = acoustics.measure(x16, x32, speech, FRAME_S)
        if values["snr_db"] < DNSMOS_BELOW_SNR_DB:
            values.update(self.dnsmos.score(x16))
        probs, embeddings = self.yamnet.run(x16)
        values.update(self.yamnet.screen(probs))
        values.update(self.scenes.probabilities(embeddings))
        return SignalFigures(clip.clip_id, values)


@dataclass(frozen=True)
class SignalFigures:
    clip_id: str
    values: dict[str, float | None]


def commit_signal(store: Store, fig: SignalFigures) -> None:
    with store.transaction():
        store.put_metrics(fig.clip_id, fig.values, SIGNAL_PRODUCER)
        store.mark_done(fig.clip_id, SIGNAL_STAGE, SIGNAL_PRODUCER)


@dataclass(frozen=True)
class EmbeddingFigures:
    clip_id: str
    encoder: str
    embedding: np.ndarray
    partials: np.ndarray | None


def run_embedding(store: Store, encoder, clip: Clip) -> None:
    commit_embedding(store, measure_embedding(encoder, clip))


def measure_embedding(encoder, clip: Clip) -> EmbeddingFigures:
    """The clip's speaker embedding and its window embeddings (`encoder.embed`), kept under the
    encoder's name; the speaker screens are computed from them when verdicts are made."""
    x16, _ = audio.read_wav(clip.path_16k)
    embedding, partials = encoder.embed(x16)
    return EmbeddingFigures(clip.clip_id, encoder.name, embedding, partials)


def commit_embedding(store: Store, fig: EmbeddingFigures) -> None:
    with store.transaction():
        store.put_embedding(fig.clip_id, fig.encoder, fig.embedding, fig.partials)
        store.mark_done(fig.clip_id, embed_stage(fig.encoder), fig.encoder)


@dataclass(frozen=True)
class OverlapFigures:
    clip_id: str
    detector: str
    hop_s: float
    probs: np.ndarray
    metrics: dict[str, float | None]


def run_overlap(store: Store, detector, clip: Clip) -> None:
    commit_overlap(store, measure_overlap(detector, clip))


def measure_overlap(detector, clip: Clip) -> OverlapFigures:
    """Frame-level overlapped-speech probabilities (kept in `clip_frames`) and their summary."""
    x16, _ = audio.read_wav(clip.path_16k)
    evidence = detector.evidence(x16)
    return OverlapFigures(clip.clip_id, detector.name, evidence.hop_s, evidence.probs,
                          evidence.metrics(len(x16) / 16000))


def commit_overlap(store: Store, fig: OverlapFigures) -> None:
    with store.transaction():
        store.put_frames(fig.clip_id, "overlap_prob", fig.detector, fig.hop_s, fig.probs)
        store.put_metrics(fig.clip_id, fig.metrics, fig.detector)
        store.mark_done(fig.clip_id, OVERLAP_STAGE, fig.detector)


def asr_batches(clips: list[Clip]) -> list[list[Clip]]:
    batches, total = [[]], 0.0
    for c in clips:
        if total >= ASR_BATCH_S:
            batches.append([])
            total = 0.0
        batches[-1].append(c)
        total += c.duration_s
    return [b for b in batches if b]


def run_asr(store: Store, transcriber: Transcriber, clips: list[Clip], lang: str, low_confidence: float) -> None:
    commit_asr(store, clips, measure_asr(transcriber, clips, lang, low_confidence), lang, transcriber.producer(lang))


def measure_asr(transcriber: Transcriber, clips: list[Clip], lang: str, low_confidence: float) -> list[ClipTranscript]:
    """Transcribe one batch (packed together, so a batch is a unit: the same clips give the same words)."""
    return transcriber.transcribe([audio.read_wav(c.path_16k)[0] for c in clips], lang, low_confidence)


def commit_asr(store: Store, clips: list[Clip], results: list[ClipTranscript], lang: str, producer: str) -> None:
    """Store a batch's text, words and language, and the speaking rate (from the signal stage's
    speech time, which must be in the store first)."""
    speech = store.metrics_for([c.clip_id for c in clips])
    with store.transaction():
        for clip, tr in zip(clips, results):
            cid = clip.clip_id
            store.put_asr(Transcript(cid, "asr", tr.text, tr.language, tr.language_prob, tr.lid_scope, tr.avg_logprob, producer),
                          [Word(cid, i, w.word, w.start_s, w.end_s, w.probability) for i, w in enumerate(tr.words)])
            speech_s = speech[cid].get("speech_s") or 0.0
            articulation = speech[cid].get("articulation_s") or 0.0
            spoken = tr.language if lang == "auto" and tr.language else lang
            syllables = count_syllables(tr.text, spoken)
            store.put_metrics(cid, {
                "asr_avg_logprob": tr.avg_logprob,
                "asr_words": float(len(tr.words)),
                "syllables": float(syllables),
                "speech_rate": syllables / speech_s if speech_s >= 0.5 and syllables else None,
                "articulation_rate": syllables / articulation if articulation >= 0.5 and syllables else None,
                "asr_script_share": script_share(tr.text, spoken),
                "asr_repetition": repetition(tr.text, spoken),
                "asr_span_s": tr.words[-1].end_s - tr.words[0].start_s if tr.words else 0.0,
            }, producer)
            store.mark_done(cid, ASR_STAGE, producer)
