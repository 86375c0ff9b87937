"""One Protocol per measuring job. Stages type their models with these, so any engine that
does the job (the embedded default or a model the user brings) fits in the same place."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Transcriber(Protocol):
    """ASR with word timestamps and language identification (`instruments.asr.Transcriber`)."""

    def producer(self, lang: str) -> str: ...
    def transcribe(self, clips: list[np.ndarray], lang: str, low_confidence: float = -0.7) -> list: ...
    def transcribe_each(self, clips: list[np.ndarray], lang: str) -> list: ...


@runtime_checkable
class SpeakerEncoder(Protocol):
    """Speaker embeddings of 16 kHz audio: a clip's embedding and its 1.6 s window embeddings."""

    name: str

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def embedding(self, x: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class OverlapDetector(Protocol):
    """Frame-level probability that two or more people speak at once."""

    name: str

    def evidence(self, x: np.ndarray): ...


@runtime_checkable
class VoiceActivity(Protocol):
    """Per-frame speech probability of 16 kHz audio."""

    def probabilities(self, x: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class QualityMOS(Protocol):
    """DNSMOS P.835: {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"} of 16 kHz audio."""

    def score(self, x: np.ndarray) -> dict[str, float]: ...


@runtime_checkable
class NaturalnessMOS(Protocol):
    """A naturalness MOS predictor such as UTMOS: one float for 16 kHz audio."""

    name: str

    def score(self, x16: np.ndarray) -> float: ...


@runtime_checkable
class SoundEvents(Protocol):
    """Sound-event screening (music, noise, room classes) of 16 kHz audio."""

    def screen(self, x: np.ndarray) -> dict[str, float]: ...
