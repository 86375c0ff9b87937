"""The server's voice library against a real DuckDB store written between look-ups, as `vet` and
`clonebench prompt set` write it while a server runs: a change is seen by the next request that
names the speaker, and a prepared prompt is made again only when what it depends on changed."""

from __future__ import annotations

import pytest

from clonebench.serve.voices import SpeakerNotReady, UnknownSpeaker, VoiceLibrary
from clonebench.store import Enrolment, SpeakerPrompt, Store


def _enrol(db, speaker: str, status: str, lang: str = "en", rule_set: str = "r1") -> None:
    with Store(db) as store:
        store.put_speaker(speaker, lang)
        store.record_enrolment(Enrolment(speaker, rule_set, status, 70.0 if status == "ready" else 20.0, 0.0))


@pytest.fixture
def library(tmp_path):
    db = tmp_path / "store.duckdb"
    _enrol(db, "ann", "ready")
    prepared: list[str] = []

    def prepare(speaker: str) -> str:
        prepared.append(speaker)
        return f"{speaker}#{len(prepared)}"

    return db, VoiceLibrary(db, prepare, cache_size=4), prepared


def test_a_speaker_that_becomes_ready_is_served_without_listing_first(library):
    db, voices, prepared = library
    with pytest.raises(UnknownSpeaker):
        voices.prompt("bea")
    _enrol(db, "bea", "insufficient")
    with pytest.raises(SpeakerNotReady, match="insufficient"):
        voices.prompt("bea")
    _enrol(db, "bea", "ready", rule_set="r2")            # vetted again with more audio
    assert voices.prompt("bea") == "bea#1" and prepared == ["bea"]


def test_a_prompt_is_prepared_again_only_when_the_voice_changed(library, tmp_path):
    db, voices, prepared = library
    assert voices.prompt("ann") == voices.prompt("ann") == "ann#1"                # cached
    _enrol(db, "zed", "ready")                                                   # another speaker: ann stays cached
    assert voices.prompt("ann") == "ann#1" and prepared == ["ann"]
    with Store(db) as store:                                                     # a person gives ann a prompt
        store.put_speaker_prompt(SpeakerPrompt("ann", str(tmp_path / "p.wav"), "Hello there.", "en", "x.wav", "op"))
    assert voices.prompt("ann") == "ann#2"


def test_a_voice_the_front_end_cannot_read_says_what_to_do(library, tmp_path):
    db, voices, _ = library
    _enrol(db, "june", "ready", lang="fr")
    (june,) = [v for v in voices.voices() if v.speaker == "june"]
    assert not june.servable and "'fr'" in june.why_not and "clonebench prompt set june" in june.why_not
    with pytest.raises(SpeakerNotReady, match="clonebench prompt set june"):
        voices.prompt("june")
    with Store(db) as store:
        store.put_speaker_prompt(SpeakerPrompt("june", str(tmp_path / "p.wav"), "Hello.", "en", "x.wav", None))
    (june,) = [v for v in voices.voices() if v.speaker == "june"]
    assert june.servable and (june.prompt, june.prompt_lang) == ("given", "en")
    assert voices.prompt("june") == "june#1"


def test_while_another_process_writes_the_store_the_known_voices_are_served(library):
    """vet holds the store's write lock while it runs: a look-up makes one attempt (no waiting out
    the lock on every request) and serves what it knows."""
    import subprocess
    import sys

    from clonebench.core.errors import StoreInUse

    db, voices, prepared = library
    assert voices.prompt("ann") == "ann#1"
    _enrol(db, "bea", "ready")                        # changed on disk, not yet read
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); "
                               "print('ready', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreInUse):
            Store(db, read_only=True, lock_wait_s=0)
        assert voices.prompt("ann") == "ann#1"        # known, cached: served while the store is locked
        with pytest.raises(UnknownSpeaker):
            voices.prompt("bea")                     # not known yet
    finally:
        holder.kill()
        holder.wait()
    assert voices.prompt("bea") == "bea#2"           # found once the writer is gone
