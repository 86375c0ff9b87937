"""The voices a server can speak in: each speaker of the store, whether it can be served and why
not, and its prompt (the reference clip and its text, chosen as `synth --speaker` chooses them,
or the one a person gave with `clonebench prompt set`) prepared once and kept in an LRU cache.

The store is never held open: a look-up opens it read-only for a moment, and only when the
file changed since the last one (its size and modification time, and its WAL's). So a
speaker that becomes ready, is re-vetted or gets a new prompt is seen by the next request that
names it: no restart, no stale prompt. While `vet` writes the store (DuckDB's single writer),
look-ups keep serving the speakers already known.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from clonebench.core.errors import StoreInUse, UserError

log = logging.getLogger(__name__)


class UnknownSpeaker(UserError):
    """No such speaker in the store (404)."""


class SpeakerNotReady(UserError):
    """The speaker is vetted but not enrolled, or cannot be spoken by this model (409)."""


@dataclass(frozen=True)
class Voice:
    speaker: str
    status: str                # the enrolment's: 'ready' | 'insufficient' | 'not decided'
    lang: str | None
    accepted_s: float
    encoder: str | None
    prompt: str                # 'store' (chosen from the accepted clips) | 'given' (a file a person gave) |
                               # 'picked' (a clip a reviewer picked)
    prompt_lang: str | None
    why_not: str | None        # None: servable; else why a request for it gets 409
    # what the prepared prompt depends on: when any changes, it is prepared again
    accepted: int = 0
    prompt_file: str | None = None
    reviews: int = 0           # review rows naming the speaker's clips (a corrected text changes no count above)

    @property
    def servable(self) -> bool:
        return self.why_not is None


def voice_of(totals, encoder: str | None, given, reviews: int = 0) -> Voice:
    """A speaker's `Voice` from its dataset totals and the prompt a person gave (if any)."""
    from clonebench.instruments.references import why_not_servable

    prompt = "store" if given is None else "picked" if given.clip_id else "given"
    prompt_lang = given.lang if given is not None else totals.lang
    return Voice(totals.speaker, totals.status, totals.lang, float(totals.accepted_s), encoder, prompt, prompt_lang,
                 why_not_servable(totals.speaker, totals.status, totals.lang, given), totals.accepted,
                 given.path if given is not None else None, reviews)


class VoiceLibrary:
    def __init__(self, db: Path, prepare, cache_size: int = 32):
        """`prepare(speaker) -> prompt` builds a speaker's prepared prompt (the costly part)."""
        self.db, self.prepare, self.cache_size = Path(db), prepare, cache_size
        self._known: dict[str, Voice] = {}
        self._stamp: tuple | None = None
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def _file_stamp(self) -> tuple:
        def stat(p: Path):
            try:
                st = os.stat(p)
                return st.st_size, st.st_mtime_ns
            except OSError:
                return None
        return stat(self.db), stat(self.db.with_name(self.db.name + ".wal"))

    def refresh(self, force: bool = False) -> dict[str, Voice]:
        """The speakers, re-read from the store when it changed; the last list while another
        process writes it."""
        from clonebench.store import Store

        stamp = self._file_stamp()
        if not force and stamp == self._stamp:
            return self._known
        try:
            # no waiting: while vet writes the store, every request would otherwise wait out its lock
            with Store(self.db, read_only=True, lock_wait_s=0) as store:
                acts = store.review_counts()
                voices = {t.speaker: voice_of(t, store.newest_encoder(t.speaker), store.speaker_prompt(t.speaker),
                                              acts.get(t.speaker, {}).get("acts", 0))
                          for t in store.speaker_totals()}
        except StoreInUse:
            log.info("store is being written (vet is running): serving the %d speakers known", len(self._known))
            return self._known
        with self._lock:
            for s in [s for s in self._cache if voices.get(s) != self._known.get(s)]:
                self._cache.pop(s)   # re-vetted or given a new prompt: prepared again
            self._known, self._stamp = voices, stamp
        return voices

    def voices(self) -> list[Voice]:
        return sorted(self.refresh(force=True).values(), key=lambda v: v.speaker)

    def prompt(self, speaker: str):
        """The speaker's prepared prompt; raises UnknownSpeaker or SpeakerNotReady."""
        voice = self.refresh().get(speaker)
        if voice is None:
            raise UnknownSpeaker(f"unknown speaker {speaker!r}: see GET /v1/speakers")
        if not voice.servable:
            raise SpeakerNotReady(voice.why_not)
        with self._lock:
            if speaker in self._cache:
                self._cache.move_to_end(speaker)
                return self._cache[speaker]
        prepared = self.prepare(speaker)
        with self._lock:
            self._cache[speaker] = prepared
            self._cache.move_to_end(speaker)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return prepared

    def clear(self) -> None:
        """Forget every prepared prompt (the model changed)."""
        with self._lock:
            self._cache.clear()

    def cached(self) -> list[str]:
        with self._lock:
            return list(self._cache)
