"""The voices a server can speak in: each `ready` speaker of the store, with its prompt (the
reference clip and its text, chosen as `synth --speaker` chooses them) prepared once and kept
in an LRU cache.

The store is never held open: each look-up opens it read-only for a moment. While `vet` writes
the store (DuckDB's single writer), a look-up keeps serving the speakers it already knows and
finds the new ones on the next look-up after vetting ends: no restart.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from clonebench.core.errors import StoreInUse, UserError

log = logging.getLogger(__name__)


class UnknownSpeaker(UserError):
    """No such speaker in the store (404)."""


class SpeakerNotReady(UserError):
    """The speaker is vetted but not enrolled: too little accepted audio (409)."""


@dataclass(frozen=True)
class Voice:
    speaker: str
    status: str            # 'ready' | 'insufficient' | 'not decided'
    lang: str | None
    accepted_s: float
    encoder: str | None


class VoiceLibrary:
    def __init__(self, db: Path, prepare, cache_size: int = 32):
        """`prepare(speaker) -> prompt` builds a speaker's prepared prompt (the costly part)."""
        self.db, self.prepare, self.cache_size = Path(db), prepare, cache_size
        self._known: dict[str, Voice] = {}
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def refresh(self) -> dict[str, Voice]:
        """Re-read the speakers from the store; keep the last list while another process writes it."""
        from clonebench.store import Store

        try:
            with Store(self.db, read_only=True) as store:
                voices = {t.speaker: Voice(t.speaker, t.status, t.lang, float(t.accepted_s),
                                           store.newest_encoder(t.speaker))
                          for t in store.speaker_totals()}
        except StoreInUse:
            log.info("store is being written (vet is running): serving the %d speakers known", len(self._known))
            return self._known
        with self._lock:
            changed = [s for s in voices if voices[s] != self._known.get(s)]
            for s in changed:                   # re-vetted: its prompt may have changed
                self._cache.pop(s, None)
            self._known = voices
        return voices

    def voices(self) -> list[Voice]:
        return sorted(self.refresh().values(), key=lambda v: v.speaker)

    def prompt(self, speaker: str):
        """The speaker's prepared prompt; raises UnknownSpeaker or SpeakerNotReady."""
        with self._lock:
            if speaker in self._cache:
                self._cache.move_to_end(speaker)
                return self._cache[speaker]
        voice = self._known.get(speaker) or self.refresh().get(speaker)
        if voice is None:
            raise UnknownSpeaker(f"unknown speaker {speaker!r}: see GET /v1/speakers")
        if voice.status != "ready":
            raise SpeakerNotReady(f"speaker {speaker!r} is {voice.status}, not ready: vet more of their audio")
        prepared = self.prepare(speaker)
        with self._lock:
            self._cache[speaker] = prepared
            self._cache.move_to_end(speaker)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return prepared

    def cached(self) -> list[str]:
        with self._lock:
            return list(self._cache)
